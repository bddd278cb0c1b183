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

``call_rcu(head, fn)`` (declare the callback list with ``declare_call_rcu()``
in setup) queues callback ``fn`` for ``head`` and notes the readers it must
wait for: every thread, the caller included, that is inside a read-side
critical section on a watching CPU at the call. Each such reader's next
outermost ``rcu_read_unlock()`` (or its end) removes it from the note; the
callback is runnable once the note is empty, i.e. after a grace period with
no pre-existing reader left. Who runs callbacks is up to the model (a thread
standing for the RCU callback kthread or softirq calls
``rcu_pop_callback()``); callbacks become runnable in the order queued, but
a ready one may run before an older one that is still waiting. Readers that
start after the call are not waited for, as in the kernel.

SRCU (sleepable RCU) readers: ``srcu_struct(name)`` declares the shared
field ``name`` holding the thread ids of current readers (a reader may
nest, so an id can appear more than once). ``srcu_read_lock()`` does not
disable preemption and a reader may sleep; it returns the index the kernel
would return (always 0 here: the two-counter flip of the SRCU grace period
is not modelled, nor is ``synchronize_srcu()``). Lockdep's view of SRCU is
not modelled either (it is not one of the locks the wait-type check sees).
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
        if t["_rcu"] == 0 and "@rcu_cbs" in self.sh:
            self._rcu_cbs_quiescent(self.tid)
        if t["_rcu"] == 0:
            gp = "@rcu_qs"
            if gp in self.sh:
                qs = dict(self.sh[gp])
                qs[self.tid] = qs.get(self.tid, 0) + 1
                self.sh[gp] = tuple(sorted(qs.items()))
        if not self.cfg("PREEMPT_RCU", True):
            self.preempt_enable()

    def rcu_dereference(self, ref):
        # rcu_dereference_check(): rcu_read_lock_held() is false while RCU is not watching
        self._rcu_check("suspicious rcu_dereference_check() usage!")
        return self.get(ref)

    def rcu_preempt_depth(self) -> int:
        """rcu_preempt_depth(): the read-side nesting with PREEMPT_RCU, always 0 without it.

        Without PREEMPT_RCU, rcu_read_lock() disables preemption instead: the
        reader shows in preempt_count() (when the count is visible), not here.
        """
        return self.t["_rcu"] if self.cfg("PREEMPT_RCU", True) else 0

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
        self.may_block = True
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

    # -- call_rcu() ------------------------------------------------------------------
    def declare_call_rcu(self) -> None:
        """Declare the list of queued RCU callbacks (in setup, for call_rcu())."""
        self.declare("@rcu_cbs", ())

    def call_rcu(self, head, fn: str) -> None:
        """call_rcu(head, fn): run ``fn`` on ``head`` after the current readers are done."""
        waits = tuple(i for i in range(self.nthreads) if self._reader_watched(i))
        self.sh["@rcu_cbs"] = self.sh["@rcu_cbs"] + ((head, fn, waits),)

    def _rcu_cbs_quiescent(self, tid: int) -> None:
        cbs = self.sh["@rcu_cbs"]
        if any(tid in waits for _, _, waits in cbs):
            self.sh["@rcu_cbs"] = tuple((h, f, tuple(i for i in waits if i != tid)) for h, f, waits in cbs)

    def rcu_callbacks(self) -> tuple:
        """Queued callbacks as ``(head, fn, readers still waited for)``."""
        return self.sh["@rcu_cbs"]

    def rcu_pop_callback(self):
        """Take the oldest callback whose grace period has elapsed: ``(head, fn)``, or None."""
        cbs = self.sh["@rcu_cbs"]
        for k, (h, f, waits) in enumerate(cbs):
            if all(self.thread(i) is None for i in waits):
                self.sh["@rcu_cbs"] = cbs[:k] + cbs[k + 1:]
                return h, f
        return None

    def _reader_watched(self, i: int) -> bool:
        th = self.thread(i)
        return th is not None and th["_rcu"] > 0 and th["_watch"] > 0


class SrcuMixin:
    """SRCU read side: srcu_read_lock()/srcu_read_unlock() on a declared srcu_struct."""

    def srcu_struct(self, name: str) -> str:
        """Declare an srcu_struct (in setup); its field lists the readers' thread ids."""
        self.declare(name, ())
        return name

    def srcu_read_lock(self, name: str) -> int:
        self.sh[name] = tuple(sorted(self.sh[name] + (self.tid,)))
        return 0

    def srcu_read_unlock(self, name: str, idx: int = 0) -> None:
        readers = list(self.sh[name])
        if self.tid not in readers:
            from ..engine.errors import ModelError
            raise ModelError(f"{self.me()}: srcu_read_unlock({name}) without srcu_read_lock()")
        readers.remove(self.tid)
        self.sh[name] = tuple(readers)
