"""Unit tests of the kernel primitives, through tiny models run by the engine."""

from __future__ import annotations

import kvmlab
from kvmlab.engine import Config, Model, Program, Variant, line
from kvmlab.kernel import HARDIRQ_OFFSET, SATURATED, KernelWorld


def model(programs, setup_extra=None, configs=None, props=None):
    """A one-off model: ``programs`` is a list of (Program class, kwargs)."""

    class M(Model):
        name = "t"
        variants = [Variant("v", "test")]
        world = KernelWorld
        properties = props or {}

    M.configs = {k: Config(v) for k, v in (configs or {}).items()}

    def setup(self, w, variant, config, params):
        w.raw_spinlock("raw")
        w.spinlock("sl")
        w.mutex("mx")
        w.declare("x", 0)
        w.declare("ref", 1)
        w.declare("wq", ())
        w.declare("head", ())
        if setup_extra:
            setup_extra(w)
        for cls, kw in programs:
            w.spawn(cls(kw.pop("name", cls.__name__.lower()), **kw))

    M.setup = setup
    return M


def steps(sys, sched):
    return kvmlab.replay(sys[0], config=sys[1], schedule=sched).steps


def splats(M, sched, config=None):
    tr = kvmlab.replay(M, config=config or {}, schedule=sched)
    return [s for st in tr.steps for s in st["splats"]]


# -- preemption, raw and sleeping locks, might_sleep -------------------------------


class RawThenAlloc(Program):
    fn = "mmu_shrink"

    @line("raw_spin_lock(&kvm_lock);")
    def lock(self, w, t):
        w.raw_spin_lock("raw")

    @line("spin_lock(&kvm->mmu_lock);")
    def take(self, w, t):
        w.spin_lock("sl", where="kernel/rtmutex.c:659")

    @line("spin_unlock(&kvm->mmu_lock);")
    def un(self, w, t):
        w.spin_unlock("sl")

    @line("raw_spin_unlock(&kvm_lock);")
    def unraw(self, w, t):
        w.raw_spin_unlock("raw")


def test_raw_lock_disables_preemption_not_irqs_and_rt_spinlock_reports():
    M = model([(RawThenAlloc, {"comm": "kswapd0", "pid": 55})],
              configs={"PREEMPT_RT": False, "PROVE_RAW_LOCK_NESTING": False})
    sys = kvmlab.load(M, config={"PREEMPT_RT": "y"})
    w = sys.run(sys.initial, 0)
    t = w.thread(0)
    assert t["_pre"] == 1 and t["_irq"] is False
    assert t["_pdis"] == ("mmu_shrink", "raw_spin_lock(&kvm_lock);")
    sp = splats(M, [0, 0], {"PREEMPT_RT": "y"})
    assert len(sp) == 1 and sp[0]["property"] == "no_sleep_in_atomic"
    assert sp[0]["text"].splitlines() == [
        "BUG: sleeping function called from invalid context at kernel/rtmutex.c:659",
        "in_atomic(): 1, irqs_disabled(): 0, pid: 55, name: kswapd0",  # 3.4-rt format, as in seed 002
        "Preemption disabled at:",
        "[<mmu_shrink>] raw_spin_lock(&kvm_lock);",
    ]
    # on !RT spin_lock spins and disables preemption: no report
    assert splats(M, [0, 0, 0, 0], {"PREEMPT_RT": "n"}) == []
    # ... unless lockdep checks raw -> spinlock_t nesting
    sp = splats(M, [0, 0], {"PREEMPT_RT": "n", "PROVE_RAW_LOCK_NESTING": "y"})
    assert [s["property"] for s in sp] == ["no_invalid_wait_context"]
    text = sp[0]["text"]
    assert "[ BUG: Invalid wait context ]" in text
    assert "kswapd0/55 is trying to lock:" in text
    assert "(sl){....}-{3:3}" in text and "context-{5:5}" in text  # the task's own context
    assert " #0: (raw){....}-{2:2}, at: [<mmu_shrink>] raw_spin_lock(&kvm_lock);" in text
    r = kvmlab.check(M, config={"PREEMPT_RT": "y"})
    assert r.violation("no_sleep_in_atomic") is not None


