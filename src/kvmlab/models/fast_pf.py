"""Fast page faults: setting the W bit of an SPTE with cmpxchg, outside mmu_lock.

Source: seed 002, the "Fast page fault" section of KVM's lock overview
(Documentation/virtual/kvm/locking.txt of 2012-2013), and the code it
describes: commit c7ba5b48cc8d ("KVM: MMU: fast path of handling guest page
fault"), ``fast_page_fault()``, ``fast_pf_fix_direct_spte()``,
``spte_has_volatile_bits()``, ``mmu_spte_update()``,
``mmu_spte_clear_track_bits()`` and ``spte_write_protect()`` in
arch/x86/kvm/mmu.c of that era (v3.6).

State: one SPTE (``None`` is the value 0, "not present"; otherwise the bits
W, Accessed, Dirty, SPTE_HOST_WRITEABLE, SPTE_MMU_WRITEABLE and the pfn),
the guest PTE (which gfn the guest maps at the faulting address),
``sp->gfns[i]`` (the gfn an indirect shadow page records for the SPTE),
the host's gfn -> pfn mapping, the dirty bitmap, the struct page
accessed/dirty flags, and the TLB entry of the vCPU (the only CPU running
guest code). Ghost fields (not kernel state) record which SPTE bits the CPU
set and which pages the guest stored to, for the properties.

Threads (thread 0 is the vCPU, thread 1 the host side):

* ``vcpu``: ``fast_page_fault()`` for a write fault on a write-protected
  SPTE, then the guest's retried store. The store is the hardware's work:
  one atomic step that either hits a cached writable TLB entry (memory is
  written, the SPTE is not touched: the entry was filled by a store, so it
  caches D=1) or walks the SPTE and, if it is writable, sets A and D with a
  locked update and fills the TLB. A store that finds the SPTE not present
  or read-only faults again; what follows (the slow path under mmu_lock) is
  not modelled. The store runs in the vCPU's thread because it follows the
  fault handler on the same CPU, as in the document's right-hand column.
* ``host``: per variant, one of the document's three host-side stories:
  the ABA sequence (swap out pfn1, reuse it for gfn2, the guest points its
  PTE at gfn2, the SPTE is re-installed), ``mmu_spte_clear_track_bits()``,
  or write-protection (``spte_write_protect()``, ``mmu_spte_update()`` and
  the caller's ``kvm_flush_remote_tlbs()``).

Atomicity: each step is one C line; ``cmpxchg64``/``xchg`` use the kernel
library's sequentially consistent ``cmpxchg``/``xchg`` (the model has no
weak memory). A plain 64-bit store (``__update_clear_spte_fast()`` on
x86-64) is one step; reading the SPTE and writing it back are separate
steps, which is the whole point of case 2.

Abstractions (say them in the chapter):

* one SPTE, one vCPU, one host thread, one guest store; gfn1, gfn2 and
  pfn1, pfn2 only;
* the host paths run under ``kvm->mmu_lock``; with one host thread the lock
  excludes nobody, so its lock/unlock lines are left out. The fast path
  takes no lock; ``walk_shadow_page_lockless_begin()/end()`` (which keep
  the shadow page from being freed, not the SPTE from changing) are left
  out, as are the shadow-walk loop and the level checks (one level);
* in the ABA story the host's lines are the document's pseudo-code; the
  zap is one atomic step (``xchg`` + A/D tracking, the code's behaviour
  once the SPTE is volatile), the re-fault is one step that looks up the
  pfn (swapping gfn1 back in to pfn2 if it has no page), installs the SPTE
  and records the gfn in ``sp->gfns[i]``; the reuse of pfn1 waits while the
  vCPU holds a reference on it (``pinned``, used only by the exercise that
  writes the document's proposed fix: a page with a reference cannot be freed);
* lines that only test the thread's own copy of the SPTE are grouped into
  one local step (marked ``local``);
* left out because no modelled run reaches them: the ``WARN_ON`` in
  ``mmu_spte_clear_track_bits()`` and the early
  ``!is_shadow_present_pte(old_spte)`` return in ``mmu_spte_update()``.

The ``indirect_sp`` variant is the document's hypothetical: the direct-only
fast path applied to an indirect shadow page, reading the gfn from
``sp->gfns[i]`` as ``kvm_mmu_page_get_gfn()`` does. KVM never shipped it:
the document says fast page faults were disabled for indirect shadow pages.

Config ``AD_BITS`` is not a Kconfig: it says whether the SPTE format has
hardware Accessed/Dirty bits (``shadow_accessed_mask``/``shadow_dirty_mask``
non-zero). Without them the CPU sets nothing, ``spte_has_volatile_bits()``
says "not volatile" for an SPTE that is not locklessly modifiable, and
``mmu_spte_clear_track_bits()`` marks the page accessed and dirty
unconditionally.
"""

