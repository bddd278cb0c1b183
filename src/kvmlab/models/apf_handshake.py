"""The async #PF handshake: "page not present" parks a task, "page ready" wakes it.

Source: seed 001 (Thomas Gleixner's 2020 rework of kvm_async_pf_task_wait()
into kvm_async_pf_queue_task(), kvm_async_pf_task_wait_schedule() and
kvm_async_pf_task_wait_halt(), commit 6bca69ada4bc "x86/kvm: Sanitize
kvm_async_pf_task_wait()"; apf_task_wake_one(), apf_task_wake_all();
__kvm_handle_async_pf() with the V2 panic) and seed 000 (the dummy node
allocated by kvm_async_pf_task_wake()). Code: arch/x86/kernel/kvm.c.

Threads:

* ``fault`` (CPU0, a task): takes the "page not present" async #PF for
  token 1 and runs ``__kvm_handle_async_pf()`` -> ``kvm_async_pf_task_wait()``
  -> the schedule- or halt-based wait, with ``kvm_async_pf_queue_task()``
  inlined. Its node ``n`` lives on its stack (not on the heap).
* ``ready`` (a ``hardirq`` program, on CPU0 with ``same_cpu=1``, else on
  CPU1): the "page ready" async #PF for token 1, running
  ``kvm_async_pf_task_wake(1)`` with ``apf_task_wake_one()`` inlined. The
  host injects async #PFs only while the guest has interrupts enabled
  (commit fc5f06fac6fb), so on CPU0 it can start only while the task
  there has IF=1; the task cannot run while it is in progress.
* ``wake_all`` (variant ``wake_all`` only; a ``hardirq`` program on the
  ``ready`` handler's CPU, delivered after it): the token ``~0`` event,
  ``apf_task_wake_all()``.

Params: ``ready_first`` (1: the "page ready" handler starts before the
fault is taken; 0: after it), ``same_cpu``, ``irqs_off`` (1: the host
injects the "page not present" #PF while the interrupted context has IF=0:
``__kvm_handle_async_pf()`` must panic, the V2 check; a "page ready" for
that CPU then stays pending, the host injecting it only into IF=1, so the
fault comes first even with ``ready_first=1``), ``wake_all_anytime`` (1:
the token ~0 event may come at any time, also before the token 1 "page
ready", so its walk can meet the waiter's node of CPU0 and a dummy of
CPU1: both branches of ``if (n->cpu == smp_processor_id())``).

Abstractions:

* one bucket ``b`` (every token hashes there) and one token;
  ``apf_task_wake_all()``'s loop over the 256 buckets is its loop over ``b``;
* the first step of each #PF handler stands for the exception entry too:
  the interrupted IF is saved (``regs->flags``) and IF is cleared; the
  handler's last step is the IRET (the kernel library ends an interrupted
  HLT and takes latched interrupts there, see :mod:`kvmlab.kernel.sched`);
* ``kvm_async_pf_task_wait()``'s choice between the two waits
  (``can_schedule``) is made by the variant; ``rcu_irq_enter()/exit()`` are
  left out (RCU is the subject of another chapter);
* the dummy's ``kzalloc(GFP_ATOMIC)`` does not fail here (allocation failure
  and PREEMPT_RT are chapter 1's model, ``apf_wake``);
* ``sti_then_hlt`` assumes at least one instruction between STI and HLT (the
  STI interrupt shadow covers exactly one): that is why
  ``native_safe_halt()`` is one ``sti; hlt`` sequence;
* no other interrupt source exists: a CPU halted with nothing to wake it
  halts forever here, where a real one would wait for the next unrelated
  interrupt (e.g. a timer tick, if one is armed).
"""

from __future__ import annotations

from ..engine import DONE, Blocked, Model, Param, Program, Variant, line
from ..kernel import GFP_ATOMIC, KernelWorld
from ._apf_common import B_LIST, B_LOCK, find_apf_task, queue_task

