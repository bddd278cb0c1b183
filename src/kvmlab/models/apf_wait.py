"""Where may the async #PF "page not present" wait schedule? The 2020 split.

Source: seed 001, Thomas Gleixner's "x86/kvm: Sanitize
kvm_async_pf_task_wait()" (commit 6bca69ada4bc, lore
20200505134059.262701431@linutronix.de, acked by Paolo Bonzini).
Code: arch/x86/kernel/kvm.c, arch/x86/kvm/mmu/mmu.c.

Threads: CPU0 takes the "page not present" async #PF for token 1 and waits;
CPU1 takes "page ready" for token 1 (``kvm_async_pf_task_wake()``, bracketed
by ``rcu_irq_enter()/exit()`` as in ``__kvm_handle_async_pf()``).

Variants:

* ``single_wait``: the code the seed removes. One function for every
  context: ``rcu_irq_enter()`` at the top, the decision
  ``n.halted = is_idle_task(current) || (IS_ENABLED(CONFIG_PREEMPT_COUNT) ?
  preempt_count() > 1 || rcu_preempt_depth() : interrupt_kernel)`` taken
  while ``b->lock`` is held, and ``rcu_irq_exit()``/``rcu_irq_enter()``
  around every ``schedule()`` or halt.
* ``split_wait``: the code the seed adds. ``can_schedule`` is decided
  first (with CONFIG_PREEMPTION: ``preempt_count() + rcu_preempt_depth()
  == 0``; without: ``usermode``); schedulable contexts call
  ``kvm_async_pf_task_wait_schedule()``, the others call
  ``kvm_async_pf_task_wait_halt()`` bracketed once by
  ``rcu_irq_enter()``/``rcu_irq_exit()``; no RCU calls around the halt.
* ``preempt_only``: a plausible wrong rule, ``can_schedule =
  preempt_count() == 0`` (the seed: "The check for rcu_preempt_depth() is
  also required because voluntary scheduling inside a rcu read locked
  section is not allowed").

Params describe the context the async #PF interrupted: ``context``
(``host``: #1, the host's VM-exit page fault handler; ``user``: #2a;
``kernel``: #2b or #2c depending on the counts; ``idle``: the idle task),
``preempt_count`` (preempt_disable() depth of the interrupted kernel code)
and ``rcu_nesting`` (rcu_read_lock() depth of the interrupted code). The
handler starts with that context: interrupts disabled (exception entry),
``_rcu = rcu_nesting``, a true preempt count of ``preempt_count`` plus
``rcu_nesting`` when PREEMPT_RCU=n (there rcu_read_lock() disables
preemption), and RCU watching except in the idle task (the seed: "In #2c
RCU is eventually not watching"; the idle task is modelled in its extended
quiescent state). The seed says the idle task "always has a preempt count
> 0": ``context=idle`` needs ``preempt_count >= 1``; ``host`` and ``user``
need both counts 0 (host: "fully preemptible context"; user mode: "preempt_count()
is obviously 0 there").

What is abstracted:

* ``__kvm_handle_async_pf()`` is entered at the call of
  ``kvm_async_pf_task_wait()``; its IF check (panic on an injection into an
  interrupts-disabled region) is not modelled: every context here has IF=1.
* the waker's dummy allocation cannot fail (its ``goto again`` retry is
  left out) and all tokens hash to one bucket ``b``;
* the interrupted code after the handler returns is not modelled;
* steps that only touch the task's own data are marked local (the
  explorer may merge them); ``local_irq_enable()``/``local_irq_disable()``
  are not, because the other CPU's reschedule IPI looks at CPU0's
  interrupt flag; nor are a handler's last ``rcu_irq_exit()`` steps, where
  the ``rcu_irq_balanced`` check reports when the handler returns.

Properties: ``no_schedule_in_rcu_reader`` (schedule() inside an RCU
read-side critical section: with PREEMPT_RCU the kernel's own warning; with
PREEMPT_RCU=n the kernel prints nothing, the model reports it: there a
context switch is a quiescent state, so the grace period may end under the
reader), ``no_sleep_in_atomic`` (the kernel's "scheduling while atomic", or
the model's report when PREEMPT_COUNT=n hides the count from the kernel),
``no_lost_wakeup`` (the waiter never wakes); two properties for the RCU
rules the chapter states: ``rcu_irq_balanced`` (each handler, waiter and
waker, leaves RCU watching its CPU exactly as it found it: every
``rcu_irq_enter()`` has its ``rcu_irq_exit()`` on every path, e.g. the
bracket around the halt-based wait) and ``schedule_while_watching`` (the
waiter calls ``schedule()`` only while RCU is watching its CPU: "all
schedulable states (#1, #2a, #2b) do not need any of this RCU voodoo").

:func:`decision_table` enumerates every context x config and returns each
variant's decision (schedule or halt) computed by running the model's own
decision step; :func:`grade_rule` checks a learner's ``can_schedule``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import DONE, Config, Explorer, KvmlabError, Model, Param, Program, System, Variant, line
from ..kernel import GFP_ATOMIC, KernelWorld
from ._apf_common import B_LIST, B_LOCK, find_apf_task, queue_task

TOKEN = 1
CONFIG_NAMES = ("PREEMPTION", "PREEMPT_COUNT", "PREEMPT_RCU")
CONTEXTS = ("host", "user", "kernel", "idle")


def kconfig_possible(config: dict) -> bool:
    """Whether the Kconfig of 2020 allows this combination.

    ``config PREEMPTION`` selects PREEMPT_COUNT, and PREEMPT_RCU is a bool
    without a prompt, ``default y if PREEMPTION`` (kernel/Kconfig.preempt,
    kernel/rcu/Kconfig of that time): PREEMPT_RCU == PREEMPTION.
    """
    p, pc, pr = (bool(config[k]) for k in CONFIG_NAMES)
    return (pc or not p) and pr == p


# -- the rule of the split_wait variant, and a wrong one ------------------------------------------

def seed_can_schedule(w, usermode: bool) -> bool:
    """The seed's rule, as written in kvm_async_pf_task_wait() after 6bca69ada4bc."""
    if w.cfg("PREEMPTION"):
        return w.preempt_count() + w.rcu_preempt_depth() == 0
    return usermode