from __future__ import annotations

from ..engine import DONE, Config, Model, Program, Variant, line
from ..kernel import KernelWorld

# SPTE tuple layout
W, A, D, HW, MW, PFN = range(6)

SPTE = "spte"
GPTE = "gpte"
SP_GFNS = "sp->gfns[i]"
MEMSLOT = "gfn->pfn"
BITMAP = "dirty_bitmap"
PAGE_ACCESSED = "page_accessed"
PAGE_DIRTY = "page_dirty"
TLB = "tlb"
PINNED = "pinned"       # pfns the vCPU holds a reference on (gfn_to_pfn_atomic()); none in the shipped variants
HWBITS = "@hw"          # ghost: SPTE bits last set by the CPU
STORES = "@stores"      # ghost: (gfn, pfn) the guest stored to
WP_DONE = "@wp_done"    # ghost: the host's write-protection (and its flush decision) is over

INITIAL_SPTE = (0, 1, 0, 1, 1, 1)   # read-only (dirty logging), accessed, clean, both writeable bits, pfn1


def mk(s, **bits):
    """SPTE ``s`` with some bits changed, e.g. ``mk(s, w=1)``."""
    out = list(s)
    for k, v in bits.items():
        out[{"w": W, "a": A, "d": D, "hw": HW, "mw": MW, "pfn": PFN}[k]] = v
    return tuple(out)


def is_rmap_spte(s) -> bool:
    return s is not None


def is_writable_pte(s) -> bool:
    return s is not None and bool(s[W])


def spte_is_locklessly_modifiable(s) -> bool:
    """Both SPTE_HOST_WRITEABLE and SPTE_MMU_WRITEABLE are set."""
    return s is not None and bool(s[HW]) and bool(s[MW])


def volatile_v36(s, ad: bool) -> bool:
    """spte_has_volatile_bits() of v3.6: locklessly modifiable SPTEs are always volatile."""
    if spte_is_locklessly_modifiable(s):
        return True
    return volatile_origin(s, ad)


def volatile_origin(s, ad: bool) -> bool:
    """spte_has_volatile_bits() without the lockless test: 'the origin code' of the document."""
    if not ad:
        return False
    if s is None:
        return False
    if s[A] and (not s[W] or s[D]):
        return False
    return True


def owner(w, pfn):
    """The gfn whose memory is ``pfn`` now, or None."""
    for gfn, p in w[MEMSLOT]:
        if p == pfn:
            return gfn
    return None


def pfn_of(w, gfn):
    return dict(w[MEMSLOT]).get(gfn)


def set_memslot(w, gfn, pfn):
    m = dict(w[MEMSLOT])
    m[gfn] = pfn
    w[MEMSLOT] = tuple(sorted(m.items()))


def sw_store(w, value):
    """Software writes the SPTE: the marks of bits the CPU set are gone."""
    w[SPTE] = value
    w[HWBITS] = ()


def sw_xchg(w, value):
    old = w.xchg(SPTE, value)
    w[HWBITS] = ()
    return old


