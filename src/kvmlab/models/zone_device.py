"""ZONE_DEVICE pages, KVM's page references and the device teardown.

Source: seed 003 (the November 2019 thread on "KVM: MMU: Do not treat
ZONE_DEVICE pages as being reserved": Sean Christopherson's patch, Dan
Williams' objection, Paolo Bonzini's reply) and the history it names: Adam
Borowski's report (lore 20190919115547.GA17963@angband.pl, thread "hang in
dax_pmem_compat_release on changing namespace mode") and the merged fix,
commit a78986aae9b2 (merged for v5.4). Code: virt/kvm/kvm_main.c,
arch/x86/kvm/mmu.c (``tdp_page_fault()``, ``mmu_spte_clear_track_bits()``),
mm/gup.c (``follow_page_pte()``), mm/memremap.c (``memunmap_pages()``),
drivers/dax/bus.c (``kill_dev_dax()``), as of about v5.4 (checked against
copies of that era; small differences between releases are not modelled).

Threads (``user`` param):

* ``kvm`` / ``kvm_exit``: CPU0 is a vCPU taking an EPT violation on the one
  guest page backed by ``/dev/dax``: it reads ``mmu_notifier_seq``, pins the
  page with get_user_pages (``follow_page_pte()``: page table lock, a
  transient pgmap reference from ``get_dev_pagemap()``, a page reference
  from ``try_get_page()``), takes ``kvm->mmu_lock``, checks
  ``mmu_notifier_retry()``, runs ``transparent_hugepage_adjust()``'s guard,
  installs the SPTE, unlocks and calls ``kvm_release_pfn_clean(pfn)``.
  With ``kvm_exit`` CPU2 is QEMU exiting after the vCPU: ``exit_mmap()``
  calls KVM's mmu_notifier release (zap every SPTE under ``mmu_lock``),
  unregisters the notifier and unmaps the user page table entry.
* ``mmap``: no KVM; CPU0 is a process that merely has the device mmap()ed
  and loads from it (Adam's "mere mmap()" case).
* always, CPU1 unbinds the device: the devm actions of ``dev_dax_probe()``
  run in reverse order, so ``kill_dev_dax()`` (``kill_dax()``, then
  ``unmap_mapping_range()`` with the mmu_notifier calls into KVM around the
  user PTE zap) runs before ``memunmap_pages()``: ``dev_pagemap_kill()``,
  ``put_page()`` of the initial page reference, ``dev_pagemap_cleanup()``
  (``wait_for_completion(&pgmap->done)``), ``arch_remove_memory()``.

The two reference counts, and what is modelled of each:

* ``page->_refcount`` of the one device page (a field of the struct page
  object). It starts at 1, the reference ``memremap_pages()`` leaves on every
  ZONE_DEVICE page, which ``memunmap_pages()`` drops. gup adds one
  (``try_get_page()``), ``put_page()`` removes one; when it reaches 0,
  ``__put_page()`` sees a ZONE_DEVICE page and calls
  ``put_dev_pagemap(page->pgmap)`` instead of freeing it.
* ``pgmap->ref``, a percpu_ref, is modelled as one exact counter with a
  ``dead`` flag (per-CPU mode, the switch to atomic mode and the RCU grace
  period of ``percpu_ref_kill()`` are not modelled: the counter is always
  the true sum). It starts at 1 (the base reference of ``percpu_ref_init()``)
  plus one per page (``percpu_ref_get_many()`` in ``memremap_pages()``), so
  2 here. ``percpu_ref_kill()`` marks it dead and drops the base reference;
  ``percpu_ref_tryget_live()`` (in ``get_dev_pagemap()``) fails once it is
  dead; the release callback ``dev_pagemap_percpu_release()`` runs
  ``complete(&pgmap->done)`` when the count reaches 0 after the kill.

So a page reference pins the pgmap reference of its page, and
``memunmap_pages()`` can free the memmap only when every page reference is
gone. KVM's leaked gup reference is what Adam's hang was.

The struct page is an object (``flags``: PG_reserved, ``zone``:
ZONE_DEVICE, ``_refcount``); ``arch_remove_memory()`` deletes it and clears
the shared ``mem_section`` flag that ``pfn_valid()`` reads. Any read of the
struct page afterwards is reported as ``no_use_after_free``. That report is
the model's own detector, not a kernel message: what a real kernel does on
such a read depends on where the memmap lived (an unmapped vmemmap faults,
reused memory returns whatever is there now).

Abstractions and bounds:

* one device page, one guest page, one fault; the SPTE is taken to be
  accessed (the guest touched it), so zapping it calls
  ``kvm_set_pfn_accessed()``;
* ``kvm_is_reserved_pfn()`` and ``kvm_is_zone_device_pfn()`` are evaluated
  inside the step of the C line that calls them, except in the
  ``unpinned_check`` variant, whose caller runs them line by line (that is
  where the race is); where the caller pins the page or holds ``mmu_lock``
  under the notifier, nobody can free the memmap in between, so grouping
  them does not hide an interleaving;
* a user PTE mapping a device-dax page holds no page reference
  (``insert_pfn()`` builds a devmap PTE and takes none; Adam's plain mmap()
  did not block the teardown); after ``kill_dax()`` the fault handler's
  ``check_vma()`` fails, so gup on a zapped PTE returns an error pfn;
* zapping a user PTE under the page table lock (lock, clear, unlock) is one
  step; ``mmu_notifier_seq++`` and ``mmu_notifier_count--`` (both under
  ``mmu_lock``, which every reader holds) are one step;
* ``percpu_ref_exit()``, ``page_to_nid()``, ``mem_hotplug_begin()`` and the
  TLB flushes are left out: they touch nothing another thread reads here;
* left out of ``tdp_page_fault()`` because they touch nothing the story
  depends on: the ``fast_page_fault()`` attempt, ``make_mmu_pages_available()``
  and the ``force_pt_level`` test;
* the mmu_notifier callbacks KVM runs are decided at
  ``invalidate_range_start`` (the matching ``_end`` is called if ``_start``
  was); the SRCU that orders notifier removal against callbacks is not
  modelled.

gup is modelled by its slow path (``follow_page_pte()`` under the page table
lock); KVM tries the lockless fast gup first, which takes the same page
reference. Later kernels reworked ZONE_DEVICE reference counting, and in 2021
David Stevens proposed removing both WARNs ("KVM: mmu: remove
over-aggressive warnings"); the model follows v5.4.
"""

