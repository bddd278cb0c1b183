"""RCU readers, grace periods, and whether RCU is watching.

* ``rcu_read_lock()/unlock()`` nest; with !PREEMPT_RCU they also disable
  preemption.
* ``_watch`` counts reasons RCU is watching this CPU; 0 is an extended
  quiescent state (idle, or user mode seen from RCU): RCU ignores the CPU,
  so a reader there is not waited for. ``rcu_irq_enter()/exit()`` make RCU
  watch for a while. Using RCU while not watching is lockdep-RCU's
  "suspicious RCU usage".
* ``synchronize_rcu()`` waits until every reader that was in a read-side
  critical section on a watching CPU when it started has left it.

Simplification: a grace period is tracked per call by the readers it must
wait for (thread ids and how many outermost unlocks each had done).
"""

from __future__ import annotations

from ..engine.errors import Blocked, Stay
from . import splat


class RcuMixin:
    def rcu_is_watching(self) -> bool:
        return self.t["_watch"] > 0

    def _rcu_check(self, what: str) -> None:
        if self.t["_watch"] == 0:
            p = self.me()
            self.report("rcu_used_while_watching", splat.rcu_suspicious(what, p.comm, p.pid, self.site()),
                        title="WARNING: suspicious RCU usage")

    def rcu_read_lock(self) -> None:
        self._rcu_check("include/linux/rcupdate.h: rcu_read_lock() used illegally while idle!")
        t = self.t
        t["_rcu"] += 1
        if not self.cfg("PREEMPT_RCU", True):
            self.preempt_disable()

    def rcu_read_unlock(self) -> None:
        self._rcu_check("include/linux/rcupdate.h: rcu_read_unlock() used illegally while idle!")
        t = self.t
        t["_rcu"] -= 1
        if t["_rcu"] == 0:
            gp = "@rcu_qs"
            if gp in self.sh:
                qs = dict(self.sh[gp])
                qs[self.tid] = qs.get(self.tid, 0) + 1
                self.sh[gp] = tuple(sorted(qs.items()))
        if not self.cfg("PREEMPT_RCU", True):
            self.preempt_enable()

    def rcu_dereference(self, ref):
        self._rcu_check("rcu_dereference() used illegally while idle!")
        return self.get(ref)

    def rcu_assign_pointer(self, ref, value) -> None:
        self.put(ref, value)

    def rcu_irq_enter(self) -> None:
        self.t["_watch"] += 1

    def rcu_irq_exit(self) -> None:
        self.t["_watch"] -= 1

    def declare_rcu(self) -> None:
        """Declare the grace-period bookkeeping (in setup, for synchronize_rcu())."""
        self.declare("@rcu_qs", ())

    def synchronize_rcu(self, waiting_local: str = "_gp") -> None:
        """Wait for pre-existing readers; the caller declares local ``waiting_local``.

        First run: note the readers to wait for; later runs: done when each
        has left its read-side critical section.
        """
        t = self.t
        qs = dict(self.sh["@rcu_qs"])
        if t[waiting_local] is None:
            pending = tuple((i, qs.get(i, 0)) for i in range(self.nthreads)
                            if i != self.tid and self._reader_watched(i))
            if not pending:
                return
            t[waiting_local] = pending
            raise Stay()
        left = [(i, n) for i, n in t[waiting_local] if qs.get(i, 0) == n]
        if left:
            raise Blocked("waiting for a grace period (readers: " +
                          ", ".join(self.label(i) for i, _ in left) + ")")
        t[waiting_local] = None

    def _reader_watched(self, i: int) -> bool:
        th = self.thread(i)
        return th is not None and th["_rcu"] > 0 and th["_watch"] > 0