def preempt_only_can_schedule(w, usermode: bool) -> bool:
    """Wrong: forgets rcu_preempt_depth()."""
    if w.cfg("PREEMPTION"):
        return w.preempt_count() == 0
    return usermode


def _sleep_checks(w) -> None:
    """What schedule() does wrong here that the kernel cannot see (the kernel's own reports follow)."""
    t = w.t
    p = w.me()
    if not w.rcu_is_watching():
        w.report("schedule_while_watching",
                 f"(model) {p.comm}/{p.pid} calls schedule() while RCU is not watching CPU{p.cpu} "
                 "(an extended quiescent state): a grace period does not wait for it.",
                 title="schedule() while RCU is not watching")
    if t["_rcu"] > 0 and not w.cfg("PREEMPT_RCU", True):
        w.report("no_schedule_in_rcu_reader",
                 f"(model) {p.comm}/{p.pid} calls schedule() inside an RCU read-side critical section "
                 f"(rcu_read_lock nesting {t['_rcu']}). With PREEMPT_RCU=n rcu_read_lock() only disables "
                 "preemption and a context switch is a quiescent state: the grace period may end while "
                 "this reader still uses what it read. "
                 + ("The kernel reports only 'scheduling while atomic'." if w.preempt_count_visible
                    else "With PREEMPT_COUNT=n the kernel prints nothing."),
                 title="schedule() inside an RCU read-side critical section (PREEMPT_RCU=n)")
    if t["_pre"] != 0 and w.preempt_count() == 0:
        w.report("no_sleep_in_atomic",
                 f"(model) {p.comm}/{p.pid} calls schedule() with preemption disabled "
                 f"(true preempt count 0x{t['_pre']:x}); with PREEMPT_COUNT=n the kernel cannot see it "
                 "and prints nothing.",
                 title="schedule() with preemption disabled (invisible without PREEMPT_COUNT)")


# -- CPU1: "page ready" -------------------------------------------------------------------------------

