"""Reference solutions for lab 0 (notebooks/lab0-lost-update.ipynb): a safe counter++.

``MyInc`` is the solution the tests put in place of the notebook's starter cell; the two
alternatives are graded by the tests too. Keep this file out of student notebooks.
"""

from __future__ import annotations

from kvmlab.engine import Program, line


class MyInc(Program):
    """counter++ under spin_lock(&lock): the load and the store cannot be separated."""

    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("spin_lock(&lock);")
    def lock(self, w, t):
        w.spin_lock("lock")

    @line("counter++;    /* load:  mov counter, %eax */")
    def load(self, w, t):
        t.tmp = w["counter"]

    @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
    def store(self, w, t):
        w["counter"] = t.tmp + 1
        t.i += 1

    @line("spin_unlock(&lock);")
    def unlock(self, w, t):
        w.spin_unlock("lock")
        if t.i < self.loops:
            return "lock"  # the next increment takes the lock again


class AtomicInc(Program):
    """atomic_inc(&counter): one indivisible read-modify-write."""

    fn = "worker"
    locals = {"i": 0}

    @line("atomic_inc(&counter);")
    def inc(self, w, t):
        w.atomic_inc("counter")
        t.i += 1
        if t.i < self.loops:
            return "inc"


class CmpxchgInc(Program):
    """A cmpxchg() retry loop: store old + 1 only if the counter still holds old."""

    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("old = counter;")
    def load(self, w, t):
        t.tmp = w["counter"]

    @line("if (cmpxchg(&counter, old, old + 1) != old) goto retry;")
    def store(self, w, t):
        if w.cmpxchg("counter", t.tmp, t.tmp + 1) != t.tmp:
            return "load"
        t.i += 1
        if t.i < self.loops:
            return "load"


SOLUTIONS = {"spinlock": MyInc, "atomic": AtomicInc, "cmpxchg": CmpxchgInc}