from __future__ import annotations

from ..engine import DONE, Blocked, Model, Param, Program, Variant, line
from ..kernel import KernelWorld

PFN = 0x140000        # the device page's pfn, for display only
PAGE = 1              # object id of its struct page (created in setup)
ERR = -1              # KVM_PFN_ERR_FAULT
MMU_LOCK = "kvm->mmu_lock"
PTL = "ptl"           # the page table lock of the user PTE

H_INIT = "device (initial)"          # the reference memremap_pages() leaves on the page
H_KVM = "KVM (gup)"                  # try_get_page() in KVM's gup
H_BASE = "base"                      # percpu_ref_init()'s reference on the pgmap
H_PAGE = f"page {PFN:#x} (_refcount > 0)"
H_GUP = "gup (transient)"            # get_dev_pagemap() until put_dev_pagemap()


# ---------------------------------------------------------------------------
# struct page and dev_pagemap helpers. Each stands for a kernel function; a
# step calls them. They are public so that a learner's variant can use them.
# ---------------------------------------------------------------------------

def _uaf(w, what: str) -> None:
    p = w.me()
    fn, c = w.site()
    w.report("no_use_after_free", "\n".join([
        f"use-after-free: {what} of struct page for pfn {PFN:#x}",
        "  the memmap was freed by arch_remove_memory() in memunmap_pages()",
        f"  read by {p.comm}/{p.pid} at [<{fn}>] {c.strip()}",
        "  (model detector: a real kernel faults on the unmapped vmemmap or reads reused memory)",
    ]), fatal=True, title=f"use-after-free: struct page of pfn {PFN:#x} read after its memmap was freed")


_FREED = {"flags": (), "zone": None, "_refcount": 0}


def struct_page(w, what: str = "read"):
    """pfn_to_page(pfn): the struct page, or (reported) freed memory."""
    if not w.has_obj(PAGE):
        _uaf(w, what)
        return dict(_FREED)
    return w.obj(PAGE)


def pfn_valid(w, pfn) -> bool:
    """pfn_valid(pfn): the pfn has a memmap (its section is present)."""
    return pfn == PFN and w["mem_section"]


def is_error_noslot_pfn(pfn) -> bool:
    return pfn is None or pfn == ERR


def PageReserved(w, pfn=PFN) -> bool:  # noqa: N802 (kernel name)
    return "PG_reserved" in struct_page(w, "PageReserved()")["flags"]


def is_zone_device_page(w, pfn=PFN) -> bool:
    return struct_page(w, "is_zone_device_page()")["zone"] == "ZONE_DEVICE"


def page_count(w, pfn=PFN) -> int:
    return struct_page(w, "page_count()")["_refcount"]


def _drop(w, field: str, holder: str) -> None:
    hs = list(w[field])
    if holder in hs:
        hs.remove(holder)
    elif hs:
        hs.pop()
    w[field] = tuple(hs)


def put_dev_pagemap(w, holder: str) -> None:
    """put_dev_pagemap() -> percpu_ref_put(pgmap->ref); the release completes pgmap->done."""
    w["pgmap.ref"] -= 1
    _drop(w, "pgmap holders", holder)
    if w["pgmap.ref"] == 0 and w["pgmap.dead"]:
        w["pgmap.done"] = True   # dev_pagemap_percpu_release(): complete(&pgmap->done)


def get_page(w, holder: str) -> None:
    """get_page() / try_get_page(): one more page reference."""
    pg = struct_page(w, "get_page()")
    if w.has_obj(PAGE):
        pg["_refcount"] += 1
        w["page holders"] = w["page holders"] + (holder,)


def put_page(w, holder: str) -> None:
    """put_page(): drop one page reference; at 0 a ZONE_DEVICE page drops its pgmap reference."""
    pg = struct_page(w, "put_page()")
    if not w.has_obj(PAGE):
        return
    pg["_refcount"] -= 1
    _drop(w, "page holders", holder)
    if pg["_refcount"] == 0 and pg["zone"] == "ZONE_DEVICE":
        put_dev_pagemap(w, H_PAGE)   # __put_page(): put_dev_pagemap(page->pgmap)


