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
    "AtomicMixin", "GFP_ATOMIC", "GFP_KERNEL", "GFP_NOWAIT", "HARDIRQ_OFFSET", "KernelWorld",
    "POISON", "RUNNING", "SATURATED", "UNINTERRUPTIBLE",
]
