"""The guest's async #PF sleepers bucket: kvm_async_pf_task_wake() and its waiters.

Source: seed 000 (Yajun Deng's 2022 patch, Sean Christopherson's review,
commit 0547758a6de3 "x86/kvm: Alloc dummy async #PF token outside of raw
spinlock") and seed 001 (the 2020 wait code by Thomas Gleixner); the
follow-up commit baec4f5a018f "x86, kvm: use correct GFP flags for
preemption disabled" (Paolo Bonzini, reported by Dan Carpenter's Smatch
check: the wake-up runs from ``sysvec_kvm_asyncpf_interrupt()``, so the
``GFP_KERNEL`` of 0547758a6de3 became ``GFP_ATOMIC``).
Code: arch/x86/kernel/kvm.c.

Waiters run ``kvm_async_pf_task_wait_schedule()``: ``kvm_async_pf_queue_task()``
(the shared copy in :mod:`._apf_common`, 2022 version) queues a node for
their token in the bucket (or consumes a dummy left by an early wake-up),
then they sleep until the node is unhashed. Wakers run ``kvm_async_pf_task_wake()`` for their tokens:
wake the waiter if its node is there, else leave a dummy node.

The halt-based waiting of seed 001 is not modelled: no waiter halts, so
``n->use_halt = use_halt;`` (seed 001) has no step, and of
``apf_task_wake_one()`` only the ``swq_has_sleeper()``/``swake_up_one()``
branch is (the 2022 code around seed 000 no longer has the halt branch:
there it reads ``if (swq_has_sleeper(&n->wq)) swake_up_one(&n->wq);``, the
step keeps seed 001's ``else if``). The ``token == ~0`` branch
(``apf_task_wake_all()``) and the hash of the token are left out.

Abstractions (the bounds under which verdicts hold are the params):
* all tokens hash to one bucket ``b`` (the worst case for contention);
* waiter i has token i+1 and runs on CPU i; waker k handles tokens
  k+1, k+1+wakers, ... one call after another, on its own CPU;
* ``kzalloc`` may fail at most ``alloc_failures`` times per wake call;
* param ``context``: ``task`` runs the waker in task context (the default);
  ``hardirq`` runs each wake call inside the "page ready" interrupt
  handler ``sysvec_kvm_asyncpf_interrupt()``: ``irq_enter_rcu()`` raises
  the preempt count by HARDIRQ_OFFSET and interrupts are off, as on x86
  (two extra steps around each call, see :func:`in_hardirq`). The handler
  is a ``kind="hardirq"`` program on a CPU of its own, not on the
  waiter's CPU: this stands for the case where the wake-up can come before
  the waiter has queued its node (Sean Christopherson noted in the thread on
  Dan Carpenter's report that this needs KVM running as L1, which handles
  the #PF VM-exit of L2 after enabling interrupts); the same-CPU case, where
  the waiter queues with interrupts disabled, is not modelled;
* ``terminates`` is not in ``properties`` (the bounded ``alloc_failures``
  of the other checks make every run finite); Sean's termination argument
  is checked with ``kvmlab.check(..., params={"alloc_failures": -1},
  liveness=True, fairness=...)``: with unfair scheduling the waker may loop
  forever on a failing allocation while the waiter never runs; weak
  fairness does not exclude that (the waiter can move only while the waker
  does not hold ``b->lock``, so it is not enabled in every state of the
  loop); strong fairness, which a queued (FIFO) spinlock gives a waiter
  spinning on ``b->lock``, does;
* lines that touch only the thread's own data (branches, ``goto``,
  ``cpu_relax()``, filling in a node not yet on the list) are marked
  ``local``; lines that touch only the bucket under ``b->lock`` (the
  lookup, adding or deleting a node no other CPU reads without the lock)
  are marked ``under=B_LOCK``, and so are the unlocks (a release ends the
  transaction). ``apf_task_wake_one()``'s ``hlist_del_init`` is not: the
  waiter reads ``n.link`` without the lock.
"""

from __future__ import annotations

from ..engine import DONE, Config, Model, Param, Program, Variant, line
from ..kernel import GFP_ATOMIC, GFP_KERNEL, KernelWorld
from ._apf_common import B_LIST, B_LOCK, find_apf_task, queue_task

__all__ = ["B_LIST", "B_LOCK", "find_apf_task", "ApfWake", "Waiter", "WakerOriginal",
           "WakerUnlockAlloc", "WakerRecheck", "WakerRecheckAtomic", "in_hardirq"]