def kvm_is_zone_device_pfn(w, pfn) -> bool:
    """a78986aae9b2: if (!pfn_valid(pfn) || WARN_ON_ONCE(!page_count(pfn_to_page(pfn)))) return false;"""
    if not pfn_valid(w, pfn):
        return False
    if page_count(w, pfn) == 0:
        warn_unpinned(w)
        return False
    return is_zone_device_page(w, pfn)


def warn_unpinned(w) -> None:
    fn, c = w.site()
    p = w.me()
    w.report("no_unpinned_check", "\n".join([
        "------------[ cut here ]------------",
        f"WARNING: CPU: {p.cpu} PID: {p.pid} at virt/kvm/kvm_main.c kvm_is_zone_device_pfn",
        f"Call Trace: [<{fn}>] {c.strip()}",
        "(page_count() is 0: nobody pins the page whose ZONE_DEVICE metadata is being read)",
    ]), title="WARNING: kvm_is_zone_device_pfn(): WARN_ON_ONCE(!page_count(pfn_to_page(pfn)))")


def kvm_is_reserved_pfn(w, pfn) -> bool:
    """The variant's kvm_is_reserved_pfn(): PageReserved() before the fix; not for ZONE_DEVICE after it."""
    if not pfn_valid(w, pfn):
        return True
    if w.variant.flags.get("reserved_rule", "fixed") == "old":
        return PageReserved(w, pfn)
    return PageReserved(w, pfn) and not kvm_is_zone_device_pfn(w, pfn)


def device_pfn_in_page_machinery(w, what: str) -> None:
    """A ZONE_DEVICE pfn reached a flow that lacks the machinery for it (a78986aae9b2's message)."""
    fn, c = w.site()
    w.report("no_thp_on_device_pfn", "\n".join([
        f"model check: {what} on ZONE_DEVICE pfn {PFN:#x}",
        f"  at [<{fn}>] {c.strip()}",
        "  (a78986aae9b2: these flows lack the underlying machinery for ZONE_DEVICE pages)",
    ]), title=f"ZONE_DEVICE pfn passed to {what}")


# ---------------------------------------------------------------------------
# The vCPU: tdp_page_fault() with gup inlined (v5.4)
# ---------------------------------------------------------------------------

class FaultPath(Program):
    """tdp_page_fault(): pin with gup, map under mmu_lock, release per kvm_is_reserved_pfn()."""

    fn = "tdp_page_fault"
    locals = {"mmu_seq": 0, "pfn": None, "pgmap": False}

    @line(["mmu_seq = vcpu->kvm->mmu_notifier_seq;", "smp_rmb();"])
    def read_seq(self, w, t):
        t.mmu_seq = w["mmu_notifier_seq"]

    @line("ptep = pte_offset_map_lock(mm, pmd, address, &ptl);", fn="follow_page_pte")
    def ptl_lock(self, w, t):
        w.spin_lock(PTL)

    @line("*pgmap = get_dev_pagemap(pte_pfn(pte), *pgmap);", fn="follow_page_pte")
    def get_pgmap(self, w, t):
        if not w["user pte"]:
            t.pfn = ERR          # no PTE: the fault that gup would take fails after kill_dax()
            return "ptl_unlock"
        if w["pgmap.dead"]:      # percpu_ref_tryget_live() fails once the pgmap is killed
            t.pfn = ERR
            return "ptl_unlock"
        w["pgmap.ref"] += 1
        w["pgmap holders"] = w["pgmap holders"] + (H_GUP,)
        t.pgmap = True

    @line("if (unlikely(!try_get_page(page)))", fn="follow_page_pte")
    def try_get(self, w, t):
        get_page(w, H_KVM)
        t.pfn = PFN

    @line("pte_unmap_unlock(ptep, ptl);", fn="follow_page_pte")
    def ptl_unlock(self, w, t):
        w.spin_unlock(PTL)

    @line("if (ctx.pgmap) put_dev_pagemap(ctx.pgmap);", fn="__get_user_pages")
    def put_pgmap(self, w, t):
        if t.pgmap:
            put_dev_pagemap(w, H_GUP)
            t.pgmap = False

    @line("if (handle_abnormal_pfn(vcpu, 0, gfn, pfn, ACC_ALL, &r)) return r;", local=True)
    def abnormal(self, w, t):
        if is_error_noslot_pfn(t.pfn):
            return DONE

    @line("spin_lock(&vcpu->kvm->mmu_lock);")
    def lock(self, w, t):
        w.spin_lock(MMU_LOCK)

    @line("if (mmu_notifier_retry(vcpu->kvm, mmu_seq)) goto out_unlock;")
    def retry(self, w, t):
        if w["mmu_notifier_count"] or w["mmu_notifier_seq"] != t.mmu_seq:
            return "unlock"

    @line("if (!is_error_noslot_pfn(pfn) && !kvm_is_reserved_pfn(pfn) && level == PT_PAGE_TABLE_LEVEL"
          " && PageTransCompoundMap(pfn_to_page(pfn)) ...)", fn="transparent_hugepage_adjust")
    def thp(self, w, t):
        if not is_error_noslot_pfn(t.pfn) and not kvm_is_reserved_pfn(w, t.pfn):
            device_pfn_in_page_machinery(w, "PageTransCompoundMap() / THP refcount adjustment")

    @line("r = __direct_map(vcpu, gpa, write, map_writable, level, pfn, prefault, ...);")
    def direct_map(self, w, t):
        w["spte"] = True

    @line("out_unlock: spin_unlock(&vcpu->kvm->mmu_lock);")
    def unlock(self, w, t):
        w.spin_unlock(MMU_LOCK)

    @line("if (!is_error_noslot_pfn(pfn) && !kvm_is_reserved_pfn(pfn)) put_page(pfn_to_page(pfn));",
          fn="kvm_release_pfn_clean")
    def release(self, w, t):
        if not is_error_noslot_pfn(t.pfn) and not kvm_is_reserved_pfn(w, t.pfn):
            put_page(w, H_KVM)


