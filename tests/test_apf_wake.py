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
    assert lines[0].startswith("BUG: sleeping function called from invalid context at ")
    assert lines[1].startswith("in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: ")
    assert lines[2] == "Preemption disabled at:"
    assert "raw_spin_lock(&b->lock);" in lines[3]
    assert "GFP_ATOMIC" in v.trace[-1]["c"]
    r = kvmlab.check("apf_wake", "original", config={"PREEMPT_RT": "n"})
    assert r.ok
    r = kvmlab.check("apf_wake", "original", config={"PREEMPT_RT": "n"}, params={"waiters": 2, "wakers": 2})
    assert r.ok
