"""raw_spinlock_t, spinlock_t and mutex, after Documentation/locking/locktypes.rst.

* ``raw_spinlock_t`` always spins and disables preemption (``_irq`` forms
  also disable interrupts), on every kernel.
* ``spinlock_t`` is the same on !PREEMPT_RT; on PREEMPT_RT it is a sleeping
  lock based on rt_mutex: taking it may sleep (might_sleep() fires in atomic
  context), a waiter sleeps instead of spinning, and preemption stays
  enabled (the ``_irq`` forms do not disable interrupts on RT either).
* ``mutex`` always may sleep.

Lockdep's wait-type check (``[ BUG: Invalid wait context ]``) is modelled
when ``PROVE_RAW_LOCK_NESTING`` is set: a lock may not be taken inside a
context whose wait type is lower (raw spinlock: SPIN=2, spinlock_t:
CONFIG=3, mutex: SLEEP=4, task context: 5).

Simplifications: a spinning CPU is a thread that cannot move until the lock
is free (no spin loop in the state space); a lock acquisition is one atomic
step; unlock hands the lock to nobody in particular (any waiter may win).
"""

from __future__ import annotations

from ..engine.errors import Blocked, ModelError, Stay
from . import splat

RAW, SPIN, MUTEX = "raw_spinlock_t", "spinlock_t", "mutex"
_WAIT = {RAW: 2, SPIN: 3, MUTEX: 4}
TASK_CONTEXT_WAIT = 5