class Waker(Program):
    """__kvm_handle_async_pf(PAGE_READY): kvm_async_pf_task_wake(token) under rcu_irq_enter()."""

    fn = "kvm_async_pf_task_wake"
    flag = "use_halt"
    locals = {"n": None}

    @line("rcu_irq_enter();", fn="__kvm_handle_async_pf", local=True)
    def rcu_enter(self, w, t):
        w.rcu_irq_enter()

    @line("raw_spin_lock(&b->lock);")
    def lock(self, w, t):
        w.raw_spin_lock(B_LOCK)

    @line("n = _find_apf_task(b, token);")
    def find(self, w, t):
        t.n = find_apf_task(w, TOKEN)

    @line("if (!n) {", local=True)
    def if_not_n(self, w, t):
        if t.n:
            return "wake_one"

    @line("n = kzalloc(sizeof(*n), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.n = w.kzalloc(GFP_ATOMIC, "node", token=0, cpu=0, wq=(), link=None, **{self.flag: False})

    @line(["n->token = token;", "n->cpu = smp_processor_id();", "init_swait_queue_head(&n->wq);"],
          local=True)
    def init_dummy(self, w, t):
        n = w.deref(t.n)
        n["token"] = TOKEN
        n["cpu"] = self.cpu

    @line("hlist_add_head(&n->link, &b->list);")
    def add_dummy(self, w, t):
        w.hlist_add_head(B_LIST, t.n)
        return "unlock"

    @line("hlist_del_init(&n->link);", fn="apf_task_wake_one")
    def wake_one(self, w, t):
        w.hlist_del_init(t.n)

    @line(["if (n->use_halt)", "smp_send_reschedule(n->cpu);"], fn="apf_task_wake_one")
    def kick(self, w, t):
        n = w.deref(t.n)
        if n[self.flag]:
            w.smp_send_reschedule(n["cpu"])
            return "unlock"

    @line(["else if (swq_has_sleeper(&n->wq))", "swake_up_one(&n->wq);"], fn="apf_task_wake_one")
    def swake(self, w, t):
        if w.swq_has_sleeper((t.n, "wq")):
            w.swake_up_one((t.n, "wq"))

    @line("raw_spin_unlock(&b->lock);")
    def unlock(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("rcu_irq_exit();", fn="__kvm_handle_async_pf")
    def rcu_exit(self, w, t):
        w.rcu_irq_exit()


class OldWaker(Waker):
    """The same before 6bca69ada4bc: the node's flag was called ``halted``."""

    flag = "halted"

    @line(["if (n->halted)", "smp_send_reschedule(n->cpu);"], fn="apf_task_wake_one")
    def kick(self, w, t):
        return super().kick(w, t)


# -- CPU0, split_wait: the code after 6bca69ada4bc ------------------------------------------------------

class SplitWait(queue_task("2020")):
    """kvm_async_pf_task_wait(token, usermode) after the split; both waits call the shared
    kvm_async_pf_queue_task() (:mod:`._apf_common`)."""

    fn = "kvm_async_pf_task_wait"
    locals = {"can_schedule": False, "use_halt": False}
    rule: Callable = staticmethod(seed_can_schedule)

    @line(["if (IS_ENABLED(CONFIG_PREEMPTION))",
           "        can_schedule = preempt_count() + rcu_preempt_depth() == 0;",
           "else",
           "        can_schedule = usermode;"], local=True, before="lock")
    def decide(self, w, t):
        t.can_schedule = bool(type(self).rule(w, self.usermode))

    @line("if (can_schedule) {", local=True, after="decide")
    def branch(self, w, t):
        if not t.can_schedule:
            return "halt_rcu_enter"

    # kvm_async_pf_task_wait_schedule(token)
    @line("if (!kvm_async_pf_queue_task(token, false, &n))", fn="kvm_async_pf_task_wait_schedule",
          local=True, after="branch")
    def call_queue(self, w, t):
        t.use_halt = False

    # kvm_async_pf_queue_task(token, use_halt, &n), shared by both waits: see _apf_common
    def apf_use_halt(self, t):
        return t.use_halt

    def queue_task_return(self, w, t, queued):
        if t.use_halt:
            if queued:
                return "h_check"
            return "halt_rcu_exit"
        if queued:
            return None
        return self.after_schedule_wait()

    # the schedule loop of kvm_async_pf_task_wait_schedule()
    @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);",
          fn="kvm_async_pf_task_wait_schedule")
    def s_prepare(self, w, t):
        w.prepare_to_swait_exclusive((self.node, "wq"))

    @line("if (hlist_unhashed(&n.link)) break;", fn="kvm_async_pf_task_wait_schedule")
    def s_check(self, w, t):
        if w.hlist_unhashed(self.node):
            return "s_finish"

    @line("local_irq_enable();", fn="kvm_async_pf_task_wait_schedule")
    def s_irq_on(self, w, t):
        w.local_irq_enable()

    @line("schedule();", fn="kvm_async_pf_task_wait_schedule")
    def s_sleep(self, w, t):
        _sleep_checks(w)
        w.schedule()

    @line("local_irq_disable();", fn="kvm_async_pf_task_wait_schedule")
    def s_irq_off(self, w, t):
        w.local_irq_disable()
        return "s_prepare"

    @line("finish_swait(&n.wq, &wait);", fn="kvm_async_pf_task_wait_schedule")
    def s_finish(self, w, t):
        w.finish_swait((self.node, "wq"))
        return self.after_schedule_wait()

    # the non-schedulable branch
    @line("rcu_irq_enter();", local=True)
    def halt_rcu_enter(self, w, t):
        w.rcu_irq_enter()

    @line("if (!kvm_async_pf_queue_task(token, true, &n))", fn="kvm_async_pf_task_wait_halt", local=True)
    def call_queue_halt(self, w, t):
        t.use_halt = True
        return "lock"

    @line("if (hlist_unhashed(&n.link)) break;", fn="kvm_async_pf_task_wait_halt")
    def h_check(self, w, t):
        if w.hlist_unhashed(self.node):
            return "halt_rcu_exit"

    @line("native_safe_halt();", fn="kvm_async_pf_task_wait_halt")
    def h_halt(self, w, t):
        w.safe_halt()

    @line("local_irq_disable();", fn="kvm_async_pf_task_wait_halt")
    def h_irq_off(self, w, t):
        w.local_irq_disable()
        return "h_check"

    @line("rcu_irq_exit();")
    def halt_rcu_exit(self, w, t):
        w.rcu_irq_exit()
        return DONE

    def after_schedule_wait(self):
        return DONE


