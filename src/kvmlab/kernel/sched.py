"""Task states, schedule(), simple wait queues (swait), halt and IPIs.

* ``set_current_state``/``prepare_to_swait_exclusive`` set the task state
  to TASK_UNINTERRUPTIBLE ("D"); a wake-up sets it back to running ("R").
* ``schedule()`` returns at once for a running task; a "D" task sleeps
  until woken ("asleep in schedule()"). Calling it inside an RCU reader or
  with preemption disabled is reported (the kernel's warnings).
* A wait queue is a tuple of thread ids stored at a ref (shared field name
  or ``(object id, field)``); ``swake_up_one`` wakes the first waiter.
* ``halt()`` is HLT: the CPU stops until an interrupt is pending for it
  (``smp_send_reschedule``). ``safe_halt()`` is STI;HLT as one step.

Simplification: wake-ups and sleeps are atomic steps; the scheduler's run
queues are not modelled (any runnable thread may run next).
"""

from __future__ import annotations

from ..engine.errors import Blocked, Stay
from . import splat

RUNNING, UNINTERRUPTIBLE, ASLEEP_REPORTED = "R", "D", "Ds"


class SchedMixin:
    def set_current_state(self, state: str) -> None:
        self.t["_state"] = state

    def schedule(self) -> None:
        """schedule(): report illegal contexts, sleep while not running."""
        t = self.t
        if t["_state"] == ASLEEP_REPORTED:
            raise Blocked("asleep in schedule()")
        p = self.me()
        reported = False
        if t["_rcu"] > 0 and self.cfg("PREEMPT_RCU", True):
            self.report("no_schedule_in_rcu_reader", splat.rcu_voluntary_switch(p.comm, p.pid, self.site()),
                        title="Voluntary context switch within RCU read-side critical section!")
            reported = True
        if self.preempt_count() != 0:
            self.report("no_sleep_in_atomic", splat.scheduling_while_atomic(p.comm, p.pid, t["_pre"]),
                        title="BUG: scheduling while atomic")
            reported = True
        if t["_state"] == RUNNING:
            return
        if reported:
            t["_state"] = ASLEEP_REPORTED
            raise Stay()
        raise Blocked("asleep in schedule()")

    def wake_up_process(self, tid: int) -> bool:
        th = self.thread(tid)
        if th is None or th["_state"] == RUNNING:
            return False
        th["_state"] = RUNNING
        return True

    # -- swait -------------------------------------------------------------------------
    def prepare_to_swait_exclusive(self, wq, state: str = UNINTERRUPTIBLE) -> None:
        q = self.get(wq)
        if self.tid not in q:
            self.put(wq, q + (self.tid,))
        self.t["_state"] = state

    def finish_swait(self, wq) -> None:
        self.t["_state"] = RUNNING
        q = self.get(wq)
        if self.tid in q:
            self.put(wq, tuple(x for x in q if x != self.tid))

    def swq_has_sleeper(self, wq) -> bool:
        return bool(self.get(wq))

    def swake_up_one(self, wq) -> None:
        q = self.get(wq)
        if not q:
            return
        self.put(wq, q[1:])
        self.wake_up_process(q[0])

    # -- halt and IPIs ---------------------------------------------------------------------
    def _ipi_field(self, cpu: int) -> str:
        return f"ipi[{cpu}]"

    def declare_cpu_ipis(self, cpus) -> None:
        """Declare a pending-interrupt flag per CPU (in setup)."""
        for c in cpus:
            self.declare(self._ipi_field(c), False)

    def smp_send_reschedule(self, cpu: int) -> None:
        self.sh[self._ipi_field(cpu)] = True

    def halt(self) -> None:
        """HLT: wait for a pending interrupt on this CPU; with IF=0 none is taken."""
        cpu = self.me().cpu
        f = self._ipi_field(cpu)
        if self.t["_irq"]:
            raise Blocked("halted with interrupts disabled")
        if not self.sh[f]:
            raise Blocked("halted")
        self.sh[f] = False  # the interrupt is taken and handled

    def safe_halt(self) -> None:
        """native_safe_halt(): STI;HLT, no interrupt can be taken between them."""
        self.t["_irq"] = False
        self.halt()
