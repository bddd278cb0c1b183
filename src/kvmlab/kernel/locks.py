"""raw_spinlock_t, spinlock_t and mutex, after Documentation/locking/locktypes.rst.

* ``raw_spinlock_t`` always spins and disables preemption (``_irq`` forms
  also disable interrupts), on every kernel.
* ``spinlock_t`` is the same on !PREEMPT_RT; on PREEMPT_RT it is a sleeping
  lock based on rt_mutex: taking it may sleep (might_sleep() fires in atomic
  context), a waiter sleeps instead of spinning, and preemption stays
  enabled (the ``_irq`` forms do not disable interrupts on RT either).
* ``mutex`` always may sleep.

Lockdep's wait-type check (``[ BUG: Invalid wait context ]``) is modelled
when ``PROVE_LOCKING`` or ``PROVE_RAW_LOCK_NESTING`` is set: a lock may not
be taken inside a context whose wait type is lower (raw spinlock: SPIN=2,
spinlock_t: CONFIG=3, mutex: SLEEP=4, task context: 5). Without
``PROVE_RAW_LOCK_NESTING``, CONFIG is SPIN (the numbers close up), so only a
sleeping lock inside a spinning one is reported. The report's
``context-{N:N}`` line is the task's own wait context, as lockdep prints it.

Simplifications: a spinning CPU is a thread that cannot move until the lock
is free (no spin loop in the state space); a lock acquisition is one atomic
step; unlock hands the lock to nobody in particular (any waiter may win).

``rwlock_t`` (``read_lock()/read_unlock()/write_lock()/write_unlock()``,
``cond_resched_rwlock_read()/write()`` as an unlock step and a lock step):
the !PREEMPT_RT spinning readers-writer lock. Any number of readers, or one
writer; both disable preemption. The lock's shared field holds ``None``
(free), the writer's thread id, or a sorted tuple of the readers' thread ids.
Out of scope: the queued rwlock's fairness (a waiting writer does not hold
off new readers here: who gets the lock next is any enabled thread), and
PREEMPT_RT, where ``rwlock_t`` is an rt_mutex-based sleeping lock: the model
keeps the spinning semantics whatever the config says. Lockdep's wait-type
check treats ``rwlock_t`` like ``spinlock_t``.
"""

from __future__ import annotations

from ..engine.errors import Blocked, ModelError, Stay
from . import splat

