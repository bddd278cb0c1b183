# expect: fail spte_cleared
class MyClear(Program):
    fn = "mmu_spte_clear_track_bits"
    locals = {"old": None, "pfn": 0}

    @line("u64 old_spte = *sptep;")
    def read(self, w, t):
        t.old = w[SPTE]
        return DONE
