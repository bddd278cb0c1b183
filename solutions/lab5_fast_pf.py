"""Lab 5 reference solution: clear an SPTE without losing the Dirty bit the CPU sets.

Not part of the student notebook (notebooks/lab5-fast-pf.ipynb). The learner
writes ``mmu_spte_clear_track_bits()`` as a host program for the ``fast_pf``
model; the grader runs the explorer against the vCPU's fast page fault and
the guest's store, with and without hardware A/D bits in the SPTE.

The reference follows v3.6: an SPTE that the fast path may make writable
(both SPTE_HOST_WRITEABLE and SPTE_MMU_WRITEABLE set) is "volatile", so it
is cleared with ``xchg`` and the A/D bits are taken from the value the
exchange returned. ``AlwaysXchgClear`` (exchange every time) is a second
correct answer that the grader must accept too.
"""

from __future__ import annotations

import kvmlab
from kvmlab.engine import DONE, Program, line
from kvmlab.models.fast_pf import (
    PFN,
    SPTE,
    A,
    D,
    W,
    is_rmap_spte,
    kvm_set_pfn_accessed,
    kvm_set_pfn_dirty,
    spte_is_locklessly_modifiable,
    sw_store,
    sw_xchg,
)

MODEL = "fast_pf"
CONFIGS = [{"AD_BITS": True}, {"AD_BITS": False}]
MUST_HOLD = ["no_lost_dirty_bit", "dirty_log_complete", "w_needs_writeable_bits"]


def volatile(w, old) -> bool:
    """spte_has_volatile_bits(), v3.6."""
    if spte_is_locklessly_modifiable(old):
        return True                      # the fast path may set W, then the CPU sets D
    if not w.cfg("AD_BITS", True) or old is None:
        return False
    if old[A] and (not old[W] or old[D]):    # accessed and (read-only or already dirty)
        return False
    return True


class SolutionClear(Program):
    """mmu_spte_clear_track_bits() with the volatile rule of v3.6."""

    fn = "mmu_spte_clear_track_bits"
    locals = {"old": None, "pfn": 0}

    @line("u64 old_spte = *sptep;")
    def read(self, w, t):
        t.old = w[SPTE]

    @line("if (!spte_has_volatile_bits(old_spte))", local=True)
    def if_volatile(self, w, t):
        if volatile(w, t.old):
            return "slow"

    @line("__update_clear_spte_fast(sptep, 0ull);")
    def fast(self, w, t):
        sw_store(w, None)
        return "rmap"

    @line("old_spte = __update_clear_spte_slow(sptep, 0ull);")
    def slow(self, w, t):
        t.old = sw_xchg(w, None)         # the value the CPU last saw, Dirty bit included

    @line(["if (!is_rmap_spte(old_spte)) return 0;", "pfn = spte_to_pfn(old_spte);"], local=True)
    def rmap(self, w, t):
        if not is_rmap_spte(t.old):
            return DONE
        t.pfn = t.old[PFN]

    @line("if (!shadow_accessed_mask || old_spte & shadow_accessed_mask) kvm_set_pfn_accessed(pfn);")
    def accessed(self, w, t):
        if not w.cfg("AD_BITS", True) or t.old[A]:
            kvm_set_pfn_accessed(w, t.pfn)

    @line("if (!shadow_dirty_mask || (old_spte & shadow_dirty_mask)) kvm_set_pfn_dirty(pfn);")
    def dirty(self, w, t):
        if not w.cfg("AD_BITS", True) or t.old[D]:
            kvm_set_pfn_dirty(w, t.pfn)
        return DONE


class AlwaysXchgClear(SolutionClear):
    """Simpler and also correct: always exchange (one locked instruction more per clear)."""

    drop = ("if_volatile", "fast")


def variant(program=SolutionClear, name="solution"):
    """The learner-style variant: the vCPU of ``clear_plain`` with this clear path."""
    base = kvmlab.model(MODEL).variant("clear_plain")
    return base.derive(name, "lab 5: mmu_spte_clear_track_bits()", programs={"host": program}, buggy=False)

MyClear = SolutionClear  # the name lab 5's answer cell defines (kvmlab grade lab5 --reference)