class Waiter(queue_task("2022", under=B_LOCK)):
    """kvm_async_pf_task_wait_schedule(token): kvm_async_pf_queue_task() (shared), then the wait loop."""

    fn = "kvm_async_pf_queue_task"

    @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);",
          fn="kvm_async_pf_task_wait_schedule")
    def prepare(self, w, t):
        w.prepare_to_swait_exclusive((self.node, "wq"))

    @line("if (hlist_unhashed(&n.link)) break;", fn="kvm_async_pf_task_wait_schedule")
    def check(self, w, t):
        if w.hlist_unhashed(self.node):
            return "finish"

    @line("local_irq_enable();", fn="kvm_async_pf_task_wait_schedule", local=True)
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
        w.finish_swait((self.node, "wq"))


class WakerOriginal(Program):
    """kvm_async_pf_task_wake(token) before 0547758a6de3: kzalloc(GFP_ATOMIC) under b->lock."""

    fn = "kvm_async_pf_task_wake"
    locals = {"n": None, "k": 0, "fails": 0}

    def token(self, t):
        return self.tokens[t.k]

    def may_fail(self, t):
        return self.alloc_failures < 0 or t.fails < self.alloc_failures

    def failed(self, t):
        if self.alloc_failures >= 0:
            t.fails += 1

    @line("again: raw_spin_lock(&b->lock);")
    def lock(self, w, t):
        w.raw_spin_lock(B_LOCK)

    @line("n = _find_apf_task(b, token);", under=B_LOCK)
    def find(self, w, t):
        t.n = find_apf_task(w, self.token(t))

    @line("if (!n) {", local=True)
    def if_not_n(self, w, t):
        if t.n:
            return "wake_one"

    @line("n = kzalloc(sizeof(*n), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.n = w.kzalloc(GFP_ATOMIC, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(),
                        link=None)

    @line("if (!n) {", local=True)
    def if_alloc_failed(self, w, t):
        if t.n:
            return "init_dummy"
        self.failed(t)

    @line("raw_spin_unlock(&b->lock);", under=B_LOCK)
    def unlock_retry(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line(["cpu_relax();", "goto again;"], local=True)
    def retry(self, w, t):
        return "lock"

    @line(["n->token = token;", "n->cpu = smp_processor_id();", "init_swait_queue_head(&n->wq);"],
          local=True)
    def init_dummy(self, w, t):
        n = w.deref(t.n)
        n["token"] = self.token(t)
        n["cpu"] = self.cpu

    @line("hlist_add_head(&n->link, &b->list);", under=B_LOCK)
    def add_dummy(self, w, t):
        w.hlist_add_head(B_LIST, t.n)
        return "unlock"

    @line("hlist_del_init(&n->link);", fn="apf_task_wake_one")
    def wake_one(self, w, t):
        w.hlist_del_init(t.n)

    @line(["else if (swq_has_sleeper(&n->wq))", "swake_up_one(&n->wq);"], fn="apf_task_wake_one")
    def swake(self, w, t):
        if w.swq_has_sleeper((t.n, "wq")):
            w.swake_up_one((t.n, "wq"))

    @line("raw_spin_unlock(&b->lock);", under=B_LOCK)
    def unlock(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("return;", local=True)
    def ret(self, w, t):
        return self.next_call(w, t)

    def next_call(self, w, t):
        """Return from this call; start the next token's call, if any."""
        t.n = None
        t.fails = 0
        t.k += 1
        if t.k >= len(self.tokens):
            return DONE
        return "lock"


class WakerUnlockAlloc(WakerOriginal):
    """Yajun Deng's 2022 proposal: drop b->lock around kzalloc(GFP_KERNEL), no re-lookup."""

    @line("raw_spin_unlock(&b->lock);", before="alloc", under=B_LOCK)
    def unlock_for_alloc(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("n = kzalloc(sizeof(*n), GFP_KERNEL);")
    def alloc(self, w, t):
        t.n = w.kzalloc(GFP_KERNEL, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(),
                        link=None)

    @line("raw_spin_lock(&b->lock);", after="alloc")
    def relock(self, w, t):
        w.raw_spin_lock(B_LOCK)


class WakerRecheck(WakerOriginal):
    """Commit 0547758a6de3: allocate outside the lock, then goto again and look up again."""

    locals = {"dummy": None}

    @line("if (!dummy) {", after="if_not_n", local=True)
    def if_no_dummy(self, w, t):
        if t.dummy:
            return "init_dummy"

    @line("raw_spin_unlock(&b->lock);", before="alloc", under=B_LOCK)
    def unlock_for_alloc(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("dummy = kzalloc(sizeof(*dummy), GFP_KERNEL);")
    def alloc(self, w, t):
        t.dummy = w.kzalloc(GFP_KERNEL, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(),
                            link=None)

    @line(["if (!dummy)", "cpu_relax();"], local=True)
    def if_alloc_failed(self, w, t):
        if not t.dummy:
            self.failed(t)

    @line("goto again;", local=True)
    def retry(self, w, t):
        return "lock"

    drop = ("unlock_retry",)

    @line(["dummy->token = token;", "dummy->cpu = smp_processor_id();",
           "init_swait_queue_head(&dummy->wq);"], local=True)
    def init_dummy(self, w, t):
        n = w.deref(t.dummy)
        n["token"] = self.token(t)
        n["cpu"] = self.cpu

    @line("hlist_add_head(&dummy->link, &b->list);", under=B_LOCK)
    def add_dummy(self, w, t):
        w.hlist_add_head(B_LIST, t.dummy)

    @line("dummy = NULL;", after="add_dummy", local=True)
    def dummy_used(self, w, t):
        t.dummy = None
        return "unlock"

    @line(["if (dummy)", "kfree(dummy);"])
    def ret(self, w, t):
        if t.dummy is not None:
            w.kfree(t.dummy)
            t.dummy = None
        return self.next_call(w, t)


class WakerRecheckAtomic(WakerRecheck):
    """Commit baec4f5a018f: the allocation outside the lock uses GFP_ATOMIC (IRQ context)."""

    @line("dummy = kzalloc(sizeof(*dummy), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.dummy = w.kzalloc(GFP_ATOMIC, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(),
                            link=None)


_IRQ_CACHE: dict[type, type] = {}


def in_hardirq(cls: type) -> type:
    """The waker program ``cls`` run from the "page ready" interrupt handler.

    Each wake call is one interrupt: ``irq_enter_rcu()`` (preempt count +=
    HARDIRQ_OFFSET, interrupts off) before it, ``irq_exit_rcu()`` after it,
    with the handler's own per-CPU lines grouped into these two steps.
    """
    if cls in _IRQ_CACHE:
        return _IRQ_CACHE[cls]
    first = cls._order[0]

    class InHardirq(cls):
        kind = "hardirq"

        @line(["irq_enter_rcu();", "token = __this_cpu_read(apf_reason.token);"],
              fn="sysvec_kvm_asyncpf_interrupt", before=first, local=True)
        def irq_enter(self, w, t):
            w.hardirq_enter()

        @line(["__this_cpu_write(apf_reason.token, 0);", "wrmsrl(MSR_KVM_ASYNC_PF_ACK, 1);",
               "irq_exit_rcu();"], fn="sysvec_kvm_asyncpf_interrupt", local=True)
        def irq_exit(self, w, t):
            w.hardirq_exit()
            return DONE if t.k >= len(self.tokens) else "irq_enter"

        def next_call(self, w, t):
            cls.next_call(self, w, t)
            return "irq_exit"

    InHardirq.__name__ = InHardirq.__qualname__ = f"{cls.__name__}InHardirq"
    _IRQ_CACHE[cls] = InHardirq
    return InHardirq


class ApfWake(Model):
    name = "apf_wake"
    title = "Async #PF sleepers: waking a task that may not be waiting yet"
    source = ("Yajun Deng's patch and Sean Christopherson's review (lore "
              "20220519090218.2230653-1-yajun.deng@linux.dev), commit 0547758a6de3, commit baec4f5a018f; "
              "the waiter of commit 6bca69ada4bc")
    variants = [
        Variant("original", "kzalloc(GFP_ATOMIC) while holding the raw b->lock",
                commit="before 0547758a6de3", programs={"waiter": Waiter, "waker": WakerOriginal},
                buggy=True),
        Variant("unlock_alloc", "2022 proposal: unlock, kzalloc(GFP_KERNEL), relock, no second lookup",
                commit="lore 20220519090218.2230653-1-yajun.deng@linux.dev",
                programs={"waiter": Waiter, "waker": WakerUnlockAlloc}, buggy=True),
        Variant("recheck", "allocate outside the lock, goto again and look the token up again",
                commit="0547758a6de3", programs={"waiter": Waiter, "waker": WakerRecheck}),
        Variant("recheck_atomic", "as recheck, but kzalloc(GFP_ATOMIC): the wake-up runs in an interrupt",
                commit="baec4f5a018f", programs={"waiter": Waiter, "waker": WakerRecheckAtomic}),
    ]
    configs = {
        "PREEMPT_RT": Config(True, "spinlock_t sleeps; the allocator may sleep even for GFP_ATOMIC"),
        "PROVE_RAW_LOCK_NESTING": Config(False, "lockdep checks raw_spinlock_t -> spinlock_t nesting"),
    }
    params = {
        "waiters": Param(1, 1, 4, "tasks waiting for a page (tokens 1..waiters)"),
        "wakers": Param(1, 1, 4, "CPUs delivering 'page ready'"),
        "alloc_failures": Param(1, -1, 3, "kzalloc failures allowed per wake call (-1: any number)"),
        "context": Param("task", choices=("task", "hardirq"),
                         help="where kvm_async_pf_task_wake() runs: task, or the 'page ready' interrupt"),
    }
    properties = {
        "no_duplicate_token": "never two entries with the same token in the bucket",
        "no_lost_wakeup": "no waiter sleeps forever",
        "no_leak": "when all is over the bucket is empty and no dummy is left allocated",
        "no_sleep_in_atomic": "nothing that may sleep runs in atomic context",
        "no_free_under_raw_lock": "on PREEMPT_RT, no kfree() while b->lock (raw) is held",
    }
    stuck_property = "no_lost_wakeup"
    world = KernelWorld
    goals = {
        "original": "With PREEMPT_RT=y, make the waker allocate while it holds b->lock.",
        "unlock_alloc": "Leave the waiter asleep forever.",
        "recheck": "Try to break it: lose a wake-up or leak a dummy.",
        "recheck_atomic": "With context=hardirq and PREEMPT_RT=y, reach the allocation inside the interrupt.",
    }

    def setup(self, w, variant, config, params):
        nw, nk = params["waiters"], params["wakers"]
        if nk > nw:
            from ..engine import KvmlabError
            raise KvmlabError(f"apf_wake: wakers ({nk}) must not exceed waiters ({nw}): every waker needs a token")
        w.raw_spinlock(B_LOCK)
        w.declare(B_LIST, ())
        wait_cls = variant.programs["waiter"]
        wake_cls = variant.programs["waker"]
        if params.get("context", "task") == "hardirq":
            wake_cls = in_hardirq(wake_cls)
        nodes = [w.new_obj("node", token=0, cpu=0, wq=(), link=None, _heap=False) for _ in range(nw)]
        for i in range(nw):
            tid = w.spawn(wait_cls(f"waiter{i}", cpu=i, comm=f"task{i}", title=f"waiter, token {i + 1}",
                                   token=i + 1, node=nodes[i]), _irq=True)
            assert tid == i
        for k in range(nk):
            tokens = tuple(range(k + 1, nw + 1, nk))
            # A hard interrupt runs on whatever task its CPU was running: here the
            # CPU was idle, so the report names the idle task (pid 0, swapper/N).
            irq = params.get("context", "task") == "hardirq"
            w.spawn(wake_cls(f"waker{k}", cpu=nw + k,
                             comm=f"swapper/{nw + k}" if irq else f"kworker/{nw + k}",
                             pid=0 if irq else None,
                             title="waker, token" + ("s " if len(tokens) > 1 else " ")
                             + ", ".join(map(str, tokens)),
                             tokens=tokens, alloc_failures=params["alloc_failures"]))

    def invariants(self, w):
        toks = [w.obj(oid)["token"] for oid in w[B_LIST] if w.has_obj(oid)]
        if len(toks) != len(set(toks)):
            dup = sorted({x for x in toks if toks.count(x) > 1})
            yield "no_duplicate_token", (f"token {', '.join(map(str, dup))} is in the bucket twice: "
                                         "the waiter's node and a dummy")

    def end_checks(self, w):
        bucket = w[B_LIST]
        leaked = w.leaked()
        if bucket or leaked:
            parts = []
            if bucket:
                parts.append(f"{len(bucket)} node(s) left in the bucket")
            if leaked:
                parts.append(f"{len(leaked)} dummy node(s) never freed")
            yield "no_leak", "; ".join(parts)

    def describe_state(self, w):
        def node(oid):
            if not w.has_obj(oid):
                return f"#{oid}(freed)"
            o = w.obj(oid)
            kind = "dummy" if o.get("_heap") else "n"
            return f"{kind}[token {o['token']}]"

        owner = w[B_LOCK]
        out = {
            "b->lock": "unlocked" if owner is None else f"held by {w.label(owner)}",
            "b->list": "[" + ", ".join(node(o) for o in w[B_LIST]) + "]",
        }
        heap = [oid for oid in w.leaked()]
        out["allocated dummies"] = str(len(heap))
        for i, p in enumerate(w.programs):
            if p.name.startswith("waiter"):
                t = w.thread(i)
                n = w.obj(p.node)
                st = "hashed" if n["link"] is not None else "unhashed"
                task = "-" if t is None else ("TASK_UNINTERRUPTIBLE" if t["_state"] != "R" else "TASK_RUNNING")
                out[f"{p.label} n.link / state"] = f"{st} / {task}"
        return out
