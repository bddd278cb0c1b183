"""Reference solution of lab 4 (ZONE_DEVICE pfn refcounting): the release rule of a78986aae9b2.

KVM must put the page reference gup took on every pfn that came with one:
ordinary pages and ZONE_DEVICE pages alike. Only pfns that are reserved and
*not* ZONE_DEVICE (those come from follow_pfn() without a reference) and
error pfns are skipped. The rule reads the struct page while KVM still holds
its reference, and reads nothing after put_page().
"""

from __future__ import annotations

import kvmlab
from kvmlab.engine import line
from kvmlab.models import zone_device as zd


class SolutionRelease(zd.FaultPathFixed):
    """kvm_release_pfn_clean() with kvm_is_reserved_pfn() from a78986aae9b2 written out."""

    @line("if (!is_error_noslot_pfn(pfn) && !(PageReserved(page) && !is_zone_device_page(page)))"
          " put_page(page);", fn="kvm_release_pfn_clean")
    def release(self, w, t):
        if zd.is_error_noslot_pfn(t.pfn):
            return
        if zd.PageReserved(w, t.pfn) and not zd.is_zone_device_page(w, t.pfn):
            return
        zd.put_page(w, zd.H_KVM)


def variant():
    """The solution as a variant of the zone_device model."""
    return zd.lab_variant(SolutionRelease, "lab4-solution", "reference release rule")


if __name__ == "__main__":
    for params in zd.LAB_PARAMS:
        r = kvmlab.check("zone_device", variant(), params=params)
        print(params, "ok" if r.ok else [v.property for v in r.violations], r.states, "states")

MyRelease = SolutionRelease  # the name lab 4's answer cell defines (kvmlab grade lab4 --reference)
