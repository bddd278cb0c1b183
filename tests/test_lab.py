"""The grading API: a correct and a wrong learner variant of lost_update, errors, bounds."""

from __future__ import annotations

import pytest

import kvmlab
from kvmlab import KvmlabError
from kvmlab.engine import DONE, line
from kvmlab.lab import grade
from kvmlab.models.lost_update import LockedInc, PlainInc

M = kvmlab.model("lost_update")
PLAIN = M.variant("plain")
SETTINGS = dict(params=[{"cpus": 2}, {"cpus": 3}], configs=[{"PREEMPT_RT": False}, {"PREEMPT_RT": True}])


class LockAroundLoadOnly(LockedInc):
    """A plausible wrong fix: the lock covers the load but is dropped before the store."""

    @line("spin_unlock(&lock);", after="load")
    def unlock_early(self, w, t):
        w.spin_unlock("lock")

    @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
    def store(self, w, t):
        w["counter"] = t.tmp + 1
        t.i += 1
        if t.i < self.loops:
            return "lock"
        return DONE

    drop = ("unlock",)


class MyAtomic(PlainInc):
    """A correct fix written by a learner: one atomic read-modify-write per increment."""

    drop = ("store",)

    @line("atomic_inc(&counter);")
    def load(self, w, t):
        w.atomic_inc("counter")
        t.i += 1
        if t.i < self.loops:
            return "load"


def test_correct_variant_passes():
    mine = PLAIN.derive("mine", "atomic_inc", programs={"worker": MyAtomic}, buggy=False)
    rep = grade(M, mine, **SETTINGS)
    assert rep.passed and bool(rep)
    assert len(rep.runs) == 4 and all(r.verdict == "pass" for r in rep.runs)
    assert rep.counterexample is None and rep.timeline() is None
    assert str(rep).startswith("grade lost_update / mine: PASS: no violation in ")
    assert "progress under none fairness" in rep.headline()  # the bounds come with the PASS
    assert "✓" in rep._repr_html_()
    # the shipped fixes pass too
    assert grade("lost_update", "spinlock", **SETTINGS).passed
    assert grade("lost_update", "atomic", params={"cpus": 2, "loops": 2}).passed


def test_wrong_variant_is_not_yet_with_the_shortest_counterexample():
    mine = PLAIN.derive("early", "unlock before the store", programs={"worker": LockAroundLoadOnly})
    rep = grade(M, mine, **SETTINGS)  # never raises
    assert not rep.passed
    f = rep.first_failure
    assert f.verdict == "fail" and f.failed == ["no_lost_update"]
    want = kvmlab.check(M, mine, config={"PREEMPT_RT": False}, params={"cpus": 2})
    assert rep.counterexample.schedule == want.violation("no_lost_update").schedule
    text = str(rep)
    assert "FAIL: no_lost_update violated" in text
    assert "spin_unlock(&lock);" in text  # the timeline, in plain text
    page = rep._repr_html_()
    assert "<svg" in page and "no_lost_update" in page
    # the plain counter++ fails the same way
    rep2 = grade("lost_update", "plain")
    assert not rep2.passed
    assert rep2.counterexample.schedule == ["0", "1", "0", "1"]


class Crashy(PlainInc):
    @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
    def store(self, w, t):
        w["counter"] = t.tmp + undefined_name  # noqa: F821 - the learner's typo


def test_a_crashing_program_is_an_error_verdict():
    mine = PLAIN.derive("typo", "a NameError in the store", programs={"worker": Crashy})
    rep = grade(M, mine)
    assert not rep.passed
    f = rep.first_failure
    assert f.verdict == "error"
    e = f.error
    assert e.exception == "NameError" and "undefined_name" in e.message
    assert e.cpu == "CPU0" and e.step == "store" and "store" in e.c_line
    assert e.schedule == ["0"]  # the shortest way to reach the crash
    assert "test_lab.py" in e.where
    assert "NameError" in str(rep) and "[  error   ]" in str(rep) and "FAIL" in str(rep)
    assert "NameError" in rep._repr_html_()


class Unhashable(PlainInc):
    locals = {"tmp": 0, "i": 0, "seen": []}


def test_a_broken_program_class_is_an_error_not_an_exception():
    mine = PLAIN.derive("bad", "unhashable local", programs={"worker": Unhashable})
    rep = grade(M, mine)
    assert not rep.passed and rep.runs[0].verdict == "error"
    assert "not hashable" in rep.runs[0].error.message


def test_must_hold_and_incomplete():
    # unlock_alloc no longer sleeps in atomic context, but loses wake-ups
    rep = grade("apf_wake", "unlock_alloc", must_hold=["no_sleep_in_atomic"])
    assert rep.passed
    assert "no_lost_wakeup" in rep.runs[0].other
    rep = grade("apf_wake", "unlock_alloc", must_hold="no_lost_wakeup")
    assert not rep.passed and rep.first_failure.failed == ["no_lost_wakeup"]
    rep = grade("apf_wake", "recheck", max_states=50)
    assert not rep.passed and rep.runs[0].verdict == "incomplete"
    assert "did not finish" in str(rep)


def test_bad_arguments_raise():
    with pytest.raises(KvmlabError):
        grade("lost_update", "plain", params={"nope": 1})
    with pytest.raises(KvmlabError):
        grade("lost_update", "nope")
    with pytest.raises(KvmlabError):
        grade("no_such_model", "plain")


def test_a_learner_program_has_the_steps_in_the_order_it_declares():
    p = LockAroundLoadOnly("x", loops=1)
    assert [s.name for s in p.steps] == ["lock", "load", "unlock_early", "store"]  # after=, drop=
    assert p.steps[2].c == ("spin_unlock(&lock);",) and p.index["store"] == 3
    assert p.steps[3].text.startswith("counter++;")  # the override keeps its place and its new line
    assert [s.name for s in LockedInc("y", loops=1).steps] == ["lock", "load", "store", "unlock"]  # untouched
    # and it runs in that order: lock, load, unlock, store
    mine = PLAIN.derive("early", "unlock before the store", programs={"worker": LockAroundLoadOnly})
    tr = kvmlab.replay(M, mine, params={"cpus": 1}, schedule=["0"] * 4)
    assert [s["step"] for s in tr.steps] == ["lock", "load", "unlock_early", "store"]