def kvm_set_pfn_accessed(w, pfn):
    w[PAGE_ACCESSED] = w[PAGE_ACCESSED] | {pfn}


def kvm_set_pfn_dirty(w, pfn):
    w[PAGE_DIRTY] = w[PAGE_DIRTY] | {pfn}


def mark_page_dirty(w, gfn):
    """mark_page_dirty(kvm, gfn), and the check that the SPTE just made writable maps that gfn."""
    w[BITMAP] = w[BITMAP] | {gfn}
    s = w[SPTE]
    if is_writable_pte(s):
        g = owner(w, s[PFN])
        if g is not None and g not in w[BITMAP]:
            w.report("dirty_log_complete",
                     f"mark_page_dirty(gfn{gfn}), but the SPTE this path made writable maps "
                     f"pfn{s[PFN]}, which now holds gfn{g}: gfn{g} is missing from the dirty bitmap",
                     title=f"dirty log: gfn{gfn} marked, gfn{g} writable and unmarked")


# --------------------------------------------------------------------------- vCPU


class FastPathDirect(Program):
    """fast_page_fault() on a direct shadow page, then the guest's retried store."""

    fn = "fast_page_fault"
    locals = {"spte": None, "gfn": 0}
    title = "fast_page_fault(), then the guest's store (CPU)"

    @line("spte = mmu_spte_get_lockless(iterator.sptep);")
    def get(self, w, t):
        t.spte = w[SPTE]

    @line(["if (!is_rmap_spte(spte)) { ret = true; goto exit; }",
           "if (is_writable_pte(spte)) { ret = true; goto exit; }",
           "if (!spte_is_locklessly_modifiable(spte)) goto exit;"], local=True)
    def checks(self, w, t):
        s = t.spte
        if not is_rmap_spte(s) or is_writable_pte(s):
            return "store"          # ret = true: let the vCPU access the address again
        if not spte_is_locklessly_modifiable(s):
            return "slow"           # ret = false: the real page fault path fixes it

    @line("gfn = kvm_mmu_page_get_gfn(sp, sptep - sp->spt);", fn="fast_pf_fix_direct_spte", local=True)
    def get_gfn(self, w, t):
        t.gfn = 1                   # direct sp: sp->gfn + index, fixed: gfn1

    @line("if (cmpxchg64(sptep, spte, spte | PT_WRITABLE_MASK) == spte)", fn="fast_pf_fix_direct_spte")
    def cmpxchg(self, w, t):
        if w.cmpxchg(SPTE, t.spte, mk(t.spte, w=1)) != t.spte:
            return "store"          # the SPTE changed: return true, retry the access

    @line("mark_page_dirty(vcpu->kvm, gfn);", fn="fast_pf_fix_direct_spte")
    def mark(self, w, t):
        mark_page_dirty(w, t.gfn)
        return "store"

    @line("return false;  /* the slow path, under mmu_lock (not modelled) */", local=True)
    def slow(self, w, t):
        return DONE

    @line("mov %eax, (addr)  /* guest store, retried: TLB hit, or page walk setting A and D */",
          fn="guest")
    def store(self, w, t):
        ad = w.cfg("AD_BITS", True)
        tlb = w[TLB]
        if tlb is not None and tlb[1]:
            pfn = tlb[0]            # cached writable translation: the SPTE is not read
        else:
            s = w[SPTE]
            if not is_writable_pte(s):
                return DONE         # faults again; the next fault is not modelled
            pfn = s[PFN]
            if ad:
                set_now = tuple(b for b, i in (("A", A), ("D", D)) if not s[i])
                w[SPTE] = mk(s, a=1, d=1)      # locked update by the CPU
                w[HWBITS] = tuple(sorted(set(w[HWBITS]) | set(set_now)))
            w[TLB] = (pfn, 1)
        gfn = owner(w, pfn)
        w[STORES] = w[STORES] | {(gfn, pfn)}
        if gfn is not None and gfn not in w[BITMAP]:
            w.report("dirty_log_complete",
                     f"the guest stored to gfn{gfn} (pfn{pfn}) through a writable translation, "
                     f"but gfn{gfn} is not in the dirty bitmap",
                     title=f"dirty log: store to gfn{gfn} not logged")
        return DONE


