"""Two CPUs doing ``counter++``: the warm-up model of chapter 0.

``counter++`` is one C line but not one instruction: the CPU loads the
counter into a register, adds one, and stores it back. The ``plain``
variant shows the load and the store as two steps of the same C line;
another CPU's store in between is lost. ``atomic`` uses one atomic
read-modify-write; ``spinlock`` puts the two steps under a lock.
"""

from __future__ import annotations

from ..engine import Config, Model, Param, Program, Variant, line
from ..kernel import KernelWorld


class PlainInc(Program):
    """for (i = 0; i < loops; i++) counter++;  with counter++ as load + store."""

    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("counter++;    /* load:  mov counter, %eax */")
    def load(self, w, t):
        t.tmp = w["counter"]

    @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
    def store(self, w, t):
        w["counter"] = t.tmp + 1
        t.i += 1
        if t.i < self.loops:
            return "load"


class AtomicInc(PlainInc):
    """atomic_inc(): one indivisible read-modify-write."""

    drop = ("store",)

    @line("atomic_inc(&counter);")
    def load(self, w, t):
        w.atomic_inc("counter")
        t.i += 1
        if t.i < self.loops:
            return "load"


class LockedInc(PlainInc):
    """counter++ inside spin_lock(&lock) ... spin_unlock(&lock)."""

    @line("spin_lock(&lock);", before="load")
    def lock(self, w, t):
        w.spin_lock("lock")

    @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
    def store(self, w, t):
        w["counter"] = t.tmp + 1
        t.i += 1

    @line("spin_unlock(&lock);")
    def unlock(self, w, t):
        w.spin_unlock("lock")
        if t.i < self.loops:
            return "lock"


class LostUpdate(Model):
    name = "lost_update"
    title = "counter++ on two CPUs"
    source = "Chapter 0 warm-up (no kernel source): the classic lost update."
    variants = [
        Variant("plain", "counter++ compiled to a load and a store", programs={"worker": PlainInc},
                buggy=True),
        Variant("atomic", "atomic_inc(&counter)", programs={"worker": AtomicInc}),
        Variant("spinlock", "counter++ under spin_lock(&lock)", programs={"worker": LockedInc}),
    ]
    configs = {"PREEMPT_RT": Config(False, "spinlock_t becomes a sleeping lock")}
    params = {
        "cpus": Param(2, 1, 4, "CPUs incrementing"),
        "loops": Param(1, 1, 3, "increments per CPU"),
    }
    properties = {"no_lost_update": "when every CPU is done, counter == cpus * loops"}
    world = KernelWorld
    goals = {"plain": "Finish both CPUs with counter == 1: lose an update."}

    def setup(self, w, variant, config, params):
        w.declare("counter", 0)
        w.spinlock("lock")
        prog = variant.programs["worker"]
        for c in range(params["cpus"]):
            w.spawn(prog(f"cpu{c}", cpu=c, title=f"CPU{c}: counter++", loops=params["loops"]))

    def end_checks(self, w):
        want = w.params["cpus"] * w.params["loops"]
        if w["counter"] != want:
            yield "no_lost_update", f"counter == {w['counter']} after {want} increments: an update was lost"