RAW, SPIN, MUTEX = "raw_spinlock_t", "spinlock_t", "mutex"
RWLOCK = "rwlock_t"
_WAIT = {RAW: 2, SPIN: 3, MUTEX: 4, RWLOCK: 3}
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
        """lockdep's wait type: LD_WAIT_SPIN=2, LD_WAIT_CONFIG=3, LD_WAIT_SLEEP=4, LD_WAIT_MAX=5.

        Without PROVE_RAW_LOCK_NESTING, LD_WAIT_CONFIG is LD_WAIT_SPIN and the
        enum closes up (SLEEP=3, MAX=4), as in include/linux/lockdep_types.h.
        """
        nesting = self.cfg("PROVE_RAW_LOCK_NESTING")
        wt = _WAIT[kind]
        if not nesting and wt >= _WAIT[SPIN]:
            wt -= 1
        return wt

    def _task_wait_context(self) -> int:
        """task_wait_context(): SPIN in a hard interrupt, LD_WAIT_MAX in a task."""
        if self.in_hardirq():
            return _WAIT[RAW]
        return TASK_CONTEXT_WAIT if self.cfg("PROVE_RAW_LOCK_NESTING") else TASK_CONTEXT_WAIT - 1

    def _lockdep_check(self, name: str) -> None:
        """check_wait_context(): runs with PROVE_LOCKING (implied by PROVE_RAW_LOCK_NESTING)."""
        if not (self.cfg("PROVE_RAW_LOCK_NESTING") or self.cfg("PROVE_LOCKING")):
            return
        wt = self._wait_type(self.lock_type(name))
        t = self.t
        ctx = self._task_wait_context()
        task_ctx = ctx
        held = []
        for h, site in t["_held"]:
            hw = self._wait_type(self.lock_type(h))
            ctx = min(ctx, hw)
            held.append((h, hw, site))
        if wt > ctx:
            p = self.me()
            text = splat.invalid_wait_context(p.comm, p.pid, name, wt, self.site(), task_ctx, held)
            self.report("no_invalid_wait_context", text, title="[ BUG: Invalid wait context ]")

    def _take(self, name: str) -> None:
        t = self.t
        self.sh[name] = self.tid
        t["_held"] = t["_held"] + ((name, self.site()),)

    def _release(self, name: str) -> bool:
        """Release ``name``; False (and a report) if this thread does not hold it."""
        t = self.t
        owner = self.sh[name]
        if owner != self.tid:
            p = self.me()
            who = "nobody" if owner is None else self.label(owner)
            self.report("no_bad_unlock", splat.unlock_non_owner(name, p.comm, p.pid, who, self.site()),
                        title="WARNING: bad unlock balance detected!")
            return False
        self.sh[name] = None
        held = list(t["_held"])
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] == name:
                del held[i]
                break
        t["_held"] = tuple(held)
        return True

    def _spin_or_take(self, name: str, verb: str = "spinning on") -> None:
        self.may_block = True
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
        if self._release(name):
            self.preempt_enable()

    def raw_spin_lock_irq(self, name: str) -> None:
        self._spin_or_take(name)
        self.local_irq_disable()
        self.preempt_disable()

    def raw_spin_unlock_irq(self, name: str) -> None:
        if self._release(name):
            self.preempt_enable()
            self.local_irq_enable()

    def raw_spin_lock_irqsave(self, name: str) -> bool:
        self._spin_or_take(name)
        flags = self.local_irq_save()
        self.preempt_disable()
        return flags

    def raw_spin_unlock_irqrestore(self, name: str, flags: bool) -> None:
        if self._release(name):
            self.preempt_enable()
            self.local_irq_restore(flags)

    # -- spinlock_t ------------------------------------------------------------------------
    def _sleeping_lock(self, name: str, where: str) -> None:
        """Acquire a sleeping lock (rt_mutex-based spinlock_t on RT, or a mutex).

        First attempt: might_sleep() check; if the lock is free, take it; if not,
        the task goes to sleep waiting for it (Stay). Later attempts: take it when
        free.
        """
        self.may_block = True
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
        if self._release(name) and not self.rt:
            self.preempt_enable()

    def spin_lock_irq(self, name: str, *, where: str = splat.WHERE_RT_SPINLOCK) -> None:
        if self.rt:
            self._sleeping_lock(name, where)
        else:
            self._spin_or_take(name)
            self.local_irq_disable()
            self.preempt_disable()

    def spin_unlock_irq(self, name: str) -> None:
        if self._release(name) and not self.rt:
            self.preempt_enable()
            self.local_irq_enable()

    # -- mutex -------------------------------------------------------------------------------
    def mutex_lock(self, name: str) -> None:
        self._sleeping_lock(name, splat.WHERE_MUTEX)

    def mutex_unlock(self, name: str) -> None:
        self._release(name)

    # -- rwlock_t (!PREEMPT_RT semantics, see the module docstring) ---------------------------
    def rwlock(self, name: str) -> str:
        """Declare an rwlock_t (in setup)."""
        return self._lock_decl(name, RWLOCK)

    def _rw_state(self, name: str):
        if self.lock_type(name) != RWLOCK:
            raise ModelError(f"{name!r} is not an rwlock_t")
        return self.sh[name]

    def read_lock(self, name: str) -> None:
        self.may_block = True
        st = self._rw_state(name)
        if isinstance(st, int):
            if st == self.tid:
                raise Blocked(f"deadlock: read_lock({name}) while holding it for write")
            raise Blocked(f"spinning on {name} (held for write by {self.label(st)})")
        if st is not None and self.tid in st:
            raise ModelError(f"{self.me()}: read_lock({name}) twice (recursive read locking is not modelled)")
        self._lockdep_check(name)
        self.sh[name] = tuple(sorted((st or ()) + (self.tid,)))
        self.t["_held"] = self.t["_held"] + ((name, self.site()),)
        self.preempt_disable()

    def read_unlock(self, name: str) -> None:
        st = self._rw_state(name)
        if not isinstance(st, tuple) or self.tid not in st:
            p = self.me()
            who = "nobody" if st is None else (self.label(st) + " (write)" if isinstance(st, int)
                                               else ", ".join(self.label(i) for i in st))
            self.report("no_bad_unlock", splat.unlock_non_owner(name, p.comm, p.pid, who, self.site()),
                        title="WARNING: bad unlock balance detected!")
            return
        rest = tuple(i for i in st if i != self.tid)
        self.sh[name] = rest or None
        self._drop_held(name)
        self.preempt_enable()

    def write_lock(self, name: str) -> None:
        self.may_block = True
        st = self._rw_state(name)
        if st is not None:
            if st == self.tid or (isinstance(st, tuple) and self.tid in st):
                raise Blocked(f"deadlock: write_lock({name}) while holding it")
            who = self.label(st) if isinstance(st, int) else ", ".join(self.label(i) for i in st)
            mode = "write" if isinstance(st, int) else "read"
            raise Blocked(f"spinning on {name} (held for {mode} by {who})")
        self._lockdep_check(name)
        self._take(name)
        self.preempt_disable()

    def write_unlock(self, name: str) -> None:
        if self._rw_state(name) != self.tid:
            self._release(name)  # reports the bad unlock
            return
        self._release(name)
        self.preempt_enable()

    def _drop_held(self, name: str) -> None:
        held = list(self.t["_held"])
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] == name:
                del held[i]
                break
        self.t["_held"] = tuple(held)

    def rw_readers(self, name: str) -> tuple:
        """Thread ids holding rwlock ``name`` for read."""
        st = self._rw_state(name)
        return st if isinstance(st, tuple) else ()

    def rw_writer(self, name: str):
        """Thread id holding rwlock ``name`` for write, or None."""
        st = self._rw_state(name)
        return st if isinstance(st, int) else None

    # cond_resched_rwlock_read/write(): drop the lock, schedule, take it again. The
    # model splits it into an unlock step and a lock step so other CPUs can run between.
    cond_resched_rwlock_read_unlock = read_unlock
    cond_resched_rwlock_read_relock = read_lock
    cond_resched_rwlock_write_unlock = write_unlock
    cond_resched_rwlock_write_relock = write_lock

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
