# kvmlab lab4: the preamble (run before the answer), then the answer cell's starter.
# ruff: noqa: F401
import kvmlab
from kvmlab.engine import DONE, line
from kvmlab.models import zone_device as zd

# --- answer ---
class MyRelease(zd.FaultPathFixed):
    """tdp_page_fault() of the fixed kernel, with your kvm_release_pfn_clean()."""

    @line("if (!is_error_noslot_pfn(pfn) && !PageReserved(pfn_to_page(pfn))) put_page(pfn_to_page(pfn));",
          fn="kvm_release_pfn_clean")
    def release(self, w, t):
        if not zd.is_error_noslot_pfn(t.pfn) and not zd.PageReserved(w, t.pfn):
            zd.put_page(w, zd.H_KVM)