TOKEN = 1
PANIC_MSG = "Host injected async #PF in interrupt disabled region"
FAULT, READY, WAKE_ALL = 0, 1, 2


def _started(w, tid):
    t = w.thread(tid)
    return t is None or t["_pc"] > 0


def _wake_one_kick(w, n):
    """apf_task_wake_one() after hlist_del_init(): kick a halted waiter or wake a sleeper."""
    node = w.deref(n)
    if node["use_halt"]:
        w.smp_send_reschedule(node["cpu"])
    elif w.swq_has_sleeper((n, "wq")):
        w.swake_up_one((n, "wq"))


# -- the faulting task ------------------------------------------------------------------------
class FaultQueue(queue_task("2020")):
    """__kvm_handle_async_pf() for "page not present", up to kvm_async_pf_queue_task() returning true.

    The queueing is the shared kvm_async_pf_queue_task() (:mod:`._apf_common`);
    the wait loop comes after its last step ``unlock``, which falls through to it
    (subclasses add it, the lab does too). ``self.node`` is the stack node ``n``;
    ``self.wq`` is ``&n.wq``.
    """

    fn = "__kvm_handle_async_pf"
    locals = {"regs_if": True}
    use_halt = False

    @property
    def wq(self):
        return (self.node, "wq")

    @line("u32 reason = kvm_read_and_reset_pf_reason();", before="lock")
    def entry(self, w, t):
        # "Page ready" first, unless it is for this very CPU and the interrupted code has
        # IF=0: the host injects it only into IF=1, so it stays pending (irqs_off=1).
        latched = getattr(self, "same_cpu", 0) and t._irq
        if self.ready_first and not _started(w, READY) and not latched:
            raise Blocked("'page ready' is delivered first")
        t.regs_if = not t._irq          # exception entry: regs->flags keeps IF ...
        w.local_irq_disable()           # ... and the handler runs with IF=0

    @line("if (unlikely(!(regs->flags & X86_EFLAGS_IF)))", local=True, after="entry")
    def if_check(self, w, t):
        if t.regs_if:
            return "wait"

    @line('panic("Host injected async #PF in interrupt disabled region\\n");', after="if_check")
    def panic(self, w, t):
        w.panic(PANIC_MSG)
        return DONE

    @line("kvm_async_pf_task_wait_schedule(token);", fn="kvm_async_pf_task_wait", local=True,
          after="panic")
    def wait(self, w, t):
        pass


class FaultSchedule(FaultQueue):
    """kvm_async_pf_task_wait_schedule(): prepare, check, schedule (seed 001)."""

    @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);",
          fn="kvm_async_pf_task_wait_schedule")
    def prepare(self, w, t):
        w.prepare_to_swait_exclusive(self.wq)

    @line("if (hlist_unhashed(&n.link)) break;", fn="kvm_async_pf_task_wait_schedule")
    def check(self, w, t):
        if w.hlist_unhashed(self.node):
            return "finish"

    @line("local_irq_enable();", fn="kvm_async_pf_task_wait_schedule")
    def irq_on(self, w, t):
        w.local_irq_enable()

    @line("schedule();", fn="kvm_async_pf_task_wait_schedule")
    def sleep(self, w, t):
        w.schedule()

    @line("local_irq_disable();", fn="kvm_async_pf_task_wait_schedule", local=True)
    def irq_off(self, w, t):
        w.local_irq_disable()
        return "prepare"

    @line("finish_swait(&n.wq, &wait);", fn="kvm_async_pf_task_wait_schedule")
    def finish(self, w, t):
        w.finish_swait(self.wq)
        return DONE


class FaultCheckThenPrepare(FaultSchedule):
    """The wrong order: test hlist_unhashed() first, set TASK_UNINTERRUPTIBLE after."""

    @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);",
          fn="kvm_async_pf_task_wait_schedule", after="check")
    def prepare(self, w, t):
        w.prepare_to_swait_exclusive(self.wq)

    @line("local_irq_disable();", fn="kvm_async_pf_task_wait_schedule", local=True)
    def irq_off(self, w, t):
        w.local_irq_disable()
        return "check"


