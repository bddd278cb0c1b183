# kvmlab lab5: the preamble (run before the answer), then the answer cell's starter.
# ruff: noqa: F401
import kvmlab
from kvmlab.engine import DONE, Program, line
from kvmlab.models.fast_pf import (SPTE, A, D, PFN, W, is_rmap_spte, kvm_set_pfn_accessed,
                                   kvm_set_pfn_dirty, spte_is_locklessly_modifiable, sw_store, sw_xchg)

# --- answer ---
def volatile(w, old):
    """spte_has_volatile_bits(old_spte): must the SPTE be updated atomically?"""
    if not w.cfg("AD_BITS", True) or old is None:
        return False
    if old[A] and (not old[W] or old[D]):   # accessed, and read-only or already dirty:
        return False                        # "the Accessed bit and Dirty bit can not be lost"
    return True


class MyClear(Program):
    """mmu_spte_clear_track_bits(sptep)"""

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
        t.old = sw_xchg(w, None)

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