class SplitHost(SplitWait):
    """#1: kvm_handle_page_fault() calls kvm_async_pf_task_wait_schedule() directly."""

    fn = "kvm_handle_page_fault"
    drop = ("decide", "branch", "halt_rcu_enter", "call_queue_halt", "h_check", "h_halt", "h_irq_off",
            "halt_rcu_exit")

    @line("local_irq_disable();", before="call_queue")
    def host_irq_off(self, w, t):
        w.local_irq_disable()

    @line("local_irq_enable();")
    def host_irq_on(self, w, t):
        w.local_irq_enable()
        return DONE

    def after_schedule_wait(self):
        return "host_irq_on"


class PreemptOnlyWait(SplitWait):
    """A wrong rule: with CONFIG_PREEMPTION, schedule whenever preempt_count() == 0."""

    rule = staticmethod(preempt_only_can_schedule)

    @line(["if (IS_ENABLED(CONFIG_PREEMPTION))",
           "        can_schedule = preempt_count() == 0;",
           "else",
           "        can_schedule = usermode;"], local=True)
    def decide(self, w, t):
        t.can_schedule = bool(type(self).rule(w, self.usermode))


# -- CPU0, single_wait: the code before 6bca69ada4bc -------------------------------------------------------

class SingleWait(Program):
    """kvm_async_pf_task_wait(token, interrupt_kernel) before the split (the seed's removed lines)."""

    fn = "kvm_async_pf_task_wait"
    locals = {"e": None}

    @line("rcu_irq_enter();", local=True)
    def o_rcu_enter(self, w, t):
        w.rcu_irq_enter()

    @line("raw_spin_lock(&b->lock);")
    def o_lock(self, w, t):
        w.raw_spin_lock(B_LOCK)

    @line("e = _find_apf_task(b, token);")
    def o_find(self, w, t):
        t.e = find_apf_task(w, TOKEN)

    @line("if (e) {", local=True)
    def o_if_e(self, w, t):
        if not t.e:
            return "o_init"

    @line("hlist_del(&e->link);")
    def o_del(self, w, t):
        w.hlist_del(t.e)

    @line("kfree(e);")
    def o_kfree(self, w, t):
        w.kfree(t.e)
        t.e = None

    @line("raw_spin_unlock(&b->lock);")
    def o_unlock_dummy(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line(["rcu_irq_exit();", "return;"])
    def o_ret_dummy(self, w, t):
        w.rcu_irq_exit()
        return self.after_wait()

    @line(["n.token = token;", "n.cpu = smp_processor_id();"], local=True)
    def o_init(self, w, t):
        n = w.deref(self.node)
        n["token"] = TOKEN
        n["cpu"] = self.cpu

    @line(["n.halted = is_idle_task(current) ||",
           "        (IS_ENABLED(CONFIG_PREEMPT_COUNT)",
           "         ? preempt_count() > 1 || rcu_preempt_depth()",
           "         : interrupt_kernel);"], local=True)
    def o_halted(self, w, t):
        w.deref(self.node)["halted"] = old_halted(w, self.idle, self.interrupt_kernel)

    @line("init_swait_queue_head(&n.wq);", local=True)
    def o_init_wq(self, w, t):
        pass

    @line("hlist_add_head(&n.link, &b->list);")
    def o_add(self, w, t):
        w.hlist_add_head(B_LIST, self.node)

    @line("raw_spin_unlock(&b->lock);")
    def o_unlock(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line(["if (!n.halted)", "prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);"])
    def o_prepare(self, w, t):
        if not w.deref(self.node)["halted"]:
            w.prepare_to_swait_exclusive((self.node, "wq"))

    @line("if (hlist_unhashed(&n.link)) break;")
    def o_check(self, w, t):
        if w.hlist_unhashed(self.node):
            return "o_finish"

    @line("rcu_irq_exit();", local=True)
    def o_rcu_exit(self, w, t):
        w.rcu_irq_exit()

    @line("if (!n.halted) {", local=True)
    def o_if_sched(self, w, t):
        if w.deref(self.node)["halted"]:
            return "o_halt"

    @line("local_irq_enable();")
    def o_irq_on(self, w, t):
        w.local_irq_enable()

    @line("schedule();")
    def o_sleep(self, w, t):
        _sleep_checks(w)
        w.schedule()

    @line("local_irq_disable();")
    def o_irq_off(self, w, t):
        w.local_irq_disable()
        return "o_rcu_reenter"

    @line("native_safe_halt();")
    def o_halt(self, w, t):
        w.safe_halt()

    @line("local_irq_disable();")
    def o_halt_irq_off(self, w, t):
        w.local_irq_disable()

    @line("rcu_irq_enter();", local=True)
    def o_rcu_reenter(self, w, t):
        w.rcu_irq_enter()
        return "o_prepare"

    @line(["if (!n.halted)", "finish_swait(&n.wq, &wait);"])
    def o_finish(self, w, t):
        if not w.deref(self.node)["halted"]:
            w.finish_swait((self.node, "wq"))

    @line(["rcu_irq_exit();", "return;"])
    def o_ret(self, w, t):
        w.rcu_irq_exit()
        return self.after_wait()

    def after_wait(self):
        return DONE


class SingleHost(SingleWait):
    """#1 before the split: kvm_handle_page_fault() called kvm_async_pf_task_wait(fault_address, 0)."""

    fn = "kvm_async_pf_task_wait"

    @line("local_irq_disable();", fn="kvm_handle_page_fault", before="o_rcu_enter")
    def host_irq_off(self, w, t):
        w.local_irq_disable()

    @line("local_irq_enable();", fn="kvm_handle_page_fault")
    def host_irq_on(self, w, t):
        w.local_irq_enable()
        return DONE

    def after_wait(self):
        return "host_irq_on"


def old_halted(w, idle: bool, interrupt_kernel: bool) -> bool:
    """The removed predicate, evaluated (as in the old code) while b->lock is held."""
    if idle:
        return True
    if w.cfg("PREEMPT_COUNT", True):
        return w.preempt_count() > 1 or bool(w.rcu_preempt_depth())
    return bool(interrupt_kernel)


# -- the model -------------------------------------------------------------------------------------------

class ApfWaitWorld(KernelWorld):
    """The kernel world plus the RCU bracket check when a handler returns."""

    def on_finish(self, tid, t) -> None:
        super().on_finish(tid, t)
        w0 = getattr(self.programs[tid], "watch0", None)
        if w0 is not None and t["_watch"] != w0:
            p = self.programs[tid]
            self.report("rcu_irq_balanced",
                        f"(model) {p.comm}/{p.pid} returns with RCU watching count {t['_watch']}, "
                        f"entered with {w0}: an rcu_irq_enter() without its rcu_irq_exit() or the reverse",
                        title="rcu_irq_enter()/rcu_irq_exit() not paired")


class ApfWait(Model):
    name = "apf_wait"
    title = "Async #PF 'page not present': schedule or halt, and what RCU is watching"
    source = ("commit 6bca69ada4bc 'x86/kvm: Sanitize kvm_async_pf_task_wait()' "
              "(lore 20200505134059.262701431@linutronix.de)")
    variants = [
        Variant("single_wait", "before 6bca69ada4bc: one wait for every context, n.halted decided under "
                "b->lock, rcu_irq_exit()/enter() around every schedule() or halt",
                commit="before 6bca69ada4bc",
                programs={"waiter": SingleWait, "host": SingleHost, "waker": OldWaker}),
        Variant("split_wait", "6bca69ada4bc: can_schedule decides; schedule-based wait for #1/#2a/#2b, "
                "halt-based wait for #2c bracketed once by rcu_irq_enter()/exit()",
                commit="6bca69ada4bc",
                programs={"waiter": SplitWait, "host": SplitHost, "waker": Waker}),
        Variant("preempt_only", "wrong rule: can_schedule = preempt_count() == 0 (no rcu_preempt_depth())",
                commit=None, programs={"waiter": PreemptOnlyWait, "host": SplitHost, "waker": Waker},
                buggy=True),
    ]
    configs = {
        "PREEMPTION": Config(True, "the kernel is preemptible (CONFIG_PREEMPT); selects PREEMPT_COUNT"),
        "PREEMPT_COUNT": Config(True, "preempt_count() counts preempt_disable() and spinlocks"),
        "PREEMPT_RCU": Config(True, "preemptible RCU: rcu_read_lock() counts in rcu_preempt_depth() "
                              "instead of disabling preemption"),
    }
    params = {
        "context": Param("kernel", help="what the async #PF interrupted: host (#1), user (#2a), "
                         "kernel (#2b/#2c), idle", choices=CONTEXTS),
        "preempt_count": Param(0, 0, 2, "preempt_disable() depth of the interrupted kernel code"),
        "rcu_nesting": Param(1, 0, 2, "rcu_read_lock() depth of the interrupted code"),
    }
    properties = {
        "no_schedule_in_rcu_reader": "the waiting task never calls schedule() inside an RCU read-side "
                                     "critical section",
        "no_sleep_in_atomic": "the waiting task never calls schedule() with preemption disabled",
        "no_lost_wakeup": "the waiting task does not wait forever",
        "rcu_irq_balanced": "each handler leaves RCU watching its CPU as it found it (rcu_irq_enter() "
                            "and rcu_irq_exit() paired on every path)",
        "schedule_while_watching": "the waiting task calls schedule() only while RCU is watching its CPU",
    }
    stuck_property = "no_lost_wakeup"
    world = ApfWaitWorld
    goals = {
        "single_wait": "Find where this version schedules and where it halts; try to lose the wake-up.",
        "split_wait": "Try to make the waiter schedule inside the RCU reader, or lose the wake-up.",
        "preempt_only": "Make the waiter call schedule() inside the RCU read-side critical section.",
    }

    def setup(self, w, variant, config, params):
        ctx, pc, rn = params["context"], params["preempt_count"], params["rcu_nesting"]
        check_context(ctx, pc, rn)
        w.raw_spinlock(B_LOCK)
        w.declare(B_LIST, ())
        w.declare_cpu_ipis([0])
        flag = variant.programs["waker"].flag
        node = w.new_obj("node", token=0, cpu=0, wq=(), link=None, _heap=False, **{flag: False})
        true_pre = pc + (rn if not config.get("PREEMPT_RCU", True) else 0)
        usermode = ctx == "user"
        if ctx == "host":
            prog = variant.programs["host"]("vcpu", cpu=0, comm="qemu-kvm", title="CPU0 (host): VM-exit #PF",
                                            node=node, usermode=False, idle=False, interrupt_kernel=False)
        else:
            titles = {"user": "CPU0 (guest): async #PF from user mode (#2a)",
                      "kernel": "CPU0 (guest): async #PF from kernel code",
                      "idle": "CPU0 (guest): async #PF in the idle task"}
            prog = variant.programs["waiter"]("waiter", cpu=0, comm="swapper/0" if ctx == "idle" else "task",
                                              pid=0 if ctx == "idle" else None, title=titles[ctx], node=node,
                                              usermode=usermode, idle=ctx == "idle",
                                              interrupt_kernel=not usermode)
        prog.watch0 = 0 if ctx == "idle" else 1
        w.spawn(prog, _irq=True, _pre=true_pre, _rcu=rn, _watch=prog.watch0,
                _pdis=("interrupted code", "preempt_disable();") if true_pre else None)
        waker = variant.programs["waker"]("waker", cpu=1, comm="swapper/1", title="CPU1 (guest): page ready")
        waker.watch0 = 1
        w.spawn(waker)

    def describe_state(self, w):
        owner = w[B_LOCK]
        n = w.obj(w.programs[0].node)

        def node(oid):
            if not w.has_obj(oid):
                return f"#{oid}(freed)"
            return "dummy" if w.obj(oid).get("_heap") else "n"

        flag = "use_halt" if "use_halt" in n else "halted"
        out = {
            "b->lock": "unlocked" if owner is None else f"held by {w.label(owner)}",
            "b->list": "[" + ", ".join(node(o) for o in w[B_LIST]) + "]",
            f"n.{flag}": "true" if n[flag] else "false",
            "n.link": "hashed" if n["link"] is not None else "unhashed",
            "ipi[CPU0] pending": "yes" if w["ipi[0]"] else "no",
        }
        t = w.thread(0)
        if t is not None:
            out["CPU0 RCU"] = "watching" if t["_watch"] > 0 else "not watching"
            out["CPU0 task"] = "TASK_RUNNING" if t["_state"] == "R" else "TASK_UNINTERRUPTIBLE"
        return out


def check_context(ctx: str, pc: int, rn: int) -> None:
    if ctx in ("host", "user") and (pc or rn):
        raise KvmlabError(f"apf_wait: context={ctx} runs with preempt_count=0 and rcu_nesting=0 "
                          f"(got {pc} and {rn})")
    if ctx == "idle" and pc < 1:
        raise KvmlabError("apf_wait: the idle task always has a preempt count > 0: use preempt_count >= 1")


# -- the decision table ---------------------------------------------------------------------------------

def contexts() -> list[dict]:
    """Every interrupted context the table covers (counts 0 or 1 are enough to decide)."""
    out = [{"context": "host", "preempt_count": 0, "rcu_nesting": 0},
           {"context": "user", "preempt_count": 0, "rcu_nesting": 0}]
    for pc, rn in itertools.product((0, 1), (0, 1)):
        out.append({"context": "kernel", "preempt_count": pc, "rcu_nesting": rn})
    out.append({"context": "idle", "preempt_count": 1, "rcu_nesting": 0})
    return out


def configs(only_possible: bool = False) -> list[dict]:
    out = []
    for bits in itertools.product((True, False), repeat=3):
        c = dict(zip(CONFIG_NAMES, bits))
        if not only_possible or kconfig_possible(c):
            out.append(c)
    return out


def seed_case(ctx: dict, config: dict) -> str:
    """The seed's name for the context: #1, #2a, #2b, #2c (or idle)."""
    if ctx["context"] == "host":
        return "#1"
    if ctx["context"] == "user":
        return "#2a"
    if ctx["context"] == "idle":
        return "#2c (idle)"
    if not config["PREEMPTION"]:
        return "#2c (PREEMPTION=n)"
    return "#2b" if ctx["preempt_count"] == 0 and ctx["rcu_nesting"] == 0 else "#2c"


def decide(variant: str | Variant, ctx: dict, config: dict) -> str:
    """``"schedule"`` or ``"halt"``: run the variant until its waiter has decided."""
    sys = System(ApfWait, variant, config, ctx)
    key = sys.initial
    for _ in range(40):
        w = sys.load(key)
        t = w.thread(0)
        prog = sys.programs[0]
        if t is None:
            break
        name = prog.steps[t["_pc"]].name
        if name in ("s_prepare", "call_queue"):
            return "schedule"
        if name in ("call_queue_halt", "halt_rcu_enter"):
            return "halt"
        if name == "o_prepare":
            return "halt" if w.obj(prog.node)["halted"] else "schedule"
        key = sys.run(key, 0).key()
    raise KvmlabError(f"apf_wait: no decision reached for {ctx} {config}")


def decision_table(variants=("single_wait", "split_wait"), *, only_possible: bool = False) -> list[dict]:
    """One row per context x config: the seed's case, Kconfig possibility, each variant's decision."""
    rows = []
    for config in configs(only_possible):
        for ctx in contexts():
            row = {**ctx, **config, "case": seed_case(ctx, config), "possible": kconfig_possible(config)}
            for v in variants:
                row[v if isinstance(v, str) else v.name] = decide(v, ctx, config)
            rows.append(row)
    return rows


def differences(rows: list[dict], a: str = "single_wait", b: str = "split_wait") -> list[dict]:
    return [r for r in rows if r[a] != r[b]]


# -- grading a learner's can_schedule -----------------------------------------------------------------------

def rule_variant(fn: Callable, name: str = "mine") -> Variant:
    """split_wait with ``can_schedule`` computed by ``fn(w, usermode)``."""
    if not callable(fn):
        raise KvmlabError("rule_variant: pass a function can_schedule(w, usermode) -> bool")

    class LearnerWait(SplitWait):
        rule = staticmethod(fn)

    LearnerWait.__name__ = f"LearnerWait_{name}"
    return ApfWait.variant("split_wait").derive(name, "split_wait with the learner's can_schedule",
                                                commit=None, programs={"waiter": LearnerWait})


@dataclass(repr=False)
class RuleReport:
    """The verdict on a learner's rule over every context x (possible) config."""

    passed: bool
    rows: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)

    def __str__(self):
        if self.passed:
            return (f"PASSED: your can_schedule() is safe and decides like the 2020 rule in all "
                    f"{len(self.rows)} cases (contexts x configs).")
        lines = [f"NOT YET: {len(self.failures)} of {len(self.rows)} cases fail. First failing case:"]
        f = self.failures[0]
        lines.append("  " + _case_text(f))
        lines.append("  " + f["why"])
        if f.get("splat"):
            lines += ["  " + s for s in f["splat"].splitlines()]
        if f.get("schedule"):
            lines.append("  shortest schedule: " + " ".join(f["schedule"]))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        import html
        colour = "#1a7f37" if self.passed else "#cf222e"
        head = "PASSED" if self.passed else "NOT YET"
        body = html.escape(str(self)).replace("\n", "<br>")
        rows = "".join(
            f"<tr><td>{html.escape(_case_text(r))}</td><td>{r['expected']}</td><td>{r['got']}</td>"
            f"<td>{'ok' if r['ok'] else 'FAIL'}</td></tr>" for r in self.rows)
        return (f"<div style='border-left:4px solid {colour};padding:4px 8px'><b>{head}</b><br>"
                f"<code style='white-space:pre-wrap'>{body}</code>"
                f"<details><summary>all cases</summary><table><tr><th>case</th><th>2020 rule</th>"
                f"<th>yours</th><th></th></tr>{rows}</table></details></div>")


def _case_text(r: dict) -> str:
    cfg = ", ".join(f"{k}={'y' if r[k] else 'n'}" for k in CONFIG_NAMES)
    return (f"{r['case']}: context={r['context']}, preempt_count={r['preempt_count']}, "
            f"rcu_nesting={r['rcu_nesting']}; {cfg}")


def grade_rule(fn: Callable, *, only_possible: bool = True, max_states: int = 20000) -> RuleReport:
    """Check ``can_schedule(w, usermode)`` in every guest context x config.

    A case fails if the explorer finds a violation (schedule() inside an RCU
    reader or with preemption disabled, a lost wake-up) or if the rule halts
    where the seed's rule schedules (halting a schedulable task is safe but
    needlessly stops the whole vCPU).
    """
    var = rule_variant(fn)
    rows, failures = [], []
    for config in configs(only_possible):
        for ctx in contexts():
            if ctx["context"] == "host":
                continue  # the host calls kvm_async_pf_task_wait_schedule() directly: no rule
            expected = decide("split_wait", ctx, config)
            got = decide(var, ctx, config)
            res = Explorer(System(ApfWait, var, config, ctx), max_states=max_states).run()
            row = {**ctx, **config, "case": seed_case(ctx, config), "expected": expected, "got": got,
                   "ok": True, "why": "", "splat": None, "schedule": None}
            if res.violations:
                v = res.violations[0]
                row.update(ok=False, why=f"violates {v.property}: {v.message}", splat=v.splat,
                           schedule=v.schedule)
            elif not res.complete:
                row.update(ok=False, why="the check did not complete")
            elif got != expected:
                row.update(ok=False, why=MISMATCH[got])
            rows.append(row)
            if not row["ok"]:
                failures.append(row)
    # a violation the explorer found first, then cases that only decide differently
    failures.sort(key=lambda r: r["splat"] is None and r["schedule"] is None)
    return RuleReport(not failures, rows, failures)


MISMATCH = {
    "halt": ("halts where the 2020 rule (6bca69ada4bc) schedules: safe, but the whole vCPU stops although "
             "the task could simply sleep"),
    "schedule": ("schedules where the 2020 rule (6bca69ada4bc) halts. The model finds no violation here, but "
                 "that commit allows scheduling without CONFIG_PREEMPTION only from user mode, 'as there is no "
                 "indication whether the context which triggered the page fault could schedule or not'"),
}