class FaultSafeHalt(FaultQueue):
    """kvm_async_pf_task_wait_halt(): check, native_safe_halt(), local_irq_disable() (seed 001)."""

    use_halt = True

    @line(["rcu_irq_enter();", "kvm_async_pf_task_wait_halt(token);"], fn="kvm_async_pf_task_wait",
          local=True)
    def wait(self, w, t):
        pass

    @line("if (hlist_unhashed(&n.link)) break;", fn="kvm_async_pf_task_wait_halt")
    def check(self, w, t):
        if w.hlist_unhashed(self.node):
            return DONE

    @line("native_safe_halt();", fn="kvm_async_pf_task_wait_halt")
    def halt(self, w, t):
        w.safe_halt()

    @line("local_irq_disable();", fn="kvm_async_pf_task_wait_halt", local=True)
    def irq_off(self, w, t):
        w.local_irq_disable()
        return "check"


class FaultStiThenHlt(FaultSafeHalt):
    """What native_safe_halt() prevents: STI and HLT as two separate steps."""

    drop = ("halt",)

    @line("local_irq_enable();", fn="kvm_async_pf_task_wait_halt", after="check")
    def sti(self, w, t):
        w.local_irq_enable()

    @line("native_halt();", fn="kvm_async_pf_task_wait_halt", after="sti")
    def hlt(self, w, t):
        w.halt()


# -- "page ready" -----------------------------------------------------------------------------
class PageReady(Program):
    """__kvm_handle_async_pf() for "page ready": kvm_async_pf_task_wake(token), 2020 code."""

    kind = "hardirq"
    fn = "kvm_async_pf_task_wake"
    locals = {"n": None}

    @line(["u32 reason = kvm_read_and_reset_pf_reason();",
           "if (unlikely(!(regs->flags & X86_EFLAGS_IF)))"], fn="__kvm_handle_async_pf")
    def entry(self, w, t):
        if not self.ready_first and not _started(w, FAULT):
            raise Blocked("'page not present' is delivered first")
        w.local_irq_disable()

    @line("again: raw_spin_lock(&b->lock);")
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
        t.n = w.kzalloc(GFP_ATOMIC, "node", token=0, cpu=0, use_halt=False, wq=(), link=None)

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

    @line(["if (n->use_halt) smp_send_reschedule(n->cpu);",
           "else if (swq_has_sleeper(&n->wq)) swake_up_one(&n->wq);"], fn="apf_task_wake_one")
    def kick(self, w, t):
        _wake_one_kick(w, t.n)

    @line("raw_spin_unlock(&b->lock);")
    def unlock(self, w, t):
        w.raw_spin_unlock(B_LOCK)
        t.n = None

    @line("return true;", fn="__kvm_handle_async_pf")
    def ret(self, w, t):
        return DONE  # IRET: see KernelWorld.on_finish