class FastPathIndirect(FastPathDirect):
    """The document's hypothetical: the same code on an indirect shadow page (gfn from sp->gfns[i])."""

    @line("gfn = kvm_mmu_page_get_gfn(sp, sptep - sp->spt);  /* indirect: sp->gfns[i] */",
          fn="fast_pf_fix_direct_spte")
    def get_gfn(self, w, t):
        t.gfn = w[SP_GFNS]


# --------------------------------------------------------------------------- host: case 1


class HostABA(Program):
    """Case 1 of the document: pfn1 is swapped out and reused for gfn2, the SPTE comes back."""

    fn = "host"
    title = "swap out pfn1, reuse it, re-fault"

    @line("spte = 0;  /* pfn1 is swapped out: kvm_unmap_rmapp() -> drop_spte() */", fn="kvm_unmap_rmapp")
    def zap(self, w, t):
        old = sw_xchg(w, None)
        if old is not None:
            ad = w.cfg("AD_BITS", True)
            if not ad or old[A]:
                kvm_set_pfn_accessed(w, old[PFN])
            if not ad or old[D]:
                kvm_set_pfn_dirty(w, old[PFN])

    @line("pfn1 is re-alloced for gfn2", fn="host_mm")
    def reuse(self, w, t):
        if 1 in w[PINNED]:          # a page with a reference held cannot be freed and reused
            w.block("pfn1 is pinned by vCPU0")
        set_memslot(w, 1, None)
        set_memslot(w, 2, 1)

    @line("gpte = gfn2;  /* the guest changes its page table */", fn="guest")
    def gpte(self, w, t):
        w[GPTE] = 2

    @line("spte = pfn1;  /* re-fault: gfn_to_pfn(), mmu_set_spte(), rmap_add() */", fn="mmu_set_spte")
    def refault(self, w, t):
        gfn = w[GPTE] if w.variant.flags.get("indirect") else 1
        pfn = pfn_of(w, gfn)
        if pfn is None:             # gfn has no page: swap it in to the free pfn
            used = {p for _, p in w[MEMSLOT] if p is not None}
            pfn = min({1, 2} - used)
            set_memslot(w, gfn, pfn)
        sw_store(w, mk(INITIAL_SPTE, pfn=pfn))   # dirty logging: installed read-only
        if w.variant.flags.get("indirect"):
            w[SP_GFNS] = gfn
        return DONE


# --------------------------------------------------------------------------- host: case 2


class ClearXchg(Program):
    """mmu_spte_clear_track_bits() of v3.6: a locklessly modifiable SPTE is volatile, use xchg."""

    fn = "mmu_spte_clear_track_bits"
    locals = {"old": None, "pfn": 0}
    title = "mmu_spte_clear_track_bits()"

    def volatile(self, w, old) -> bool:
        return volatile_v36(old, w.cfg("AD_BITS", True))

    @line("u64 old_spte = *sptep;")
    def read(self, w, t):
        t.old = w[SPTE]

    @line("if (!spte_has_volatile_bits(old_spte))", local=True)
    def if_volatile(self, w, t):
        if self.volatile(w, t.old):
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


class ClearPlain(ClearXchg):
    """'The origin code': a read-only, accessed SPTE is cleared with a plain store."""

    def volatile(self, w, old) -> bool:
        return volatile_origin(old, w.cfg("AD_BITS", True))


# --------------------------------------------------------------------------- host: case 3