class FaultPathFixed(FaultPath):
    """a78986aae9b2: transparent_hugepage_adjust() also skips ZONE_DEVICE pfns."""

    @line("if (!is_error_noslot_pfn(pfn) && !kvm_is_reserved_pfn(pfn) && !kvm_is_zone_device_pfn(pfn)"
          " && level == PT_PAGE_TABLE_LEVEL && PageTransCompoundMap(pfn_to_page(pfn)) ...)",
          fn="transparent_hugepage_adjust")
    def thp(self, w, t):
        if (not is_error_noslot_pfn(t.pfn) and not kvm_is_reserved_pfn(w, t.pfn)
                and not kvm_is_zone_device_pfn(w, t.pfn)):
            device_pfn_in_page_machinery(w, "PageTransCompoundMap() / THP refcount adjustment")


class FaultPathUnpinnedCheck(FaultPathFixed):
    """Dan Williams' race: a later check on the pfn after KVM dropped its reference (hypothetical caller)."""

    @line("if (!pfn_valid(pfn) ||", fn="kvm_is_zone_device_pfn")
    def zd_valid(self, w, t):
        if not pfn_valid(w, t.pfn):
            return DONE

    @line("    WARN_ON_ONCE(!page_count(pfn_to_page(pfn)))) return false;", fn="kvm_is_zone_device_pfn")
    def zd_count(self, w, t):
        if page_count(w, t.pfn) == 0:
            warn_unpinned(w)
            return DONE

    @line("return is_zone_device_page(pfn_to_page(pfn));", fn="kvm_is_zone_device_pfn")
    def zd_read(self, w, t):
        is_zone_device_page(w, t.pfn)


class MmapUser(Program):
    """A process that merely has /dev/dax mmap()ed (no KVM): one load through the mapping."""

    fn = "user space"

    @line("val = *(volatile char *)addr;   /* load through the devdax mapping; SIGBUS once it is gone */")
    def load(self, w, t):
        return DONE


# ---------------------------------------------------------------------------
# KVM zapping an SPTE (shared by the teardown's notifier call and QEMU's exit)
# ---------------------------------------------------------------------------

def zap_warn(w, t) -> None:
    """WARN_ON(!kvm_is_reserved_pfn(pfn) && !page_count(pfn_to_page(pfn)))."""
    if not kvm_is_reserved_pfn(w, PFN) and page_count(w, PFN) == 0:
        fn, c = w.site()
        p = w.me()
        w.report("no_unpinned_check", "\n".join([
            "------------[ cut here ]------------",
            f"WARNING: CPU: {p.cpu} PID: {p.pid} at arch/x86/kvm/mmu.c mmu_spte_clear_track_bits",
            f"Call Trace: [<{fn}>] {c.strip()}",
        ]), title="WARNING: mmu_spte_clear_track_bits(): SPTE maps a page nobody holds")


def zap_accessed(w, t, zone_check: bool = True) -> None:
    """kvm_set_pfn_accessed(pfn): mark_page_accessed() unless the guard skips the pfn.

    The guard is the step's own: ``!kvm_is_reserved_pfn(pfn)`` before
    a78986aae9b2 (``zone_check=False``), plus ``!kvm_is_zone_device_pfn(pfn)``
    after it. ``kvm_is_reserved_pfn()`` itself follows the variant's
    ``reserved_rule``.
    """
    touches = not kvm_is_reserved_pfn(w, PFN)
    if touches and zone_check:
        touches = not kvm_is_zone_device_pfn(w, PFN)
    if touches and is_zone_device_page(w, PFN):
        device_pfn_in_page_machinery(w, "mark_page_accessed()")


ACCESSED_OLD = "if (is_accessed_spte(old_spte)) kvm_set_pfn_accessed(pfn);  /* if (!kvm_is_reserved_pfn(pfn)) */"
ACCESSED_FIXED = ("if (is_accessed_spte(old_spte)) kvm_set_pfn_accessed(pfn);"
                  "  /* if (!kvm_is_reserved_pfn(pfn) && !kvm_is_zone_device_pfn(pfn)) */")
WARN_LINE = "WARN_ON(!kvm_is_reserved_pfn(pfn) && !page_count(pfn_to_page(pfn)));"