class Holder(Program):
    @line("spin_lock(&kvm->mmu_lock);")
    def a(self, w, t):
        w.spin_lock("sl")

    @line("spin_unlock(&kvm->mmu_lock);")
    def b(self, w, t):
        w.spin_unlock("sl")


def test_contended_locks_block_with_reasons():
    M = model([(Holder, {"cpu": 0}), (Holder, {"cpu": 1, "name": "h1"})], configs={"PREEMPT_RT": False})
    sys = kvmlab.load(M, config={"PREEMPT_RT": "n"})
    k = sys.run(sys.initial, 0).key()
    ok, why = sys.enabled(k)
    assert ok == [0] and why == {1: "spinning on sl (held by CPU0)"}
    # on RT the waiter goes to sleep on the rt_mutex (a step), then waits
    sys = kvmlab.load(M, config={"PREEMPT_RT": "y"})
    k = sys.run(sys.initial, 0).key()
    w = sys.run(k, 1)  # tries, sleeps
    assert w.thread(1)["_wait"] == "sl" and w.thread(1)["_pc"] == 0
    ok, why = sys.enabled(w.key())
    assert why == {1: "asleep on sl (held by CPU0)"}
    k = sys.run(w.key(), 0).key()  # unlock
    assert sys.run(k, 1).thread(1)["_held"][0][0] == "sl"


class BadUnlock(Program):
    @line("raw_spin_unlock(&raw);")
    def a(self, w, t):
        w.raw_spin_unlock("raw")


class Stealer(Program):
    @line("spin_unlock(&kvm->mmu_lock);")
    def a(self, w, t):
        w.spin_unlock("sl")


class Leaver(Program):
    @line("raw_spin_lock(&raw);")
    def a(self, w, t):
        w.raw_spin_lock("raw")


def test_unlock_by_non_owner_and_lock_held_at_exit():
    sp = splats(model([(BadUnlock, {})]), [0])
    assert sp[0]["property"] == "no_bad_unlock" and "WARNING: bad unlock balance detected!" in sp[0]["text"]
    # unlocking a lock another CPU holds is just as wrong, and leaves the lock with its owner
    M = model([(Holder, {}), (Stealer, {"cpu": 1})])
    sp = splats(M, [0, 1])
    assert [s["property"] for s in sp] == ["no_bad_unlock"] and "CPU0" in sp[0]["text"]
    sys = kvmlab.load(M)
    k = sys.run(sys.run(sys.initial, 0).key(), 1).key()
    assert sys.load(k)["sl"] == 0 and sys.load(k).thread(0)["_held"][0][0] == "sl"
    sp = splats(model([(Leaver, {})]), [0])
    assert sp[0]["property"] == "no_lock_leak"
    assert "WARNING: lock held when returning to user space!" in sp[0]["text"]


# -- allocator --------------------------------------------------------------------


