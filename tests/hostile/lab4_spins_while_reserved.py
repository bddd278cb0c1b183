# expect: fail terminates
class MyRelease(zd.FaultPathFixed):
    @line("while (PageReserved(pfn_to_page(pfn))) cpu_relax(); put_page(pfn_to_page(pfn));",
          fn="kvm_release_pfn_clean")
    def release(self, w, t):
        if zd.PageReserved(w, t.pfn):
            return "release"
        zd.put_page(w, zd.H_KVM)
