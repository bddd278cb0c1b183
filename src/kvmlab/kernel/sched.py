"""Task states, schedule(), simple wait queues (swait), halt and IPIs.

* ``set_current_state``/``prepare_to_swait_exclusive`` set the task state
  to TASK_UNINTERRUPTIBLE ("D"); a wake-up sets it back to running ("R").
* ``schedule()`` returns at once for a running task; a "D" task sleeps
  until woken ("asleep in schedule()"). Calling it inside an RCU reader or
  with preemption disabled is reported (the kernel's warnings).
* A wait queue is a tuple of thread ids stored at a ref (shared field name
  or ``(object id, field)``); ``swake_up_one`` wakes the first waiter.
* Interrupts and HLT, per CPU c (declared by ``declare_cpu_ipis``):
  ``ipi[c]`` is an interrupt latched for c and not yet taken;
  ``halted[c]`` is 0 (not halted), 1 (executing HLT, waiting) or 2 (an
  interrupt was taken during HLT: the HLT step completes when the task
  runs next). An interrupt is *taken* as soon as c can take it: c's task
  has interrupts enabled and no ``hardirq`` program is in progress on c.
  Taking the reschedule IPI is one atomic event (its handler only sets
  need_resched, which the models do not use): the latch is cleared and,
  if c was halted, HLT ends. So ``smp_send_reschedule(c)`` latches and
  delivers at once when it can; ``local_irq_enable()`` delivers a latched
  interrupt (no STI shadow: the models assume at least one instruction
  between STI and whatever follows); a ``hardirq`` program finishing
  (IRET) ends the HLT it interrupted and delivers what was latched
  meanwhile. A CPU with no modelled task never takes a latched interrupt.
* ``halt()`` is HLT: with interrupts disabled nothing wakes it; with an
  interrupt latched it completes at once; otherwise the CPU halts until an
  interrupt is taken (an IPI, or a ``hardirq`` program on that CPU).
  ``safe_halt()`` is native_safe_halt(), STI;HLT as one step: no interrupt
  can be taken between the two.

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
        self.may_block = True
        t = self.t
        if t["_state"] == ASLEEP_REPORTED:
            raise Blocked("asleep in schedule()")
        p = self.me()
        reported = False
        if t["_rcu"] > 0 and self.cfg("PREEMPT_RCU", True):
            self.report("no_schedule_in_rcu_reader", splat.rcu_voluntary_switch(p.comm, p.pid, self.site(), cpu=p.cpu),
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

    def _halt_field(self, cpu: int) -> str:
        return f"halted[{cpu}]"

    def declare_cpu_ipis(self, cpus) -> None:
        """Declare, per CPU, a latched-interrupt flag and the HLT state (in setup)."""
        for c in cpus:
            self.declare(self._ipi_field(c), False)
            self.declare(self._halt_field(c), 0)

    def _cpu_takes_irq(self, cpu: int, exclude: int | None = None) -> bool:
        """Can CPU ``cpu`` take an interrupt now (task IF=1, no handler running)?"""
        task = False
        for j, p in enumerate(self.programs):
            if p.cpu != cpu or j == exclude:
                continue
            th = self.thread(j)
            if th is None:
                continue
            if p.kind == "hardirq":
                if th["_pc"] > 0:
                    return False
            else:
                if th["_irq"]:
                    return False
                task = True
        return task

    def deliver_irqs(self, cpu: int, exclude: int | None = None) -> None:
        """Take the interrupt latched for ``cpu`` if the CPU can take it now."""
        f = self._ipi_field(cpu)
        if f not in self.sh or not self.sh[f] or not self._cpu_takes_irq(cpu, exclude):
            return
        self.sh[f] = False
        h = self._halt_field(cpu)
        if self.sh.get(h) == 1:
            self.sh[h] = 2

    def smp_send_reschedule(self, cpu: int) -> None:
        self.sh[self._ipi_field(cpu)] = True
        self.deliver_irqs(cpu)

    def irq_return(self, tid: int) -> None:
        """A hardirq program ``tid`` finishes (IRET): end the HLT it interrupted, take latched irqs."""
        cpu = self.programs[tid].cpu
        h = self._halt_field(cpu)
        if self.sh.get(h) == 1:
            self.sh[h] = 2
        self.deliver_irqs(cpu, exclude=tid)

    def halt(self) -> None:
        """HLT: wait until an interrupt is taken; with IF=0 none is taken."""
        self.may_block = True
        cpu = self.me().cpu
        f, h = self._ipi_field(cpu), self._halt_field(cpu)
        state = self.sh.get(h, 0)
        if state == 2:          # an interrupt was taken during HLT: it completes
            self.sh[h] = 0
            return
        if state == 1:
            raise Blocked("halted")
        if self.t["_irq"]:
            raise Blocked("halted with interrupts disabled")
        if self.sh[f]:          # latched interrupt: taken at once, HLT completes
            self.sh[f] = False
            return
        if h not in self.sh:
            raise Blocked("halted")
        self.sh[h] = 1
        raise Stay()

    def safe_halt(self) -> None:
        """native_safe_halt(): STI;HLT, no interrupt can be taken between them."""
        self.t["_irq"] = False
        self.halt()