class AllocUnderRaw(Program):
    locals = {"p": None}

    @line("raw_spin_lock(&b->lock);")
    def lock(self, w, t):
        w.raw_spin_lock("raw")

    @line("p = kzalloc(sizeof(*p), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.p = w.kzalloc(self.gfp, "node")

    @line("raw_spin_unlock(&b->lock);")
    def unlock(self, w, t):
        w.raw_spin_unlock("raw")

    @line("kfree(p); kfree(p);")
    def free(self, w, t):
        w.kfree(t.p)
        if self.twice:
            w.kfree(t.p)


def test_gfp_semantics_and_double_free():
    M = model([(AllocUnderRaw, {"gfp": "GFP_ATOMIC", "twice": False})], configs={"PREEMPT_RT": False})
    assert splats(M, [0, 0], {"PREEMPT_RT": "n"}) == []
    sp = splats(M, [0, 0], {"PREEMPT_RT": "y"})
    assert sp[0]["property"] == "no_sleep_in_atomic"
    assert "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: " in sp[0]["text"]  # current format
    M = model([(AllocUnderRaw, {"gfp": "GFP_KERNEL", "twice": False})], configs={"PREEMPT_RT": False})
    assert splats(M, [0, 0], {"PREEMPT_RT": "n"})[0]["property"] == "no_sleep_in_atomic"
    M = model([(AllocUnderRaw, {"gfp": "GFP_ATOMIC", "twice": True})])
    sp = splats(M, [0, 0, 0, 0])
    assert sp[-1]["property"] == "no_double_free" and "BUG: KASAN: double-free" in sp[-1]["text"]


class Leak(Program):
    @line("p = kmalloc(sizeof(*p), GFP_KERNEL);")
    def a(self, w, t):
        w.kmalloc("GFP_KERNEL", "obj", may_fail=True)


def test_allocation_failure_is_a_choice_and_leaks_are_counted():
    M = model([(Leak, {})])
    sys = kvmlab.load(M)
    outs = sys.expand(sys.initial, 0)
    assert [m for m, _ in outs] == ["0", "0:fail"]
    assert outs[0][1].leaked() and not outs[1][1].leaked()


# -- refcount_t, atomics, hlist, swait, schedule, RCU --------------------------------


class Refs(Program):
    @line("refcount_dec_and_test(&r); refcount_dec_and_test(&r);")
    def a(self, w, t):
        assert w.refcount_dec_and_test("ref") is True
        assert w.refcount_inc_not_zero("ref") is False
        w.refcount_dec_and_test("ref")

    @line("refcount_inc(&r);")
    def b(self, w, t):
        w.refcount_inc("ref")


def test_refcount_warnings():
    sp = splats(model([(Refs, {})]), [0, 0])
    assert [s["title"] for s in sp] == ["refcount_t: underflow; use-after-free."]
    assert "------------[ cut here ]------------" in sp[0]["text"]


def test_refcount_helpers_at_0_1_n():
    M = model([(Leak, {})])
    sys = kvmlab.load(M)
    w = sys.load(sys.initial)
    w.tid = 0
    w.t = w.thread(0)
    w["ref"] = 1
    assert w.refcount_dec_not_one("ref") is False and w["ref"] == 1
    w["ref"] = 3
    assert w.refcount_dec_not_one("ref") is True and w["ref"] == 2
    assert w.refcount_inc_not_zero("ref") is True and w["ref"] == 3
    w["ref"] = 0
    assert w.refcount_inc_not_zero("ref") is False
    w.refcount_inc("ref")
    assert w.events[-1].title == "refcount_t: addition on 0; use-after-free." and w["ref"] == -1
    w["x"] = 5
    assert w.cmpxchg("x", 4, 9) == 5 and w["x"] == 5
    assert w.cmpxchg("x", 5, 9) == 5 and w["x"] == 9
    assert w.xchg("x", 1) == 9 and w["x"] == 1


class ListUser(Program):
    locals = {"a": None, "b": None}

    @line("INIT_HLIST_NODE(&a); INIT_HLIST_NODE(&b);")
    def mk(self, w, t):
        t.a = w.new_obj("node", link=None)
        t.b = w.new_obj("node", link=None)

    @line("hlist_add_head(&a->link, &head); hlist_add_head(&b->link, &head);")
    def add(self, w, t):
        w.hlist_add_head("head", t.a)
        w.hlist_add_head("head", t.b)
        assert w["head"] == (t.b, t.a)

    @line("hlist_del(&a->link); hlist_del_init(&b->link);")
    def dele(self, w, t):
        w.hlist_del(t.a)
        w.hlist_del_init(t.b)
        assert w["head"] == ()
        assert w.hlist_unhashed(t.a) is False  # poisoned, still reads as hashed
        assert w.hlist_unhashed(t.b) is True


def test_hlist_del_vs_del_init():
    tr = kvmlab.replay(model([(ListUser, {})]), schedule=[0, 0, 0])
    assert len(tr.steps) == 3


class Sleeper(Program):
    @line("prepare_to_swait_exclusive(&wq, &wait, TASK_UNINTERRUPTIBLE);")
    def prep(self, w, t):
        w.prepare_to_swait_exclusive("wq")

    @line("schedule();")
    def sleep(self, w, t):
        w.schedule()

    @line("finish_swait(&wq, &wait);")
    def fin(self, w, t):
        w.finish_swait("wq")


class Waker(Program):
    @line("swake_up_one(&wq);")
    def wake(self, w, t):
        w.swake_up_one("wq")


def test_swait_lost_wakeup_is_impossible_after_prepare_and_stuck_is_reported():
    M = model([(Sleeper, {}), (Waker, {"cpu": 1})], props={"no_deadlock": ""})
    r = kvmlab.check(M)
    v = r.violation("no_deadlock")
    # the waker ran before prepare: the sleeper sleeps forever
    assert v is not None and v.schedule == ["1", "0"]
    assert "CPU0 asleep in schedule() forever" in v.message
    sys = kvmlab.load(M)
    k = sys.run(sys.initial, 0).key()
    assert sys.enabled(k)[1] == {0: "asleep in schedule()"}
    k = sys.run(k, 1).key()
    assert sys.enabled(k)[0] == [0]


class Reader(Program):
    @line("rcu_read_lock();")
    def a(self, w, t):
        w.rcu_read_lock()

    @line("schedule();")
    def b(self, w, t):
        w.schedule()

    @line("rcu_read_unlock();")
    def c(self, w, t):
        w.rcu_read_unlock()


class Updater(Program):
    locals = {"_gp": None}

    @line("synchronize_rcu();")
    def a(self, w, t):
        w.synchronize_rcu()

    @line("kfree(old);")
    def b(self, w, t):
        w["x"] = 1


def test_rcu_grace_period_waits_for_watched_readers_and_voluntary_switch_warns():
    M = model([(Reader, {}), (Updater, {"cpu": 1})], setup_extra=lambda w: w.declare_rcu(),
              configs={"PREEMPT_RCU": True})
    sp = splats(M, [0, 0])
    assert sp[0]["property"] == "no_schedule_in_rcu_reader"
    assert "Voluntary context switch within RCU read-side critical section!" in sp[0]["text"]
    sys = kvmlab.load(M)
    k = sys.run(sys.initial, 0).key()  # reader inside its critical section
    k = sys.run(k, 1).key()  # grace period starts, waits for CPU0
    assert sys.enabled(k)[1][1].startswith("waiting for a grace period")
    # a reader RCU is not watching (extended quiescent state) is not waited for
    sys = kvmlab.load(M)
    k0 = list(sys.initial)
    k0[2] = tuple(0 if n == "_watch" else v for n, v in zip(sys.thread_names[0], k0[2]))
    w = sys.run(tuple(k0), 0)
    assert w.events[0].prop == "rcu_used_while_watching"
    w2 = sys.run(w.key(), 1)
    assert w2.thread(1)["_pc"] == 1  # synchronize_rcu() returned at once


# -- call_rcu(): callbacks wait for the readers present at the call -------------------


class CbReader(Program):
    @line("rcu_read_lock();")
    def a(self, w, t):
        w.rcu_read_lock()

    @line("rcu_read_unlock();")
    def b(self, w, t):
        w.rcu_read_unlock()

    @line("x = 1;")
    def c(self, w, t):
        w["x"] = 1


class LeakyReader(Program):
    @line("rcu_read_lock();")
    def a(self, w, t):
        w.rcu_read_lock()

    @line("return;  /* still inside: a bug, but the callback must not care */")
    def b(self, w, t):
        pass


class Queuer(Program):
    @line("call_rcu(&obj->rcu, free_obj);")
    def a(self, w, t):
        w.call_rcu("head", "free_obj")


def _cb_model(*programs):
    return model([(p, {"cpu": i}) for i, p in enumerate(programs)], setup_extra=lambda w: w.declare_call_rcu())


def _pop(sys, key):
    w = sys.load(key)
    return w.rcu_pop_callback()


def test_call_rcu_waits_for_current_readers_until_their_unlock():
    sys = kvmlab.load(_cb_model(CbReader, Queuer))
    k = sys.run(sys.initial, 0).key()  # CPU0 inside rcu_read_lock()
    k = sys.run(k, 1).key()  # call_rcu(): must wait for CPU0
    assert sys.load(k).rcu_callbacks() == (("head", "free_obj", (0,)),)
    assert _pop(sys, k) is None
    k = sys.run(k, 0).key()  # rcu_read_unlock(): a quiescent state, the reader has not exited
    w = sys.load(k)
    assert w.thread(0) is not None and w.thread(0)["_pc"] == 2
    assert w.rcu_callbacks() == (("head", "free_obj", ()),)
    assert _pop(sys, k) == ("head", "free_obj")
    # a reader that starts after the call is not waited for
    k = sys.run(sys.initial, 1).key()
    assert sys.load(k).rcu_callbacks() == (("head", "free_obj", ()),)
    k = sys.run(k, 0).key()
    assert _pop(sys, k) == ("head", "free_obj")


def test_call_rcu_waits_for_every_reader_and_not_for_one_rcu_ignores():
    sys = kvmlab.load(_cb_model(LeakyReader, CbReader, Queuer))
    k = sys.run(sys.initial, 0).key()  # CPU0 inside rcu_read_lock()
    k = sys.run(k, 1).key()  # CPU1 inside its reader
    k = sys.run(k, 2).key()
    assert sys.load(k).rcu_callbacks() == (("head", "free_obj", (0, 1)),)
    k = sys.run(k, 0).key()  # CPU0 exits (still inside): it no longer holds anything up
    assert sys.load(k).thread(0) is None
    assert _pop(sys, k) is None  # CPU1 is still inside its read-side critical section
    k = sys.run(k, 1).key()
    assert _pop(sys, k) == ("head", "free_obj")
    # a reader in an extended quiescent state (RCU not watching) is not waited for
    sys = kvmlab.load(_cb_model(CbReader, Queuer))
    k = list(sys.run(sys.initial, 0).key())
    k[2] = tuple(0 if n == "_watch" else v for n, v in zip(sys.thread_names[0], k[2]))
    k = sys.run(tuple(k), 1).key()
    assert sys.load(k).rcu_callbacks() == (("head", "free_obj", ()),)
    assert _pop(sys, k) == ("head", "free_obj")


# -- interrupts: gating of hardirq programs, HLT, might_sleep with IRQs off -----------------


class IrqOffTask(Program):
    @line("local_irq_disable();")
    def off(self, w, t):
        w.local_irq_disable()

    @line("p = kmalloc(sizeof(*p), GFP_KERNEL);")
    def alloc(self, w, t):
        w.kfree(w.kmalloc("GFP_KERNEL"))

    @line("local_irq_enable();")
    def on(self, w, t):
        w.local_irq_enable()


class Handler(Program):
    kind = "hardirq"

    @line("irq_enter();")
    def enter(self, w, t):
        w.hardirq_enter()

    @line("raw_spin_lock(&raw); raw_spin_unlock(&raw);")
    def raw(self, w, t):
        w.raw_spin_lock("raw")
        w.raw_spin_unlock("raw")

    @line("spin_lock(&sl);")
    def sl(self, w, t):
        w.spin_lock("sl")

    @line("spin_unlock(&sl); irq_exit();")
    def exit(self, w, t):
        w.spin_unlock("sl")
        w.hardirq_exit()


def test_a_hardirq_handler_waits_for_irqs_on_and_then_holds_its_cpu():
    M = model([(IrqOffTask, {}), (Handler, {"cpu": 0, "label": "IRQ0"})],
              configs={"PREEMPT_RT": False, "PROVE_RAW_LOCK_NESTING": False})
    sys = kvmlab.load(M)
    k = sys.run(sys.initial, 0).key()  # IRQs off on CPU0
    assert sys.enabled(k) == ([0], {1: "interrupts disabled on CPU0"})
    k = sys.run(sys.initial, 1).key()  # the handler interrupted the task
    w = sys.load(k)
    assert w.thread(1)["_pre"] == HARDIRQ_OFFSET and w.thread(1)["_irq"] is True
    assert sys.enabled(k) == ([1], {0: "interrupted by IRQ0"})
    for _ in range(3):
        k = sys.run(k, 1).key()
    assert sys.load(k).thread(1) is None and sys.enabled(k)[0] == [0]  # IRET: the task runs again
    # might_sleep() also fires with only interrupts disabled
    sp = splats(M, [0, 0])
    assert [s["property"] for s in sp] == ["no_sleep_in_atomic"]
    assert "in_atomic(): 0, irqs_disabled(): 1," in sp[0]["text"]


def test_lockdep_wait_context_of_a_hard_interrupt():
    M = model([(Handler, {"cpu": 0})], configs={"PREEMPT_RT": False, "PROVE_RAW_LOCK_NESTING": False})
    # a raw spinlock is fine in a hard interrupt; spinlock_t is not, once lockdep knows CONFIG locks
    assert splats(M, [0, 0, 0, 0], {"PROVE_RAW_LOCK_NESTING": "y"})[0]["property"] == "no_invalid_wait_context"
    assert [s["property"] for s in splats(M, [0, 0, 0, 0], {"PROVE_RAW_LOCK_NESTING": "y"})] == [
        "no_invalid_wait_context"]
    assert splats(M, [0, 0, 0, 0], {"PROVE_RAW_LOCK_NESTING": "n"}) == []


class RawRaw(Program):
    @line("raw_spin_lock(&raw); raw_spin_lock(&raw2);")
    def a(self, w, t):
        w.raw_spin_lock("raw")
        w.raw_spin_lock("raw2")

    @line("spin_lock(&sl);")
    def b(self, w, t):
        w.spin_lock("sl")

    @line("mutex_lock(&mx);")
    def c(self, w, t):
        w.mutex_lock("mx")


def test_lockdep_wait_types_with_and_without_prove_raw_lock_nesting():
    cfg = {"PREEMPT_RT": False, "PROVE_LOCKING": False, "PROVE_RAW_LOCK_NESTING": False}
    M = model([(RawRaw, {})], setup_extra=lambda w: w.raw_spinlock("raw2"), configs=cfg)
    # raw in raw: equal wait types, never reported; spinlock_t in raw: only with the nesting check;
    # a mutex in raw: always (it may sleep)
    # (and it exits holding all four: no_lock_leak)
    assert [s["property"] for s in splats(M, [0, 0, 0], {"PROVE_RAW_LOCK_NESTING": "y"})] == [
        "no_invalid_wait_context", "no_sleep_in_atomic", "no_invalid_wait_context", "no_lock_leak"]
    sp = splats(M, [0, 0, 0], {"PROVE_LOCKING": "y"})
    assert [s["property"] for s in sp] == ["no_sleep_in_atomic", "no_invalid_wait_context", "no_lock_leak"]
    # without the nesting check CONFIG closes up with SPIN: SLEEP is 3, a task is 4, spinlock_t is 2
    assert "(mx){....}-{3:3}" in sp[1]["text"] and "context-{4:4}" in sp[1]["text"]
    assert " #2: (sl){....}-{2:2}" in sp[1]["text"]
    assert [s["property"] for s in splats(M, [0, 0, 0])] == ["no_sleep_in_atomic", "no_lock_leak"]  # lockdep off


class MutexUser(Program):
    @line("mutex_lock(&mx);")
    def a(self, w, t):
        w.mutex_lock("mx")

    @line("mutex_unlock(&mx);")
    def b(self, w, t):
        w.mutex_unlock("mx")


def test_a_contended_mutex_sleeps_instead_of_spinning():
    sys = kvmlab.load(model([(MutexUser, {}), (MutexUser, {"cpu": 1, "name": "m1"})]))
    k = sys.run(sys.initial, 0).key()
    k = sys.run(k, 1).key()  # goes to sleep on the mutex: a step of its own
    assert sys.load(k).thread(1)["_wait"] == "mx"
    assert sys.enabled(k) == ([0], {1: "asleep on mx (held by CPU0)"})
    k = sys.run(k, 0).key()
    k = sys.run(k, 1).key()  # woken: now it owns the mutex
    assert sys.load(k)["mx"] == 1 and sys.load(k).thread(1)["_wait"] is None


def test_preempt_count_is_invisible_without_preempt_count():
    cfg = {"PREEMPT_RT": False, "PREEMPT_COUNT": True}
    M = model([(AllocUnderRaw, {"gfp": "GFP_KERNEL", "twice": False})], configs=cfg)
    assert [s["property"] for s in splats(M, [0, 0])] == ["no_sleep_in_atomic"]
    assert splats(M, [0, 0], {"PREEMPT_COUNT": "n"}) == []  # the bug is there, might_sleep() cannot see it
    sys = kvmlab.load(M, config={"PREEMPT_COUNT": "n"})
    w = sys.run(sys.initial, 0)
    w.t = w.thread(0)
    assert w.t["_pre"] == 1 and w.preempt_count() == 0 and w.truly_atomic()


class UseAfterFree(Program):
    locals = {"p": None}

    @line("p = kmalloc(sizeof(*p), GFP_KERNEL); kfree(p);")
    def a(self, w, t):
        t.p = w.kmalloc("GFP_KERNEL", "obj", f=1)
        w.kfree(t.p)

    @line("x = p->f;")
    def b(self, w, t):
        w["x"] = w.deref(t.p)["f"]

    @line("x = 2;")
    def c(self, w, t):
        w["x"] = 2


def test_use_after_free_is_fatal_and_ends_the_run():
    M = model([(UseAfterFree, {})], props={"no_use_after_free": ""})
    sys = kvmlab.load(M)
    w = sys.run(sys.run(sys.initial, 0).key(), 0)
    assert [(e.prop, e.fatal) for e in w.events] == [("no_use_after_free", True)]
    assert "BUG: KASAN: use-after-free" in w.events[0].text
    r = kvmlab.check(M, reduction=False)
    assert r.violation("no_use_after_free").schedule == ["0", "0"]
    assert (r.states, r.transitions) == (3, 2)  # the state after the report is not expanded


class Halter(Program):
    @line("halt();")
    def a(self, w, t):
        w.halt()

    @line("x = 1;")
    def b(self, w, t):
        w["x"] = 1


class OneShot(Program):
    kind = "hardirq"

    @line("irq_enter(); irq_exit();")
    def a(self, w, t):
        w.hardirq_enter()
        w.hardirq_exit()


class IrqOffHalter(Halter):
    @line("local_irq_disable();", before="a")
    def off(self, w, t):
        w.local_irq_disable()


def test_hlt_ends_when_an_interrupt_handler_returns_and_never_with_irqs_off():
    ipis = lambda w: w.declare_cpu_ipis([0])  # noqa: E731
    sys = kvmlab.load(model([(Halter, {}), (OneShot, {"cpu": 0})], setup_extra=ipis))
    k = sys.run(sys.initial, 0).key()  # HLT: the CPU halts
    assert sys.load(k)["halted[0]"] == 1 and sys.enabled(k) == ([1], {0: "halted"})
    k = sys.run(k, 1).key()  # the interrupt is taken; IRET ends the HLT
    assert sys.load(k)["halted[0]"] == 2 and sys.enabled(k)[0] == [0]
    k = sys.run(k, 0).key()
    assert sys.load(k)["halted[0]"] == 0 and sys.load(k).thread(0)["_pc"] == 1
    sys = kvmlab.load(model([(IrqOffHalter, {})], setup_extra=ipis))
    k = sys.run(sys.initial, 0).key()
    assert sys.enabled(k) == ([], {0: "halted with interrupts disabled"})


def test_saturated_refcount_stays_saturated_silently():
    sys = kvmlab.load(model([(Leak, {})]))
    w = sys.load(sys.initial)
    w.tid, w.t = 0, w.thread(0)
    w["ref"] = SATURATED
    assert w.refcount_dec_and_test("ref") is False and w["ref"] == SATURATED
    w.refcount_inc("ref")
    w.refcount_dec("ref")
    assert w["ref"] == SATURATED and w.events == []
    w["ref"] = 1
    w.refcount_dec("ref")  # decrement hit 0: warn and saturate (leak rather than free)
    assert w["ref"] == SATURATED and [e.prop for e in w.events] == ["refcount_ok"]


class Owned(Program):
    @line("p = kmalloc(sizeof(*p), GFP_KERNEL); p->cpu = smp_processor_id();")
    def a(self, w, t):
        w.kmalloc("GFP_KERNEL", "obj", cpu=self.cpu)


def test_heaps_that_differ_only_in_allocation_order_are_one_state():
    sys = kvmlab.load(model([(Owned, {}), (Owned, {"cpu": 1, "name": "o1"})]))
    a = sys.run(sys.run(sys.initial, 0).key(), 1).key()
    b = sys.run(sys.run(sys.initial, 1).key(), 0).key()
    assert a == b and len(a[1]) == 2
    assert kvmlab.check(model([(Owned, {}), (Owned, {"cpu": 1, "name": "o1"})]), reduction=False).states == 4