class WakeAll(Program):
    """__kvm_handle_async_pf() for "page ready" with token ~0: apf_task_wake_all() (seed 001)."""

    kind = "hardirq"
    fn = "apf_task_wake_all"
    locals = {"n": None, "todo": ()}

    @line(["u32 reason = kvm_read_and_reset_pf_reason();",
           "if (unlikely(!(regs->flags & X86_EFLAGS_IF)))"], fn="__kvm_handle_async_pf")
    def entry(self, w, t):
        if not self.anytime and w.thread(READY) is not None:
            raise Blocked("delivered after the 'page ready' for token 1")
        w.local_irq_disable()

    @line(["if (token == ~0) {", "apf_task_wake_all();"], fn="kvm_async_pf_task_wake", local=True)
    def all_token(self, w, t):
        pass

    @line("raw_spin_lock(&b->lock);")
    def lock(self, w, t):
        w.raw_spin_lock(B_LOCK)
        t.todo = w[B_LIST]

    @line(["hlist_for_each_safe(p, next, &b->list) {", "n = hlist_entry(p, typeof(*n), link);"],
          local=True)
    def next(self, w, t):
        if not t.todo:
            t.n = None
            return "unlock"
        t.n, t.todo = t.todo[0], t.todo[1:]

    @line("if (n->cpu == smp_processor_id())")
    def if_cpu(self, w, t):
        if w.deref(t.n)["cpu"] != self.cpu:
            return "next"

    @line("hlist_del_init(&n->link);", fn="apf_task_wake_one")
    def wake_one(self, w, t):
        w.hlist_del_init(t.n)

    @line(["if (n->use_halt) smp_send_reschedule(n->cpu);",
           "else if (swq_has_sleeper(&n->wq)) swake_up_one(&n->wq);"], fn="apf_task_wake_one")
    def kick(self, w, t):
        _wake_one_kick(w, t.n)
        return "next"

    @line("raw_spin_unlock(&b->lock);")
    def unlock(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line(["return;", "return true;"], fn="kvm_async_pf_task_wake")
    def ret(self, w, t):
        return DONE


# -- the model --------------------------------------------------------------------------------
class ApfHandshake(Model):
    name = "apf_handshake"
    title = "The async #PF handshake: waiting for a page the host is still fetching"
    source = ("commit 6bca69ada4bc (2020 rework of kvm_async_pf_task_wait(), Thomas Gleixner, acked by Paolo "
              "Bonzini; lore 20200505134059.262701431@linutronix.de); the dummy node of "
              "kvm_async_pf_task_wake()")
    variants = [
        Variant("schedule_wait", "prepare_to_swait_exclusive(), then hlist_unhashed(), then schedule()",
                commit="6bca69ada4bc", programs={"fault": FaultSchedule, "ready": PageReady}),
        Variant("check_then_prepare", "hlist_unhashed() tested before the task state is set",
                programs={"fault": FaultCheckThenPrepare, "ready": PageReady}, buggy=True),
        Variant("safe_halt", "hlist_unhashed(), then native_safe_halt() (STI;HLT), IPI kick",
                commit="6bca69ada4bc", programs={"fault": FaultSafeHalt, "ready": PageReady}),
        Variant("sti_then_hlt", "hlist_unhashed(), then STI and HLT as two instructions apart",
                programs={"fault": FaultStiThenHlt, "ready": PageReady}, buggy=True),
        Variant("wake_all", "schedule_wait plus a token ~0 wake-up after the 'page ready'",
                commit="6bca69ada4bc",
                programs={"fault": FaultSchedule, "ready": PageReady, "wake_all": WakeAll}, buggy=True),
    ]
    params = {
        "ready_first": Param(0, 0, 1, "1: 'page ready' is delivered before 'page not present'"),
        "same_cpu": Param(0, 0, 1, "1: 'page ready' (and ~0) arrive on the faulting CPU0, 0: on CPU1"),
        "irqs_off": Param(0, 0, 1, "1: the host injects 'page not present' while IF=0 (host bug)"),
        "wake_all_anytime": Param(0, 0, 1, "1: the ~0 event may come before the token 1 'page ready' "
                                           "(variant wake_all)"),
    }
    properties = {
        "no_lost_wakeup": "the faulting task does not wait (asleep or halted) forever",
        "no_leak": "no dummy node is lost: unlinked with nothing pointing to it, or left allocated",
        "no_duplicate_token": "never two entries with the same token in the bucket",
        "no_panic": "the guest does not panic",
    }
    stuck_property = "no_lost_wakeup"
    world = KernelWorld
    goals = {
        "schedule_wait": "Try to lose the wake-up: leave the faulting task asleep forever.",
        "check_then_prepare": "Leave the faulting task asleep in schedule() forever.",
        "safe_halt": "Try to leave CPU0 halted forever.",
        "sti_then_hlt": "Leave CPU0 halted forever: get the kick IPI taken between STI and HLT.",
        "wake_all": "Make apf_task_wake_all() unlink the dummy without freeing it.",
    }

    def setup(self, w, variant, config, params):
        rf, same, off = params["ready_first"], params["same_cpu"], params["irqs_off"]
        w.raw_spinlock(B_LOCK)
        w.declare(B_LIST, ())
        w.declare_cpu_ipis([0, 1])
        node = w.new_obj("node", token=0, cpu=0, use_halt=False, wq=(), link=None, _heap=False)
        fault_cls = variant.programs["fault"]
        tid = w.spawn(fault_cls("fault", cpu=0, label="CPU0", comm="task0", title="faulting task, token 1",
                                node=node, ready_first=rf, same_cpu=same), _irq=bool(off))
        assert tid == FAULT
        rcpu = 0 if same else 1
        tid = w.spawn(variant.programs["ready"]("ready", cpu=rcpu, label=f"CPU{rcpu} page ready",
                                                comm=f"irq/{rcpu}", title="'page ready', token 1",
                                                ready_first=rf))
        assert tid == READY
        if "wake_all" in variant.programs:
            w.spawn(variant.programs["wake_all"]("wake_all", cpu=rcpu, label=f"CPU{rcpu} wake all",
                                                 comm=f"irq/{rcpu}", title="'page ready', token ~0",
                                                 anytime=params.get("wake_all_anytime", 0)))

    # -- properties ---------------------------------------------------------------------------
    def _unreachable_dummies(self, w):
        reach = set(w[B_LIST])
        for i in range(w.nthreads):
            t = w.thread(i)
            if t is None:
                continue
            for k in ("n", "e"):
                if t.get(k) is not None:
                    reach.add(t[k])
        return [oid for oid in w.leaked() if oid not in reach]

    def invariants(self, w):
        toks = [w.obj(oid)["token"] for oid in w[B_LIST] if w.has_obj(oid)]
        if len(toks) != len(set(toks)):
            yield "no_duplicate_token", "token 1 is in the bucket twice"
        lost = self._unreachable_dummies(w)
        if lost:
            yield "no_leak", (f"a dummy node for token {w.obj(lost[0])['token']} is off the bucket and "
                              "nothing points to it: it can never be freed")

    def end_checks(self, w):
        leaked = w.leaked()
        if leaked:
            yield "no_leak", f"{len(leaked)} dummy node(s) never freed"

    def describe_state(self, w):
        def node(oid):
            if not w.has_obj(oid):
                return f"#{oid}(freed)"
            o = w.obj(oid)
            if o.get("_heap"):
                return f"dummy[token {o['token']}, CPU{o['cpu']}]"
            return f"n[token {o['token']}, CPU{o['cpu']}{', use_halt' if o['use_halt'] else ''}]"

        owner = w[B_LOCK]
        out = {
            "b->lock": "unlocked" if owner is None else f"held by {w.label(owner)}",
            "b->list": "[" + ", ".join(node(o) for o in w[B_LIST]) + "]",
            "allocated dummies": str(len(w.leaked())),
        }
        t = w.thread(FAULT)
        n = w.obj(w.programs[FAULT].node)
        if t is None:
            out["CPU0 task"] = "done"
        else:
            state = "TASK_UNINTERRUPTIBLE" if t["_state"] != "R" else "TASK_RUNNING"
            irq = "IF=0" if t["_irq"] else "IF=1"
            out["CPU0 task"] = f"{state}, {irq}, n.link {'unhashed' if n['link'] is None else 'hashed'}"
        halted = {0: "no", 1: "yes (HLT)", 2: "woken, HLT ends"}[w["halted[0]"]]
        out["CPU0 halted"] = halted
        out["IPI latched for CPU0"] = "yes" if w["ipi[0]"] else "no"
        return out
