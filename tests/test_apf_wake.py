"""The engine issue's claims about apf_wake, through the public API."""

from __future__ import annotations

import pytest

import kvmlab


def test_unlock_alloc_duplicate_entry_waiter_asleep_forever_dummy_leaked():
    r = kvmlab.check("apf_wake", "unlock_alloc")
    dup = r.violation("no_duplicate_token")
    lost = r.violation("no_lost_wakeup")
    leak = r.violation("no_leak")
    assert dup and lost and leak
    assert "in the bucket twice" in dup.message
    assert "asleep in schedule() forever" in lost.message
    assert "dummy" in leak.message and "never freed" in leak.message
    # the waker never called apf_task_wake_one(): no step of that function in the run
    assert not any(st["fn"] == "apf_task_wake_one" for st in lost.trace)
    # the end state: two entries for token 1, the waiter's node still hashed
    shared = lost.trace[-1]["state"]["shared"]
    assert shared["b->list"].count("token 1") == 2
    # the window: the waker dropped b->lock before kzalloc and the waiter queued meanwhile
    cs = [(st["thread"], st["c"]) for st in lost.trace]
    i_unlock = cs.index((1, "raw_spin_unlock(&b->lock);"))
    i_add = cs.index((0, "hlist_add_head(&n->link, &b->list);"))
    i_alloc = next(i for i, (t, c) in enumerate(cs) if t == 1 and "kzalloc" in c)
    assert i_unlock < i_add < i_alloc


@pytest.mark.parametrize("waiters,wakers,fails", [
    (1, 1, 0), (1, 1, 1), (1, 1, 3), (2, 1, 1), (2, 1, 2), (2, 2, 1), (2, 2, 2), (3, 1, 1), (3, 2, 1),
    (3, 3, 1),
])
def test_recheck_is_exhaustively_clean(waiters, wakers, fails):
    r = kvmlab.check("apf_wake", "recheck", params={"waiters": waiters, "wakers": wakers, "alloc_failures": fails},
                     liveness=waiters <= 2)  # progress judged up to 2 waiters; safety beyond
    assert r.complete and r.ok, [(v.property, v.message) for v in r.violations]


def test_original_reports_might_sleep_only_on_rt():
    r = kvmlab.check("apf_wake", "original", config={"PREEMPT_RT": "y"})
    v = r.violation("no_sleep_in_atomic")
    assert v is not None and v.kind == "splat"
    lines = v.splat.splitlines()
    # The __might_resched() format of 2022 kernels: file:line, non_block, then the
    # preempt count (one raw lock held) and, PREEMPT_RT implying PREEMPT_RCU, the RCU depth.
    assert lines[0] == "BUG: sleeping function called from invalid context at kernel/locking/spinlock_rt.c:46"
    assert lines[1].startswith("in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: ")
    assert lines[2] == "preempt_count: 1, expected: 0"
    assert lines[3] == "RCU nest depth: 0, expected: 0"
    assert lines[4] == "Preemption disabled at:"
    assert "raw_spin_lock(&b->lock);" in lines[5]
    assert "GFP_ATOMIC" in v.trace[-1]["c"]
    r = kvmlab.check("apf_wake", "original", config={"PREEMPT_RT": "n"})
    assert r.ok
    r = kvmlab.check("apf_wake", "original", config={"PREEMPT_RT": "n"}, params={"waiters": 2, "wakers": 2})
    assert r.ok


def test_hardirq_report_names_the_interrupted_idle_task():
    """A hard interrupt has no task of its own: the report names the idle task it interrupted."""
    r = kvmlab.check("apf_wake", "recheck_atomic", config={"PREEMPT_RT": "y"}, params={"context": "hardirq"})
    v = r.violation("no_sleep_in_atomic")
    assert v is not None
    lines = v.splat.splitlines()
    assert "pid: 0, name: swapper/1" in lines[1], lines[1]
    assert lines[2] == "preempt_count: 10000, expected: 0"
    assert "kworker" not in v.splat


def test_gfp_kernel_in_hardirq_reports_might_alloc_site():
    """0547758a6de3's GFP_KERNEL in the interrupt: reported from might_alloc() in sched/mm.h, RT or not."""
    r = kvmlab.check("apf_wake", "recheck", config={"PREEMPT_RT": "n"}, params={"context": "hardirq"})
    v = r.violation("no_sleep_in_atomic")
    assert v is not None
    lines = v.splat.splitlines()
    assert lines[0].endswith("at include/linux/sched/mm.h:274")
    assert lines[1].startswith("in_atomic(): 1, irqs_disabled(): 1, non_block: 0, pid: 0, name: swapper/")


def test_kvm_async_pf_queue_task_is_written_once():
    """The three async #PF models run the one copy of kvm_async_pf_queue_task() in _apf_common."""
    import inspect
    import pathlib

    from kvmlab.models import _apf_common, apf_handshake, apf_wait, apf_wake

    steps = ("lock", "find", "if_e", "del_dummy", "unlock_dummy", "kfree_dummy", "init_node", "add", "unlock")
    for cls in (apf_wake.Waiter, apf_handshake.FaultSchedule, apf_handshake.FaultSafeHalt,
                apf_wait.SplitWait, apf_wait.SplitHost):
        for name in steps:
            f = getattr(cls, name)
            assert inspect.getmodule(f) is _apf_common, (cls.__name__, name)
            assert cls._specs[name].fn == "kvm_async_pf_queue_task"
        order = [n for n in cls._order if n in steps]
        assert order == list(steps), (cls.__name__, order)
    models = pathlib.Path(apf_wake.__file__).parent
    for path in models.glob("*.py"):
        if path.name != "_apf_common.py":
            assert 'fn="kvm_async_pf_queue_task"' not in path.read_text(), path.name
    # "return true" falls through to the caller's wait loop: a learner's steps appended after it
    # (lab 2) are reachable, and the engine sees it
    from kvmlab.engine import line
    from kvmlab.engine.model import _may_return_none

    class Appended(apf_handshake.FaultQueue):
        @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);")
        def prepare(self, w, t):
            w.prepare_to_swait_exclusive(self.wq)
    assert Appended._order[-2:] == ("unlock", "prepare")
    assert _may_return_none(Appended.unlock, Appended)
    # the 2020 version sets n->use_halt, the 2022 version has no such line
    assert "n->use_halt = use_halt;" in apf_wait.SplitWait._specs["init_node"].c
    assert "n->use_halt = use_halt;" not in apf_wake.Waiter._specs["init_node"].c