class LockMixin:
    """Lock primitives; a lock's shared field holds its owner's thread id or None."""

    # -- declaration (in Model.setup) -------------------------------------------
    def _lock_decl(self, name: str, kind: str) -> str:
        self.declare(name, None)
        self.sys.__dict__.setdefault("lock_types", {})[name] = kind
        return name

    def raw_spinlock(self, name: str) -> str:
        return self._lock_decl(name, RAW)

    def spinlock(self, name: str) -> str:
        return self._lock_decl(name, SPIN)

    def mutex(self, name: str) -> str:
        return self._lock_decl(name, MUTEX)

    def lock_type(self, name: str) -> str:
        try:
            return self.sys.lock_types[name]
        except (AttributeError, KeyError):
            raise ModelError(f"{name!r} is not a declared lock") from None

    # -- lockdep ---------------------------------------------------------------------
    def _wait_type(self, kind: str) -> int:
        wt = _WAIT[kind]
        if kind == SPIN and not self.cfg("PROVE_RAW_LOCK_NESTING"):
            wt = _WAIT[RAW]  # LD_WAIT_CONFIG == LD_WAIT_SPIN without the option
        return wt

    def _lockdep_check(self, name: str) -> None:
        if not self.cfg("PROVE_RAW_LOCK_NESTING"):
            return
        kind = self.lock_type(name)
        wt = self._wait_type(kind)
        t = self.t
        ctx = TASK_CONTEXT_WAIT
        held = []
        for h, site in t["_held"]:
            hw = self._wait_type(self.lock_type(h))
            ctx = min(ctx, hw)
            held.append((h, hw, site))
        if self.in_hardirq():
            ctx = min(ctx, _WAIT[RAW])
        if wt > ctx:
            p = self.me()
            text = splat.invalid_wait_context(p.comm, p.pid, name, wt, self.site(), ctx,
                                              [(h, w, s) for h, w, s in held])
            self.report("no_invalid_wait_context", text, title="[ BUG: Invalid wait context ]")

    def _take(self, name: str) -> None:
        t = self.t
        self.sh[name] = self.tid
        t["_held"] = t["_held"] + ((name, self.site()),)

    def _release(self, name: str) -> None:
        t = self.t
        owner = self.sh[name]
        if owner != self.tid:
            p = self.me()
            who = "nobody" if owner is None else self.label(owner)
            self.report("no_bad_unlock", splat.unlock_non_owner(name, p.comm, p.pid, who, self.site()),
                        title="WARNING: bad unlock balance detected!")
            return
        self.sh[name] = None
        held = list(t["_held"])
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] == name:
                del held[i]
                break
        t["_held"] = tuple(held)

    def _spin_or_take(self, name: str, verb: str = "spinning on") -> None:
        owner = self.sh[name]
        if owner is not None:
            if owner == self.tid:
                raise Blocked(f"deadlock: {verb} {name} which it holds itself")
            raise Blocked(f"{verb} {name} (held by {self.label(owner)})")
        self._lockdep_check(name)
        self._take(name)

    # -- raw_spinlock_t ----------------------------------------------------------------
    def raw_spin_lock(self, name: str) -> None:
        self._spin_or_take(name)
        self.preempt_disable()

    def raw_spin_unlock(self, name: str) -> None:
        self._release(name)
        self.preempt_enable()

    def raw_spin_lock_irq(self, name: str) -> None:
        self._spin_or_take(name)
        self.local_irq_disable()
        self.preempt_disable()

    def raw_spin_unlock_irq(self, name: str) -> None:
        self._release(name)
        self.preempt_enable()
        self.local_irq_enable()

    def raw_spin_lock_irqsave(self, name: str) -> bool:
        self._spin_or_take(name)
        flags = self.local_irq_save()
        self.preempt_disable()
        return flags

    def raw_spin_unlock_irqrestore(self, name: str, flags: bool) -> None:
        self._release(name)
        self.preempt_enable()
        self.local_irq_restore(flags)

    # -- spinlock_t ------------------------------------------------------------------------
    def _sleeping_lock(self, name: str, where: str) -> None:
        """Acquire a sleeping lock (rt_mutex-based spinlock_t on RT, or a mutex).

        First attempt: might_sleep() check; if the lock is free, take it; if not,
        the task goes to sleep waiting for it (Stay). Later attempts: take it when
        free.
        """
        t = self.t
        if t["_wait"] == name:
            owner = self.sh[name]
            if owner is not None:
                raise Blocked(f"asleep on {name} (held by {self.label(owner)})")
            t["_wait"] = None
            self._take(name)
            return
        owner = self.sh[name]
        if owner == self.tid:
            raise Blocked(f"deadlock: sleeping on {name} which it holds itself")
        self.might_sleep(where)
        self._lockdep_check(name)
        if owner is not None:
            t["_wait"] = name
            raise Stay()
        self._take(name)

    def spin_lock(self, name: str, *, where: str = splat.WHERE_RT_SPINLOCK) -> None:
        if self.rt:
            self._sleeping_lock(name, where)
        else:
            self._spin_or_take(name)
            self.preempt_disable()

    def spin_unlock(self, name: str) -> None:
        self._release(name)
        if not self.rt:
            self.preempt_enable()

    def spin_lock_irq(self, name: str, *, where: str = splat.WHERE_RT_SPINLOCK) -> None:
        if self.rt:
            self._sleeping_lock(name, where)
        else:
            self._spin_or_take(name)
            self.local_irq_disable()
            self.preempt_disable()

    def spin_unlock_irq(self, name: str) -> None:
        self._release(name)
        if not self.rt:
            self.preempt_enable()
            self.local_irq_enable()

    # -- mutex -------------------------------------------------------------------------------
    def mutex_lock(self, name: str) -> None:
        self._sleeping_lock(name, splat.WHERE_MUTEX)

    def mutex_unlock(self, name: str) -> None:
        self._release(name)

    # -- queries -------------------------------------------------------------------------------
    def lock_owner(self, name: str):
        return self.sh[name]

    def holds(self, name: str) -> bool:
        return any(h == name for h, _ in self.t["_held"])

    def on_finish(self, tid, t) -> None:
        if t["_held"]:
            p = self.programs[tid]
            self.report("no_lock_leak", splat.lock_held_at_exit(p.comm, p.pid, [h for h, _ in t["_held"]]),
                        title="WARNING: lock held when returning to user space!")
