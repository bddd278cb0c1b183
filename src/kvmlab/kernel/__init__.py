"""Semantics of the kernel primitives the models use, as one World class.

Each module documents what it models and what it simplifies:
:mod:`.context` (preempt count, irqs, might_sleep), :mod:`.locks`,
:mod:`.alloc`, :mod:`.sched` (task states, swait, halt, IPIs), :mod:`.rcu`,
:mod:`.refcount` (refcount_t and atomics), :mod:`.hlist`; report texts in
:mod:`.splat`.
"""

from ..engine.world import World
from .alloc import GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT, AllocMixin
from .context import HARDIRQ_OFFSET, ContextMixin
from .hlist import POISON, HlistMixin
from .locks import LockMixin
from .rcu import RcuMixin, SrcuMixin
from .refcount import SATURATED, AtomicMixin, RefcountMixin
from .sched import RUNNING, UNINTERRUPTIBLE, SchedMixin

KERNEL_PROPERTIES = {
    "no_sleep_in_atomic": "nothing that may sleep runs in atomic context (might_sleep, scheduling while atomic)",
    "no_invalid_wait_context": "lockdep: no lock taken in a context whose wait type is lower",
    "no_bad_unlock": "lockdep: no unlock of a lock the thread does not hold",
    "no_lock_leak": "no thread finishes while holding a lock",
    "no_deadlock": "no CPU waits forever for a lock or an event",
    "no_panic": "the kernel does not panic",
    "no_null_deref": "no NULL pointer dereference",
    "no_use_after_free": "KASAN: no access to freed memory",
    "no_double_free": "no object freed twice",
    "no_invalid_free": "kfree() only of allocated objects",
    "refcount_ok": "refcount_t: no increment from zero, no underflow, no saturation",
    "rcu_used_while_watching": "RCU read-side primitives only where RCU is watching",
    "no_schedule_in_rcu_reader": "no voluntary context switch inside an RCU read-side critical section",
}
"""Properties the kernel library itself reports, whatever the model (see each primitive)."""


class KernelWorld(ContextMixin, LockMixin, AllocMixin, SchedMixin, RcuMixin, SrcuMixin, RefcountMixin,
                  AtomicMixin, HlistMixin, World):
    """The World every kernel model uses: shared state plus kernel primitives."""

    thread_fields = ContextMixin.thread_fields

    def gate(self, tid: int):
        prog = self.programs[tid]
        if prog.kind == "hardirq":
            # a handler can start only when its CPU's interrupted thread has IRQs on
            t = self.thread(tid)
            if t["_pc"] == 0:
                for j, other in enumerate(self.programs):
                    if j != tid and other.cpu == prog.cpu and other.kind == "task":
                        th = self.thread(j)
                        if th is not None and th["_irq"]:
                            return f"interrupts disabled on CPU{prog.cpu}"
            return None
        for j, other in enumerate(self.programs):
            if j != tid and other.kind == "hardirq" and other.cpu == prog.cpu:
                th = self.thread(j)
                if th is not None and th["_pc"] > 0:
                    return f"interrupted by {other.label}"
        return None

    def may_be_interrupted(self, tid: int) -> bool:
        prog = self.programs[tid]
        if prog.kind != "task":
            return False
        for j, other in enumerate(self.programs):
            if j != tid and other.kind == "hardirq" and other.cpu == prog.cpu and self._tt[j] is not None:
                return True
        return False

    def observed_fields(self, tid: int) -> tuple[str, ...]:
        # wakers read the task state, grace periods the RCU nesting and watching; the interrupt
        # flag only where interrupts are sent to the CPU (IPIs; same-CPU handlers never merge)
        if any(k.startswith("ipi[") for k in self.sys.shared_names):
            return ("_state", "_rcu", "_watch", "_irq")
        return ("_state", "_rcu", "_watch")

    def on_finish(self, tid: int, t) -> None:
        super().on_finish(tid, t)
        if self.programs[tid].kind == "hardirq":
            self.irq_return(tid)

    def locks_held(self, tid: int) -> tuple:
        t = self.thread(tid)  # only ever asked for the running thread
        return () if t is None else tuple(h for h, _ in t["_held"])

    def thread_status(self, tid: int) -> str:
        t = self.thread(tid)
        if t is None:
            return "done"
        if t["_wait"] is not None:
            return f"asleep on {t['_wait']}"
        if t["_state"] == "Ds":
            return "asleep in schedule()"
        if self.sh.get(f"halted[{self.programs[tid].cpu}]") == 1 and self.programs[tid].kind == "task":
            return "halted (HLT)"
        return "running"


__all__ = [
    "KERNEL_PROPERTIES", "AtomicMixin", "GFP_ATOMIC", "GFP_KERNEL", "GFP_NOWAIT", "HARDIRQ_OFFSET", "KernelWorld",
    "POISON", "RUNNING", "SATURATED", "UNINTERRUPTIBLE",
]