# ---------------------------------------------------------------------------
# The device teardown: kill_dev_dax(), then memunmap_pages()
# ---------------------------------------------------------------------------

class Teardown(Program):
    """Unbinding the device-dax instance (ndctl): kill_dev_dax(), then memunmap_pages()."""

    fn = "memunmap_pages"
    locals = {"kvm": False}

    @line("kill_dax(dax_dev);", fn="kill_dev_dax")
    def kill_dax(self, w, t):
        w["dax alive"] = False

    @line("mmu_notifier_invalidate_range_start(&range);", fn="zap_page_range_single")
    def inv_start(self, w, t):
        t.kvm = w["kvm notifier"]
        if not t.kvm:
            return "zap_pte"

    @line("spin_lock(&kvm->mmu_lock);", fn="kvm_mmu_notifier_invalidate_range_start")
    def s_lock(self, w, t):
        w.spin_lock(MMU_LOCK)

    @line("kvm->mmu_notifier_count++;", fn="kvm_mmu_notifier_invalidate_range_start")
    def s_count(self, w, t):
        w["mmu_notifier_count"] += 1

    @line("need_tlb_flush = kvm_unmap_hva_range(kvm, range->start, range->end);",
          fn="kvm_mmu_notifier_invalidate_range_start")
    def s_unmap(self, w, t):
        if not w["spte"]:
            return "s_unlock"
        w["spte"] = False      # mmu_spte_clear_track_bits(): old_spte = *sptep, cleared

    @line(WARN_LINE, fn="mmu_spte_clear_track_bits")
    def s_warn(self, w, t):
        zap_warn(w, t)

    @line(ACCESSED_FIXED, fn="mmu_spte_clear_track_bits")
    def s_accessed(self, w, t):
        zap_accessed(w, t)

    @line("spin_unlock(&kvm->mmu_lock);", fn="kvm_mmu_notifier_invalidate_range_start")
    def s_unlock(self, w, t):
        w.spin_unlock(MMU_LOCK)

    @line("zap_pte_range(): ptep_get_and_clear_full(mm, addr, pte, tlb->fullmm);  /* under ptl */",
          fn="zap_page_range_single")
    def zap_pte(self, w, t):
        owner = w.lock_owner(PTL)
        if owner is not None:
            raise Blocked(f"spinning on {PTL} (held by {w.label(owner)})")
        w["user pte"] = False
        if not t.kvm:
            return "kill"

    @line("mmu_notifier_invalidate_range_end(&range);  ->  spin_lock(&kvm->mmu_lock);",
          fn="kvm_mmu_notifier_invalidate_range_end")
    def e_lock(self, w, t):
        w.spin_lock(MMU_LOCK)

    @line(["kvm->mmu_notifier_seq++;", "kvm->mmu_notifier_count--;"], fn="kvm_mmu_notifier_invalidate_range_end")
    def e_seq(self, w, t):
        w["mmu_notifier_seq"] += 1
        w["mmu_notifier_count"] -= 1

    @line("spin_unlock(&kvm->mmu_lock);", fn="kvm_mmu_notifier_invalidate_range_end")
    def e_unlock(self, w, t):
        w.spin_unlock(MMU_LOCK)

    @line("dev_pagemap_kill(pgmap);   /* percpu_ref_kill(pgmap->ref) */")
    def kill(self, w, t):
        w["pgmap.dead"] = True
        put_dev_pagemap(w, H_BASE)   # percpu_ref_kill() drops the base reference

    @line("for_each_device_pfn(pfn, pgmap) put_page(pfn_to_page(pfn));")
    def put_initial(self, w, t):
        put_page(w, H_INIT)

    @line("wait_for_completion(&pgmap->done);", fn="dev_pagemap_cleanup")
    def wait(self, w, t):
        if not w["pgmap.done"]:
            n = w["pgmap.ref"]
            raise Blocked(f"waiting in dev_pagemap_cleanup() for {n} reference{'s' if n != 1 else ''}")

    @line("arch_remove_memory(nid, res->start, resource_size(res), pgmap_altmap(pgmap));")
    def remove(self, w, t):
        left = []
        if w.has_obj(PAGE) and w.obj(PAGE)["_refcount"] > 0:
            left.append(f"page _refcount {w.obj(PAGE)['_refcount']}")
        if w["pgmap.ref"] > 0:
            left.append(f"pgmap->ref {w['pgmap.ref']}")
        if left:
            w.report("memmap_freed_after_drain", "memmap of pfn " + f"{PFN:#x} freed while references remain: "
                     + ", ".join(left) + f" (holders: {', '.join(w['page holders'] + w['pgmap holders'])})",
                     title="memmap freed while references remain")
        w["mem_section"] = False
        if w.has_obj(PAGE):
            w.del_obj(PAGE)
        return DONE


class TeardownOld(Teardown):
    """Before a78986aae9b2: kvm_set_pfn_accessed() skips only what kvm_is_reserved_pfn() says."""

    @line(ACCESSED_OLD, fn="mmu_spte_clear_track_bits")
    def s_accessed(self, w, t):
        zap_accessed(w, t, zone_check=False)