class WriteProtectLockless(Program):
    """spte_write_protect(pt_protect = true) -> mmu_spte_update(), then the caller's TLB flush.

    v3.6 update (xchg for a volatile SPTE) with the flush rule of later
    kernels: flush if the old SPTE was locklessly modifiable.
    """

    fn = "spte_write_protect"
    locals = {"spte": None, "old": None, "flush": False}
    title = "rmap_write_protect() of the SPTE"

    def volatile(self, w, old) -> bool:
        return volatile_v36(old, w.cfg("AD_BITS", True))

    def needs_flush(self, old, new) -> bool:
        return spte_is_locklessly_modifiable(old) and not is_writable_pte(new)

    @line("u64 spte = *sptep;")
    def read(self, w, t):
        t.spte = w[SPTE]

    @line(["if (!is_writable_pte(spte) &&",
           "      !(pt_protect && spte_is_locklessly_modifiable(spte))) return false;"], local=True)
    def check(self, w, t):
        if not is_writable_pte(t.spte) and not spte_is_locklessly_modifiable(t.spte):
            return "do_flush"

    @line(["if (pt_protect) spte &= ~SPTE_MMU_WRITEABLE;", "spte = spte & ~PT_WRITABLE_MASK;"], local=True)
    def clear_bits(self, w, t):
        t.spte = mk(t.spte, mw=0, w=0)

    @line("u64 old_spte = *sptep;", fn="mmu_spte_update")
    def upd_read(self, w, t):
        t.old = w[SPTE]

    @line("if (!spte_has_volatile_bits(old_spte))", fn="mmu_spte_update", local=True)
    def upd_if_volatile(self, w, t):
        if self.volatile(w, t.old):
            return "upd_slow"

    @line("__update_clear_spte_fast(sptep, new_spte);", fn="mmu_spte_update")
    def upd_fast(self, w, t):
        sw_store(w, t.spte)
        return "upd_flush"

    @line("old_spte = __update_clear_spte_slow(sptep, new_spte);", fn="mmu_spte_update")
    def upd_slow(self, w, t):
        t.old = sw_xchg(w, t.spte)

    @line("if (spte_is_locklessly_modifiable(old_spte) && !is_writable_pte(new_spte)) ret = true;",
          fn="mmu_spte_update", local=True)
    def upd_flush(self, w, t):
        if self.needs_flush(t.old, t.spte):
            t.flush = True

    @line(["if (!shadow_accessed_mask) return ret;",
           "if (spte_is_bit_cleared(old_spte, new_spte, shadow_accessed_mask)) kvm_set_pfn_accessed(...);"],
          fn="mmu_spte_update")
    def upd_accessed(self, w, t):
        if not w.cfg("AD_BITS", True):
            return "do_flush"
        if t.old[A] and not t.spte[A]:
            kvm_set_pfn_accessed(w, t.old[PFN])

    @line("if (spte_is_bit_cleared(old_spte, new_spte, shadow_dirty_mask)) kvm_set_pfn_dirty(...);",
          fn="mmu_spte_update")
    def upd_dirty(self, w, t):
        if t.old[D] and not t.spte[D]:
            kvm_set_pfn_dirty(w, t.old[PFN])

    @line("if (rmap_write_protect(vcpu->kvm, gfn)) kvm_flush_remote_tlbs(vcpu->kvm);", fn="kvm_mmu_get_page")
    def do_flush(self, w, t):
        if t.flush:
            w[TLB] = None           # every vCPU's TLB (one vCPU here)
        w[WP_DONE] = True
        return DONE


class WriteProtectWasWritable(WriteProtectLockless):
    """Flush only if the old SPTE read as writable, and update it with a plain store."""

    def volatile(self, w, old) -> bool:
        return volatile_origin(old, w.cfg("AD_BITS", True))

    def needs_flush(self, old, new) -> bool:
        return is_writable_pte(old) and not is_writable_pte(new)

    @line("if (is_writable_pte(old_spte) && !is_writable_pte(new_spte)) ret = true;",
          fn="mmu_spte_update", local=True)
    def upd_flush(self, w, t):
        if self.needs_flush(t.old, t.spte):
            t.flush = True


