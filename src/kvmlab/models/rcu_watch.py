"""RCU readers, a grace period, and whether RCU is watching the reader's CPU.

The general lesson of chapter 3, before the async #PF code of seed 001
(commit 6bca69ada4bc "x86/kvm: Sanitize kvm_async_pf_task_wait()").
Not code from a patch: the textbook reader/updater pair of
Documentation/RCU/whatisRCU.rst, written one C line per step.

* CPU0 runs a reader: ``rcu_read_lock()``, ``p = rcu_dereference(gp)``,
  ``v = p->data``, ``rcu_read_unlock()``.
* CPU1 runs an updater: remember the old object, publish a new one with
  ``rcu_assign_pointer()``, ``synchronize_rcu()``, ``kfree(old)``.

Variants:

* ``watching``: the reader runs in ordinary task context; RCU is watching
  CPU0, so ``synchronize_rcu()`` waits for a reader that was inside its
  critical section when the grace period started.
* ``eqs_reader``: the same reader runs on a CPU that is in an extended
  quiescent state (EQS), e.g. code reached from the idle loop without
  ``rcu_irq_enter()``. RCU ignores that CPU entirely, so the grace period
  does not wait for the reader, the updater frees the object, and the
  reader reads freed memory (KASAN use-after-free). Lockdep-RCU reports the
  reader's first RCU use ("suspicious RCU usage", "rcu_read_lock() used
  illegally while idle!").
* ``irq_enter``: the reader from idle brackets its RCU use with
  ``rcu_irq_enter()``/``rcu_irq_exit()``: RCU watches while it reads.

Abstractions: ``gp`` starts out pointing at object #1 (``data == 1``); the
updater's new object #2 (``data == 2``) is allocated before the run. The
grace period is the kernel library's (``kvmlab.kernel.rcu``): it waits for
the readers that were inside a read-side critical section on a watching
CPU when ``synchronize_rcu()`` started; how RCU detects quiescent states
(ticks, context switches, the dyntick counters) is not modelled.
``call_rcu()`` is not used: ``synchronize_rcu(); kfree(old);`` has the same
ordering for this lesson.
"""

from __future__ import annotations

from ..engine import Config, Model, Program, Variant, line
from ..kernel import KernelWorld


class Reader(Program):
    """The reader on CPU0."""

    fn = "reader"
    locals = {"p": None, "v": None}

    @line("rcu_read_lock();")
    def lock(self, w, t):
        w.rcu_read_lock()

    @line("p = rcu_dereference(gp);")
    def deref(self, w, t):
        t.p = w.rcu_dereference("gp")

    @line("v = p->data;")
    def use(self, w, t):
        t.v = w.deref(t.p)["data"]

    @line("rcu_read_unlock();")
    def unlock(self, w, t):
        w.rcu_read_unlock()


class IrqEnterReader(Reader):
    """The reader from idle, made to count: rcu_irq_enter() ... rcu_irq_exit()."""

    # not local: the updater's synchronize_rcu() looks at whether RCU watches CPU0
    @line("rcu_irq_enter();", before="lock")
    def irq_enter(self, w, t):
        w.rcu_irq_enter()

    @line("rcu_irq_exit();")
    def irq_exit(self, w, t):
        w.rcu_irq_exit()


class Updater(Program):
    """The updater on CPU1: publish, wait for a grace period, free."""

    fn = "updater"
    locals = {"old": None, "_gp": None}

    @line("old = rcu_dereference_protected(gp, 1);")
    def read_old(self, w, t):
        t.old = w["gp"]

    @line("rcu_assign_pointer(gp, new);")
    def publish(self, w, t):
        w.rcu_assign_pointer("gp", self.new)

    @line("synchronize_rcu();")
    def sync(self, w, t):
        w.synchronize_rcu()

    @line("kfree(old);")
    def free(self, w, t):
        w.kfree(t.old)


class RcuWatch(Model):
    name = "rcu_watch"
    title = "RCU readers and grace periods: what 'RCU is watching' means"
    source = ("chapter 3 background for commit 6bca69ada4bc ("
              "lore 20200505134059.262701431@linutronix.de); Documentation/RCU/whatisRCU.rst")
    variants = [
        Variant("watching", "the reader runs where RCU is watching (task context)",
                programs={"reader": Reader, "updater": Updater}, flags={"eqs": False}),
        Variant("eqs_reader", "the reader runs from idle, in an extended quiescent state, "
                "without rcu_irq_enter()",
                programs={"reader": Reader, "updater": Updater}, flags={"eqs": True}, buggy=True),
        Variant("irq_enter", "the reader from idle wraps its RCU use in rcu_irq_enter()/rcu_irq_exit()",
                programs={"reader": IrqEnterReader, "updater": Updater}, flags={"eqs": True}),
    ]
    configs = {
        "PREEMPT_RCU": Config(True, "rcu_read_lock() only counts nesting (else it disables preemption)"),
    }
    params = {}
    properties = {
        "no_use_after_free": "the reader never reads an object after the updater freed it",
        "rcu_used_while_watching": "RCU read-side primitives are used only where RCU is watching",
    }
    world = KernelWorld
    goals = {
        "watching": "Try to make the reader read freed memory (you cannot: synchronize_rcu() waits).",
        "eqs_reader": "Make the reader on the idle CPU read the object after kfree(old).",
        "irq_enter": "Try to make the reader read freed memory.",
    }

    def setup(self, w, variant, config, params):
        old = w.new_obj("obj", data=1, _heap=True)
        new = w.new_obj("obj", data=2, _heap=True)
        w.declare("gp", old)
        w.declare_rcu()
        eqs = variant.flags.get("eqs", False)
        reader = variant.programs["reader"]
        w.spawn(reader("reader", cpu=0, comm="swapper/0" if eqs else "reader",
                       pid=0 if eqs else None,
                       title="CPU0: reader from the idle loop (RCU not watching)" if eqs
                       else "CPU0: reader (task context, RCU watching)"),
                _watch=0 if eqs else 1)
        w.spawn(variant.programs["updater"]("updater", cpu=1, comm="updater", title="CPU1: updater",
                                            new=new))

    def describe_state(self, w):
        def obj(oid):
            if oid is None:
                return "NULL"
            if not w.has_obj(oid):
                return f"#{oid} (freed)"
            return f"#{oid} (data {w.obj(oid)['data']})"

        out = {"gp": obj(w["gp"])}
        r = w.thread(0)
        if r is not None:
            out["CPU0 RCU"] = ("watching" if r["_watch"] > 0 else "not watching (extended quiescent state)")
            out["CPU0 rcu_read_lock nesting"] = str(r["_rcu"])
            out["CPU0 p"] = obj(r["p"])
        u = w.thread(1)
        if u is not None and u["_gp"] is not None:
            waits = [w.label(i) for i, _ in u["_gp"]]
            out["grace period waits for"] = ", ".join(waits)
        return out