# ---------------------------------------------------------------------------
# QEMU exiting after its vCPU: exit_mmap()
# ---------------------------------------------------------------------------

class VmExit(Program):
    """QEMU exits: exit_mmap() -> mmu_notifier_release() -> KVM zaps all SPTEs, then the mapping goes."""

    fn = "kvm_mmu_zap_all"

    @line("mmu_notifier_release(mm);   /* after the vCPU threads have exited */", fn="exit_mmap")
    def notifier_release(self, w, t):
        for v in getattr(self, "vcpus", (self.vcpu,)):
            if not w.done(v):
                raise Blocked("waiting for the vCPU threads to exit")

    @line("spin_lock(&kvm->mmu_lock);")
    def lock(self, w, t):
        w.spin_lock(MMU_LOCK)

    @line("drop_spte(kvm, sptep);   /* mmu_spte_clear_track_bits(): old_spte = *sptep, cleared */")
    def drop_spte(self, w, t):
        if not w["spte"]:
            return "unlock"
        w["spte"] = False

    @line(WARN_LINE, fn="mmu_spte_clear_track_bits")
    def warn(self, w, t):
        zap_warn(w, t)

    @line(ACCESSED_FIXED, fn="mmu_spte_clear_track_bits")
    def accessed(self, w, t):
        zap_accessed(w, t)

    @line("spin_unlock(&kvm->mmu_lock);")
    def unlock(self, w, t):
        w.spin_unlock(MMU_LOCK)

    @line("hlist_del_init_rcu(&mn->hlist);   /* KVM's notifier is gone */", fn="mmu_notifier_release")
    def unregister(self, w, t):
        w["kvm notifier"] = False

    @line("unmap_vmas(&tlb, vma, 0, -1);   /* the user PTE, under ptl */", fn="exit_mmap")
    def unmap(self, w, t):
        owner = w.lock_owner(PTL)
        if owner is not None:
            raise Blocked(f"spinning on {PTL} (held by {w.label(owner)})")
        w["user pte"] = False


class VmExitOld(VmExit):
    """Before a78986aae9b2: the accessed marking has only the kvm_is_reserved_pfn() guard."""

    @line(ACCESSED_OLD, fn="mmu_spte_clear_track_bits")
    def accessed(self, w, t):
        zap_accessed(w, t, zone_check=False)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

