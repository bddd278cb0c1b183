"""Lab 1 reference solution: make kvm_async_pf_task_wake() safe on PREEMPT_RT.

Not part of the student notebook (notebooks/lab1-raw-locks.ipynb). The learner
writes a waker program; the grader runs the explorer on ``apf_wake`` with
PREEMPT_RT on and off and 1-2 waiters/wakers with allocation failures.

The reference follows the shape of the accepted fix, commit 0547758a6de3
(seed 000): drop ``b->lock`` before allocating, then ``goto again`` and look
the token up again before enqueueing the dummy; free an unused dummy after
unlocking. ``AllocFirstWaker`` is a second correct answer (allocate before
taking the lock, every call) that the grader must accept too.
"""

from __future__ import annotations

import kvmlab
from kvmlab.engine import line
from kvmlab.kernel import GFP_KERNEL
from kvmlab.models.apf_wake import B_LIST, B_LOCK, WakerOriginal, WakerUnlockAlloc, find_apf_task

MODEL = "apf_wake"
CONFIGS = [{"PREEMPT_RT": True}, {"PREEMPT_RT": False}]
PARAMS = [
    {"waiters": 1, "wakers": 1, "alloc_failures": 1},
    {"waiters": 2, "wakers": 1, "alloc_failures": 2},
    {"waiters": 2, "wakers": 2, "alloc_failures": 1},
]
MUST_HOLD = ["no_sleep_in_atomic", "no_duplicate_token", "no_lost_wakeup", "no_leak"]


class SolutionWaker(WakerOriginal):
    """Unlock, allocate, goto again: the token is looked up again before the dummy is added."""

    locals = {"dummy": None}

    @line("if (!dummy) {", after="if_not_n", local=True)
    def if_no_dummy(self, w, t):
        if t.dummy:
            return "init_dummy"

    @line("raw_spin_unlock(&b->lock);", before="alloc")
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

    @line("hlist_add_head(&dummy->link, &b->list);")
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


class AllocFirstWaker(WakerOriginal):
    """Another correct fix: allocate before taking the lock; retry only if it failed and is needed."""

    locals = {"dummy": None}

    @line("if (!dummy) dummy = kzalloc(sizeof(*dummy), GFP_KERNEL);", before="lock")
    def prealloc(self, w, t):
        if t.dummy is None:
            t.dummy = w.kzalloc(GFP_KERNEL, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(),
                                link=None)

    @line("again: raw_spin_lock(&b->lock);")
    def lock(self, w, t):
        w.raw_spin_lock(B_LOCK)

    @line("n = _find_apf_task(b, token);")
    def find(self, w, t):
        t.n = find_apf_task(w, self.token(t))

    @line("if (!dummy) {", after="if_not_n", local=True)
    def if_no_dummy(self, w, t):
        if t.dummy:
            return "init_dummy"
        self.failed(t)

    @line(["raw_spin_unlock(&b->lock);", "cpu_relax();", "goto again;"])
    def unlock_retry(self, w, t):
        w.raw_spin_unlock(B_LOCK)
        return "prealloc"

    drop = ("alloc", "if_alloc_failed", "retry")

    @line(["dummy->token = token;", "dummy->cpu = smp_processor_id();",
           "init_swait_queue_head(&dummy->wq);"], local=True)
    def init_dummy(self, w, t):
        n = w.deref(t.dummy)
        n["token"] = self.token(t)
        n["cpu"] = self.cpu

    @line(["hlist_add_head(&dummy->link, &b->list);", "dummy = NULL;"])
    def add_dummy(self, w, t):
        w.hlist_add_head(B_LIST, t.dummy)
        t.dummy = None
        return "unlock"

    @line(["if (dummy)", "kfree(dummy);"])
    def ret(self, w, t):
        if t.dummy is not None:
            w.kfree(t.dummy)
            t.dummy = None
        return self.next_call(w, t)


def _base():
    return kvmlab.model(MODEL).variant("original")


def solution_variant():
    return _base().derive("lab1_solution", "reference: unlock, allocate, goto again",
                          programs={"waker": SolutionWaker}, buggy=False)


def alloc_first_variant():
    return _base().derive("lab1_alloc_first", "allocate before taking b->lock",
                          programs={"waker": AllocFirstWaker}, buggy=False)


def unlock_alloc_variant():
    """The 2022 proposal's shape, written as a learner might: no second lookup."""
    return _base().derive("lab1_unlock_alloc", "unlock, allocate, relock, no second lookup",
                          programs={"waker": WakerUnlockAlloc}, buggy=False)


def starter_variant():
    """What the notebook starts with: the original code, unchanged."""
    return _base().derive("lab1_starter", "the original code (the notebook's starting point)",
                          programs={"waker": WakerOriginal}, buggy=False)

MyWaker = SolutionWaker  # the name lab 1's answer cell defines (kvmlab grade lab1 --reference)