# --------------------------------------------------------------------------- the model

DOC = "Documentation/virtual/kvm/locking.txt, 'Fast page fault'"


class FastPF(Model):
    name = "fast_pf"
    title = "Fast page faults: cmpxchg on an SPTE that the CPU also writes"
    source = ("KVM lock overview, Documentation/virtual/kvm/locking.txt, 'Fast page fault' (cmpxchg on the "
              "spte, the ABA problem, lost Dirty bits, TLB flushes); commit c7ba5b48cc8d")
    variants = [
        Variant("indirect_sp", "the fast path on an indirect shadow page: the document's ABA case",
                commit=f"hypothetical ({DOC}, case 1)",
                programs={"vcpu": FastPathIndirect, "host": HostABA}, flags={"indirect": True}, buggy=True),
        Variant("direct_sp_only", "the fast path only on direct shadow pages: the gfn is fixed by sp->gfn",
                commit="c7ba5b48cc8d", programs={"vcpu": FastPathDirect, "host": HostABA}),
        Variant("clear_plain", "mmu_spte_clear_track_bits() clears a read-only, accessed SPTE with a plain store",
                commit=f"'the origin code' ({DOC}, case 2)",
                programs={"vcpu": FastPathDirect, "host": ClearPlain}, buggy=True),
        Variant("clear_xchg", "a locklessly modifiable SPTE is volatile: cleared with xchg",
                commit="v3.6 spte_has_volatile_bits()",
                programs={"vcpu": FastPathDirect, "host": ClearXchg}),
        Variant("flush_if_was_writable",
                "mmu_spte_update() flushes only if the old SPTE read as writable; plain store",
                commit=f"{DOC}, case 3, without the volatile rule",
                programs={"vcpu": FastPathDirect, "host": WriteProtectWasWritable}, buggy=True),
        Variant("flush_if_lockless_writable",
                "mmu_spte_update() flushes if the old SPTE was locklessly modifiable; xchg",
                commit="later mmu_spte_update() (see chapter)",
                programs={"vcpu": FastPathDirect, "host": WriteProtectLockless}),
    ]
    configs = {
        "AD_BITS": Config(True, "the SPTE format has hardware Accessed/Dirty bits "
                                "(shadow_accessed_mask, shadow_dirty_mask != 0); not a Kconfig"),
    }
    params = {}
    properties = {
        "dirty_log_complete": "every gfn the guest can write without a fault, or did write, is in the dirty bitmap",
        "no_lost_dirty_bit": "every page the guest stored to ends up dirty: struct page dirty, or D=1 in an SPTE "
                             "still mapping it",
        "no_stale_writable_tlb": "once write-protection is over, no TLB holds a writable entry for a read-only SPTE",
        "w_needs_writeable_bits": "the SPTE is never writable while SPTE_HOST_WRITEABLE or SPTE_MMU_WRITEABLE "
                                  "is clear",
        "no_deadlock": "no thread waits forever (only a variant that pins a page can make the host wait)",
    }
    world = KernelWorld
    goals = {
        "indirect_sp": "Make vCPU0 mark gfn1 dirty while the SPTE it made writable maps gfn2.",
        "direct_sp_only": "Try the same trick: can the wrong gfn be marked now?",
        "clear_plain": "Let the guest's store set D, and still finish with pfn1's struct page clean.",
        "clear_xchg": "Try to lose the Dirty bit again.",
        "flush_if_was_writable": "Finish write-protection with a writable translation left in vCPU0's TLB.",
        "flush_if_lockless_writable": "Try to leave a stale writable TLB entry.",
    }

    def setup(self, w, variant, config, params):
        w.declare(SPTE, INITIAL_SPTE)
        w.declare(GPTE, 1)
        w.declare(SP_GFNS, 1)
        w.declare(MEMSLOT, ((1, 1), (2, None)))
        w.declare(BITMAP, frozenset())
        w.declare(PAGE_ACCESSED, frozenset())
        w.declare(PAGE_DIRTY, frozenset())
        w.declare(TLB, None)
        w.declare(PINNED, frozenset())
        w.declare(HWBITS, ())
        w.declare(STORES, frozenset())
        w.declare(WP_DONE, False)
        vcpu = variant.programs["vcpu"]
        host = variant.programs["host"]
        w.spawn(vcpu("vcpu0", cpu=0, label="vCPU0", title=getattr(vcpu, "title", "vCPU0")))
        w.spawn(host("host", cpu=1, label="host CPU1", title=getattr(host, "title", "host")))

    def invariants(self, w):
        s = w[SPTE]
        if is_writable_pte(s) and not (s[HW] and s[MW]):
            yield "w_needs_writeable_bits", (f"the SPTE is writable with SPTE_HOST_WRITEABLE={s[HW]} "
                                             f"SPTE_MMU_WRITEABLE={s[MW]}")
        tlb = w[TLB]
        if w[WP_DONE] and tlb is not None and tlb[1]:
            if not (is_writable_pte(s) and s[PFN] == tlb[0]):
                yield "no_stale_writable_tlb", (f"write-protection is over and the SPTE is read-only, but vCPU0's "
                                                f"TLB still maps pfn{tlb[0]} writable: the guest can write it "
                                                "without a fault")

    def end_checks(self, w):
        ad = w.cfg("AD_BITS", True)
        s = w[SPTE]
        for gfn, pfn in sorted(w[STORES], key=str):
            if pfn in w[PAGE_DIRTY]:
                continue
            if s is not None and s[PFN] == pfn and (s[D] or not ad):
                continue            # the SPTE still carries the information
            yield "no_lost_dirty_bit", (f"the guest stored to pfn{pfn} (gfn{gfn}) but its struct page is clean and "
                                        "no SPTE holds its Dirty bit: the write can be lost")

    def describe_state(self, w):
        ad = w.cfg("AD_BITS", True)
        s = w[SPTE]
        hw = set(w[HWBITS])
        if s is None:
            spte = "0  (not present)"
        else:
            def bit(name, i):
                if name in ("A", "D") and not ad:
                    return f"{name}=-"
                return f"{name}={s[i]}" + ("*" if name in hw else "")
            spte = " ".join([bit("W", W), bit("A", A), bit("D", D), f"HW={s[HW]}", f"MW={s[MW]}",
                             f"pfn={s[PFN]}"])
        mem = ", ".join(f"gfn{g}→" + (f"pfn{p}" if p is not None else "-") for g, p in w[MEMSLOT])

        def gfns(xs):
            return "{" + ", ".join(f"gfn{g}" for g in sorted(xs)) + "}"

        def pfns(xs):
            return "{" + ", ".join(f"pfn{p}" for p in sorted(xs)) + "}"

        tlb = w[TLB]
        aba = issubclass(w.variant.programs["host"], HostABA)
        out = {"spte": spte}
        if aba:
            out["gpte (guest PTE)"] = f"gfn{w[GPTE]}"
        if w.variant.flags.get("indirect"):
            out["sp->gfns[i]"] = f"gfn{w[SP_GFNS]}"
        out.update({
            "gfn→pfn": mem,
            "dirty bitmap": gfns(w[BITMAP]),
            "struct page dirty": pfns(w[PAGE_DIRTY]),
            "struct page accessed": pfns(w[PAGE_ACCESSED]),
        })
        if aba:
            out["pinned pfns"] = pfns(w[PINNED])
        out.update({
            "vCPU0 TLB": "empty" if tlb is None else f"pfn{tlb[0]} " + ("writable" if tlb[1] else "read-only"),
            "guest stored to": ", ".join(f"gfn{g} (pfn{p})" for g, p in sorted(w[STORES], key=str)) or "-",
        })
        return out