class ZoneDevice(Model):
    name = "zone_device"
    title = "ZONE_DEVICE pfn refcounting: KVM's gup references and the device teardown"
    source = ("Sean Christopherson's \"KVM: MMU: Do not treat ZONE_DEVICE pages as being reserved\" "
              "(lore 20191106170727.14457-2-sean.j.christopherson@intel.com), Dan Williams' objection and "
              "Paolo Bonzini's reply (lore 1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com); Adam Borowski's "
              "report (lore 20190919115547.GA17963@angband.pl); commit a78986aae9b2")
    variants = [
        Variant("reserved_pfn", "before the fix: kvm_is_reserved_pfn() is PageReserved(), true for ZONE_DEVICE, "
                "so KVM never puts its gup reference", commit="before a78986aae9b2",
                programs={"vcpu": FaultPath, "teardown": TeardownOld, "exit": VmExitOld},
                flags={"reserved_rule": "old"}, buggy=True),
        Variant("refcounted", "a78986aae9b2: ZONE_DEVICE pages are not reserved for refcounting; THP adjust "
                "and accessed/dirty marking skip them via kvm_is_zone_device_pfn()", commit="a78986aae9b2",
                programs={"vcpu": FaultPathFixed, "teardown": Teardown, "exit": VmExit},
                flags={"reserved_rule": "fixed"}),
        Variant("unpinned_check", "the fix, plus a caller that runs kvm_is_zone_device_pfn() after dropping "
                "its reference (the race Dan Williams described; hypothetical caller)",
                commit="a78986aae9b2 + hypothetical caller",
                programs={"vcpu": FaultPathUnpinnedCheck, "teardown": Teardown, "exit": VmExit},
                flags={"reserved_rule": "fixed"}, buggy=True),
    ]
    params = {
        "user": Param("kvm", choices=("kvm", "kvm_exit", "mmap"),
                      help="who maps the device: a KVM guest (kvm), a KVM guest whose QEMU exits "
                           "(kvm_exit), or a plain mmap() without KVM (mmap)"),
        "vcpus": Param(1, 1, 2, "vCPUs faulting on the device page (each takes its own gup reference); "
                                "ignored with user=mmap"),
    }
    properties = {
        "teardown_completes": "memunmap_pages() finishes: no page or pgmap reference is left behind",
        "no_use_after_free": "no struct page is read after arch_remove_memory() freed the memmap",
        "no_thp_on_device_pfn": "KVM never hands the ZONE_DEVICE pfn to THP refcount adjustment or "
                                "accessed/dirty marking, flows that lack the machinery for it",
        "no_unpinned_check": "KVM reads a page's ZONE_DEVICE metadata only while the page has references "
                             "(the WARNs in kvm_is_zone_device_pfn() and mmu_spte_clear_track_bits())",
        "memmap_freed_after_drain": "arch_remove_memory() runs only once no page or pgmap reference is left",
        "no_stale_spte": "no SPTE maps the page once its user PTE is gone, outside an mmu_notifier invalidation "
                         "(the contract that lets KVM map a pfn without holding a reference)",
    }
    stuck_property = "teardown_completes"
    world = KernelWorld
    goals = {
        "reserved_pfn": "Leave the teardown waiting in dev_pagemap_cleanup() forever.",
        "refcounted": "Try to break it: hang the teardown, or read the struct page after it is freed.",
        "unpinned_check": "Make the late kvm_is_zone_device_pfn() read the struct page after the memmap is freed.",
    }

    def setup(self, w, variant, config, params):
        user = params["user"]
        w.spinlock(MMU_LOCK)
        w.spinlock(PTL)
        w.declare("user pte", True)
        w.declare("dax alive", True)
        w.declare("kvm notifier", user != "mmap")
        w.declare("mmu_notifier_seq", 0)
        w.declare("mmu_notifier_count", 0)
        w.declare("spte", False)
        w.declare("mem_section", True)
        w.declare("pgmap.ref", 2)
        w.declare("pgmap.dead", False)
        w.declare("pgmap.done", False)
        w.declare("page holders", (H_INIT,))
        w.declare("pgmap holders", (H_BASE, H_PAGE))
        oid = w.new_obj("struct page", flags=("PG_reserved",), zone="ZONE_DEVICE", _refcount=1)
        if oid != PAGE:
            raise AssertionError(f"struct page got id {oid}")
        if user == "mmap":
            w.spawn(MmapUser("user", cpu=0, comm="vmemcache", title="process with /dev/dax0.0 mmap()ed"))
        else:
            w.spawn(variant.programs["vcpu"]("vcpu", cpu=0, comm="qemu-vcpu0",
                                             title="vCPU: EPT violation on a /dev/dax-backed guest page"))
        w.spawn(variant.programs["teardown"]("teardown", cpu=1, comm="ndctl",
                                             title="device unbind: kill_dev_dax(), memunmap_pages()"))
        vcpus = (0,)
        if user != "mmap" and params["vcpus"] > 1:
            vcpus = (0, 2 if user != "kvm_exit" else 3)
        if user == "kvm_exit":
            w.spawn(variant.programs["exit"]("exit", cpu=2, comm="qemu", title="QEMU exits: exit_mmap()",
                                             vcpu=0, vcpus=vcpus))
        if len(vcpus) > 1:
            w.spawn(variant.programs["vcpu"]("vcpu1", cpu=vcpus[1], comm="qemu-vcpu1",
                                             title="a second vCPU: EPT violation on the same page"))

    def invariants(self, w):
        if w["spte"] and not w["user pte"] and w["mmu_notifier_count"] == 0:
            yield "no_stale_spte", ("the SPTE still maps pfn " + f"{PFN:#x} after the user PTE was zapped and the "
                                    "invalidation ended: the secondary MMU outlives the primary one")

    def describe_state(self, w):
        out = {}
        if w.has_obj(PAGE):
            pg = w.obj(PAGE)
            out[f"struct page {PFN:#x}"] = (f"{', '.join(pg['flags'])}, {pg['zone']}, "
                                           f"_refcount {pg['_refcount']}")
        else:
            out[f"struct page {PFN:#x}"] = "freed (arch_remove_memory)"
        out["page references"] = ", ".join(w["page holders"]) or "none"
        state = "dead" if w["pgmap.dead"] else "live"
        out["pgmap->ref"] = f"{w['pgmap.ref']} ({state}); done: {'yes' if w['pgmap.done'] else 'no'}"
        out["pgmap references"] = ", ".join(w["pgmap holders"]) or "none"
        out["user PTE"] = "maps the page" if w["user pte"] else "zapped"
        out["SPTE"] = "maps the page" if w["spte"] else "none"
        owner = w.lock_owner(MMU_LOCK)
        out["kvm->mmu_lock"] = "unlocked" if owner is None else f"held by {w.label(owner)}"
        out["mmu_notifier seq / count"] = f"{w['mmu_notifier_seq']} / {w['mmu_notifier_count']}"
        if w.params["user"] != "mmap":
            out["KVM mmu_notifier"] = "registered" if w["kvm notifier"] else "unregistered"
        out["dax"] = "alive" if w["dax alive"] else "killed"
        return out


# ---------------------------------------------------------------------------
# Lab 4: the learner writes kvm_release_pfn_clean()'s rule
# ---------------------------------------------------------------------------

LAB_PARAMS = ({"user": "kvm"}, {"user": "kvm_exit"})
LAB_MUST_HOLD = ("teardown_completes", "no_use_after_free", "no_thp_on_device_pfn", "no_unpinned_check",
                 "memmap_freed_after_drain", "no_stale_spte")


class LabStarter(FaultPathFixed):
    """Lab 4 starter: the release rule from before the fix (PageReserved() pages are never put)."""

    @line("if (!is_error_noslot_pfn(pfn) && !PageReserved(pfn_to_page(pfn))) put_page(pfn_to_page(pfn));",
          fn="kvm_release_pfn_clean")
    def release(self, w, t):
        if not is_error_noslot_pfn(t.pfn) and not PageReserved(w, t.pfn):
            put_page(w, H_KVM)


def lab_variant(vcpu_cls, name: str = "mine", desc: str = "my release rule") -> Variant:
    """A variant of ``refcounted`` whose vCPU program is ``vcpu_cls`` (a FaultPathFixed subclass)."""
    if not (isinstance(vcpu_cls, type) and issubclass(vcpu_cls, FaultPath)):
        from ..engine import KvmlabError
        raise KvmlabError("lab_variant() takes a subclass of zone_device.FaultPathFixed")
    return ZoneDevice.variant("refcounted").derive(name, desc, programs={"vcpu": vcpu_cls}, buggy=False)


# ---------------------------------------------------------------------------
# The chapter's exercise solutions (shown in its dropdowns; its tests and
# tools/model_coverage.py explore them)
# ---------------------------------------------------------------------------

class NoRetry(FaultPathFixed):
    """Exercise ch4-ex-retry: the fixed fault path without mmu_notifier_retry()."""

    @line("/* if (mmu_notifier_retry(vcpu->kvm, mmu_seq)) goto out_unlock;  -- removed */")
    def retry(self, w, t):
        return None


class EarlyPut(FaultPathFixed):
    """Exercise ch4-ex-dan: Dan Williams' alternative, put_page() right after gup."""

    @line("put_page(page);   /* right after gup */", fn="hva_to_pfn", after="put_pgmap")
    def early_put(self, w, t):
        if not is_error_noslot_pfn(t.pfn):
            put_page(w, H_KVM)

    @line("/* kvm_release_pfn_clean(pfn): nothing left to put */", fn="kvm_release_pfn_clean")
    def release(self, w, t):
        return None


class PgmapInstead(FaultPathFixed):
    """Exercise ch4-ex-pgmap: a wrong fix that drops a pgmap reference KVM does not own."""

    @line("if (is_zone_device_page(page)) put_dev_pagemap(page->pgmap);"
          " else if (!PageReserved(page)) put_page(page);", fn="kvm_release_pfn_clean")
    def release(self, w, t):
        if is_zone_device_page(w, t.pfn):
            put_dev_pagemap(w, "KVM (wrongly)")
        elif not PageReserved(w, t.pfn):
            put_page(w, H_KVM)


def guards_variant(thp: str = "old", accessed: str = "old") -> Variant:
    """Exercise ch4-ex-guards: the fixed kvm_is_reserved_pfn() with the old or new THP/accessed guards."""
    progs = {"vcpu": FaultPath if thp == "old" else FaultPathFixed}
    if accessed == "old":
        progs.update(teardown=TeardownOld, exit=VmExitOld)
    return ZoneDevice.variant("refcounted").derive(
        f"guards_thp_{thp}_accessed_{accessed}",
        f"fixed kvm_is_reserved_pfn(), {thp} THP guard, {accessed} accessed guard", programs=progs)


def references_dot(w, title: str = "") -> str:
    """Graphviz source: who holds which reference in world ``w`` (page refcount vs pgmap reference)."""
    def q(s):
        return '"' + str(s).replace('"', '\\"') + '"'

    nl = "\\n"
    lines = ["digraph refs {", "  rankdir=TB; nodesep=0.25; ranksep=0.45;",
             '  node [fontname="DejaVu Sans Mono", fontsize=10, shape=box];',
             '  edge [fontname="DejaVu Sans Mono", fontsize=9];']
    if title:
        lines.append(f'  label={q(title)}; labelloc=t; fontname="DejaVu Sans Mono"; fontsize=11;')
    if w.has_obj(PAGE):
        count = w.obj(PAGE)["_refcount"]
        label = f"struct page {PFN:#x}{nl}PG_reserved, ZONE_DEVICE{nl}_refcount = {count}"
        lines.append(f"  page [label={q(label)}];")
    else:
        label = f"struct page {PFN:#x}{nl}(memmap freed)"
        lines.append(f"  page [label={q(label)}, style=dashed, color=gray50];")
    dead = "dead" if w["pgmap.dead"] else "live"
    done = "done: yes" if w["pgmap.done"] else "done: no"
    label = f"dev_pagemap{nl}ref = {w['pgmap.ref']} ({dead}){nl}{done}"
    lines.append(f"  pgmap [label={q(label)}];")
    holders: dict[tuple[str, str], int] = {}
    for target, field in (("page", "page holders"), ("pgmap", "pgmap holders")):
        for h in w[field]:
            holders[(target, h)] = holders.get((target, h), 0) + 1
    n = 0
    for (target, h), k in holders.items():
        if h == H_PAGE:
            lines.append(f"  page -> pgmap [label={q('_refcount > 0: one pgmap ref')}, color=\"#0550ae\"];")
            continue
        n += 1
        lines.append(f"  h{n} [label={q(h)}, shape=ellipse];")
        lab = ("page ref" if target == "page" else "pgmap ref") + (f" x{k}" if k > 1 else "")
        lines.append(f"  h{n} -> {target} [label={q(lab)}];")
    if w["spte"]:
        label = f"KVM SPTE{nl}(pfn only, no reference)"
        lines.append(f"  spte [label={q(label)}, shape=ellipse, style=dotted];")
        lines.append("  spte -> page [style=dotted];")
    lines.append("}")
    return "\n".join(lines)
