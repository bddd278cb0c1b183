"""Chapter 5 (fast page faults): every claim of the chapter, through the public API."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

import kvmlab
from kvmlab.engine import line
from kvmlab.models import fast_pf
from kvmlab.models.fast_pf import FastPathDirect, WriteProtectLockless, is_writable_pte, volatile_origin

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROPS = ["dirty_log_complete", "no_lost_dirty_bit", "no_stale_writable_tlb", "w_needs_writeable_bits", "no_deadlock"]


def check(variant, **kw):
    kw.setdefault("reduction", False)
    return kvmlab.check("fast_pf", variant, **kw)


def step_names(model_variant, schedule, **kw):
    tr = kvmlab.replay("fast_pf", model_variant, schedule=schedule, **kw)
    return [(s["label"], s["step"]) for s in tr.steps], tr


def only(r, *props):
    """Exactly these properties are violated, every other one holds; the search was complete."""
    assert r.complete
    assert sorted(v.property for v in r.violations) == sorted(props)
    for p in PROPS:
        if p not in props:
            assert r.holds(p), p


# --------------------------------------------------------------------------- registry


def test_registered_with_the_issue_variants():
    names = [v["name"] for m in kvmlab.list_models() if m["name"] == "fast_pf" for v in m["variants"]]
    assert names == ["indirect_sp", "direct_sp_only", "clear_plain", "clear_xchg",
                     "flush_if_was_writable", "flush_if_lockless_writable"]
    assert set(PROPS) <= set(kvmlab.model("fast_pf").properties)


# --------------------------------------------------------------------------- case 1: ABA

ABA = ["0", "0", "0", "1", "1", "1", "1", "0", "0"]
ABA_STEPS = [("vCPU0", "get"), ("vCPU0", "checks"), ("vCPU0", "get_gfn"),
             ("host CPU1", "zap"), ("host CPU1", "reuse"), ("host CPU1", "gpte"), ("host CPU1", "refault"),
             ("vCPU0", "cmpxchg"), ("vCPU0", "mark")]


def test_indirect_sp_shortest_counterexample_is_the_documents_aba():
    r = check("indirect_sp")
    only(r, "dirty_log_complete")
    v = r.violation("dirty_log_complete")
    assert v.schedule == ABA
    assert v.kind == "splat"
    assert "gfn1" in v.message and "gfn2" in v.message
    steps, tr = step_names("indirect_sp", ABA)
    assert steps == ABA_STEPS
    shared = [s["state"]["shared"] for s in tr.steps]
    assert shared[0]["spte"] == "W=0 A=1 D=0 HW=1 MW=1 pfn=1"       # old_spte = *spte
    assert shared[3]["spte"] == "0  (not present)"                   # pfn1 is swapped out: spte = 0
    assert shared[4]["gfn→pfn"] == "gfn1→-, gfn2→pfn1"               # pfn1 re-alloced for gfn2
    assert shared[5]["gpte (guest PTE)"] == "gfn2"
    assert shared[6]["spte"] == shared[0]["spte"]                    # spte = pfn1: the same value again
    assert shared[6]["sp->gfns[i]"] == "gfn2"
    assert shared[7]["spte"] == "W=1 A=1 D=0 HW=1 MW=1 pfn=1"       # cmpxchg succeeded
    assert shared[8]["dirty bitmap"] == "{gfn1}"                    # mark_page_dirty(gfn1): OOPS
    assert [sp["property"] for sp in tr.steps[8]["splats"]] == ["dirty_log_complete"]


def test_indirect_sp_every_counterexample_has_the_aba_shape():
    """The bonus question: all violating runs differ only in where the gfn read lands."""
    sysm = kvmlab.load("fast_pf", "indirect_sp")
    shapes = set()

    def dfs(key, path):
        for tid in range(sysm.nthreads):
            if sysm.is_done(key, tid):
                continue
            pc = sysm.load(key).thread(tid)["_pc"]
            name = sysm.programs[tid].steps[pc].name
            for _mv, w in sysm.expand(key, tid):
                p = path + [name]
                if w.events:
                    shapes.add(tuple(x for x in p if x != "checks"))
                else:
                    dfs(w.key(), p)

    dfs(sysm.initial, [])
    host = ["zap", "reuse", "gpte", "refault"]
    assert len(shapes) == 4
    for s in shapes:
        assert s[0] == "get" and s[-2:] == ("cmpxchg", "mark")
        assert [x for x in s if x in host] == host
        assert s.index("get_gfn") < s.index("refault")


def test_indirect_sp_gfn_read_after_refault_marks_the_right_gfn():
    # spte read, checks, then the whole host side, then the gfn read: it reads gfn2
    tr = kvmlab.replay("fast_pf", "indirect_sp", schedule=["0", "0", "1", "1", "1", "1", "0", "0", "0", "0"])
    assert not any(s["splats"] for s in tr.steps)
    assert tr.steps[-1]["state"]["shared"]["dirty bitmap"] == "{gfn2}"
    assert tr.steps[-1]["state"]["shared"]["guest stored to"] == "gfn2 (pfn1)"


@pytest.mark.parametrize("ad", [True, False])
def test_direct_sp_only_is_clean(ad):
    r = check("direct_sp_only", config={"AD_BITS": ad})
    assert r.ok and r.states > 10
    # the same schedule: the re-fault maps gfn1 again, to a new page, and the cmpxchg fails
    steps, tr = step_names("direct_sp_only", ABA)
    assert steps[-2:] == [("vCPU0", "cmpxchg"), ("vCPU0", "store")]     # the cmpxchg failed: retry
    last = tr.steps[-1]["state"]["shared"]
    assert last["spte"].endswith("pfn=2") and last["spte"].startswith("W=0")
    assert last["dirty bitmap"] == "{}" and last["guest stored to"] == "-"


# --------------------------------------------------------------------------- case 2: lost Dirty bit

CLEAR = ["0", "0", "0", "1", "0", "0", "0", "1", "1", "1", "1", "1"]


def test_clear_plain_loses_the_dirty_bit():
    r = check("clear_plain")
    only(r, "no_lost_dirty_bit")
    v = r.violation("no_lost_dirty_bit")
    assert v.schedule == CLEAR and v.kind == "end"
    steps, tr = step_names("clear_plain", CLEAR)
    names = [s for _, s in steps]
    # the host reads the SPTE, the vCPU sets W and the CPU sets D, then the plain store clears it
    assert names.index("read") < names.index("cmpxchg") < names.index("store") < names.index("fast")
    assert "slow" not in names
    sh = [s["state"]["shared"] for s in tr.steps]
    assert sh[names.index("store")]["spte"] == "W=1 A=1 D=1* HW=1 MW=1 pfn=1"   # D set by the CPU
    assert sh[-1]["struct page dirty"] == "{}" and sh[-1]["guest stored to"] == "gfn1 (pfn1)"


@pytest.mark.parametrize("ad", [True, False])
def test_clear_xchg_is_clean(ad):
    assert check("clear_xchg", config={"AD_BITS": ad}).ok
    # clean because the racy schedule hands the Dirty bit over, not because it cannot run
    tr = kvmlab.replay("fast_pf", "clear_xchg", schedule=CLEAR, config={"AD_BITS": ad})
    assert tr.steps[-1]["state"]["shared"]["struct page dirty"] == "{pfn1}"
    # the same configuration with the plain clear loses it (AD bits) or not (no AD bits)
    assert check("clear_plain", config={"AD_BITS": ad}).holds("no_lost_dirty_bit") is (not ad)


def test_clear_plain_without_ad_bits_is_clean():
    """Config matters: with no D bit in the SPTE, the clear always marks the page dirty."""
    assert check("clear_plain", config={"AD_BITS": False}).ok
    tr = kvmlab.replay("fast_pf", "clear_plain", schedule=CLEAR, config={"AD_BITS": False})
    assert tr.steps[-1]["state"]["shared"]["struct page dirty"] == "{pfn1}"
    assert "fast" in [s["step"] for s in tr.steps]     # the plain store ran, and still nothing is lost


def test_clear_xchg_takes_the_bit_from_the_exchange():
    tr = kvmlab.replay("fast_pf", "clear_xchg", schedule=CLEAR)
    names = [s["step"] for s in tr.steps]
    assert "slow" in names and "fast" not in names
    assert tr.steps[-1]["state"]["shared"]["struct page dirty"] == "{pfn1}"


# --------------------------------------------------------------------------- case 3: TLB flush

TLB = ["0", "0", "0", "1", "1", "1", "1", "0", "0", "0", "1", "1", "1", "1", "1", "1"]


def test_flush_if_was_writable_leaves_a_stale_writable_tlb_entry():
    r = check("flush_if_was_writable")
    only(r, "no_stale_writable_tlb", "no_lost_dirty_bit")
    v = r.violation("no_stale_writable_tlb")
    assert v.schedule == TLB and v.kind == "invariant"
    steps, tr = step_names("flush_if_was_writable", TLB)
    names = [s for _, s in steps]
    assert names.index("upd_read") < names.index("cmpxchg") < names.index("store") < names.index("upd_fast")
    sh = tr.steps[-1]["state"]["shared"]
    assert sh["spte"].startswith("W=0") and "MW=0" in sh["spte"]
    assert sh["vCPU0 TLB"] == "pfn1 writable"


@pytest.mark.parametrize("ad", [True, False])
def test_flush_if_lockless_writable_is_clean(ad):
    assert check("flush_if_lockless_writable", config={"AD_BITS": ad}).ok
    # the same host with the old flush rule, same configuration: the stale entry is found
    assert check("flush_if_was_writable", config={"AD_BITS": ad}).violation("no_stale_writable_tlb")


def test_flush_if_lockless_writable_flushes_on_the_racy_schedule():
    tr = kvmlab.replay("fast_pf", "flush_if_lockless_writable", schedule=TLB)
    names = [s["step"] for s in tr.steps]
    assert names.index("upd_read") < names.index("cmpxchg") < names.index("store")
    assert tr.steps[names.index("store")]["state"]["shared"]["vCPU0 TLB"] == "pfn1 writable"
    assert tr.steps[-1]["state"]["shared"]["vCPU0 TLB"] == "empty"


def test_flush_if_was_writable_without_ad_bits_still_stale_tlb():
    r = check("flush_if_was_writable", config={"AD_BITS": False})
    only(r, "no_stale_writable_tlb")


# --------------------------------------------------------------------------- the exercises' variants


class V36WriteProtect(WriteProtectLockless):
    """v3.6: xchg for a volatile SPTE, flush if the exchanged value was writable."""

    @line("if (is_writable_pte(old_spte) && !is_writable_pte(new_spte)) ret = true;",
          fn="mmu_spte_update", local=True)
    def upd_flush(self, w, t):
        if is_writable_pte(t.old) and not is_writable_pte(t.spte):
            t.flush = True


class LocklessFlushPlainStore(WriteProtectLockless):
    def volatile(self, w, old):
        return volatile_origin(old, w.cfg("AD_BITS", True))


def derive(name, host):
    return kvmlab.model("fast_pf").variant("flush_if_lockless_writable").derive(name, name, programs={"host": host})


def test_v36_update_with_was_writable_flush_is_clean():
    v = derive("v36", V36WriteProtect)
    assert check(v).ok
    # the exchange returns W=1 on the racy schedule, so the old rule flushes
    tr = kvmlab.replay("fast_pf", v, schedule=TLB)
    assert tr.steps[-1]["state"]["shared"]["vCPU0 TLB"] == "empty"


def test_lockless_flush_with_plain_store_keeps_tlb_but_loses_dirty_bit():
    r = check(derive("lockless_plain", LocklessFlushPlainStore))
    only(r, "no_lost_dirty_bit")


class NoBitsCheck(FastPathDirect):
    """A wrong fast path: forgets spte_is_locklessly_modifiable()."""

    @line(["if (!is_rmap_spte(spte)) { ret = true; goto exit; }",
           "if (is_writable_pte(spte)) { ret = true; goto exit; }"], local=True)
    def checks(self, w, t):
        if t.spte is None or t.spte[fast_pf.W]:
            return "store"


def test_fast_path_must_not_set_w_without_both_writeable_bits():
    v = kvmlab.model("fast_pf").variant("flush_if_lockless_writable").derive(
        "nocheck", "no writeable-bits check", programs={"vcpu": NoBitsCheck})
    r = check(v)
    x = r.violation("w_needs_writeable_bits")
    assert x is not None and x.kind == "invariant"
    names = [s["step"] for s in x.trace]
    assert names.index("upd_slow") < names.index("get") < names.index("cmpxchg")


# --------------------------------------------------------------------------- lab 5


def load_solution():
    spec = importlib.util.spec_from_file_location("lab5_fast_pf", ROOT / "solutions" / "lab5_fast_pf.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lab5_fast_pf"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("cls", ["SolutionClear", "AlwaysXchgClear"])
def test_lab_solution_holds(cls):
    sol = load_solution()
    v = sol.variant(getattr(sol, cls), cls)
    for cfg in sol.CONFIGS:
        r = check(v, config=cfg)
        assert r.complete and all(r.holds(p) for p in sol.MUST_HOLD), (cls, cfg)


def starter_variant():
    """The answer cell of notebooks/lab5-fast-pf.ipynb as handed out, built by the lab registry."""
    from conftest import notebook_lab_variant
    return notebook_lab_variant("lab5")


def test_lab_starter_fails_with_the_lost_dirty_bit():
    sol = load_solution()
    r = check(starter_variant(), config=sol.CONFIGS[0])
    assert r.complete and r.violation("no_lost_dirty_bit") is not None


def test_lab_grade():
    from kvmlab import lab
    sol = load_solution()
    good = lab.grade("fast_pf", sol.variant(), configs=sol.CONFIGS, must_hold=sol.MUST_HOLD)
    assert good.passed
    bad = lab.grade("fast_pf", starter_variant(), configs=sol.CONFIGS, must_hold=sol.MUST_HOLD)
    assert not bad.passed


class Pinned(fast_pf.FastPathIndirect):
    """The document's proposed fix for indirect pages: pin the pfn before the cmpxchg (exercise)."""

    locals = {"pfn": None}

    @line("pfn = gfn_to_pfn_atomic(vcpu->kvm, gfn);", after="get_gfn")
    def pin(self, w, t):
        pfn = dict(w[fast_pf.MEMSLOT]).get(t.gfn)
        if pfn is None or pfn != t.spte[fast_pf.PFN]:
            return "store"
        w[fast_pf.PINNED] = w[fast_pf.PINNED] | {pfn}
        t.pfn = pfn

    @line("if (cmpxchg64(sptep, spte, spte | PT_WRITABLE_MASK) == spte)")
    def cmpxchg(self, w, t):
        if w.cmpxchg(fast_pf.SPTE, t.spte, fast_pf.mk(t.spte, w=1)) != t.spte:
            return "release"

    @line("mark_page_dirty(vcpu->kvm, gfn);")
    def mark(self, w, t):
        fast_pf.mark_page_dirty(w, t.gfn)

    @line("kvm_release_pfn_clean(pfn);", after="mark")
    def release(self, w, t):
        w[fast_pf.PINNED] = w[fast_pf.PINNED] - {t.pfn}
        return "store"


def test_pinning_the_pfn_fixes_indirect_sp():
    v = kvmlab.model("fast_pf").variant("indirect_sp").derive("pinned", "pin", programs={"vcpu": Pinned}, buggy=False)
    assert check(v).ok
    # while pinned, the host's reuse of pfn1 cannot run
    sysm = kvmlab.load("fast_pf", v)
    tr = kvmlab.replay("fast_pf", v, schedule=["0", "0", "0", "0", "1"])      # vCPU pinned pfn1, host zapped
    assert tr.steps[-1]["state"]["shared"]["pinned pfns"] == "{pfn1}"
    assert tr.can_move(1) == "pfn1 is pinned by vCPU0"
    assert sysm.nthreads == 2


def test_pinning_without_release_on_failure_is_caught():
    class Leaky(Pinned):
        @line("if (cmpxchg64(sptep, spte, spte | PT_WRITABLE_MASK) == spte)")
        def cmpxchg(self, w, t):
            if w.cmpxchg(fast_pf.SPTE, t.spte, fast_pf.mk(t.spte, w=1)) != t.spte:
                return "store"      # forgets kvm_release_pfn_clean(): the host waits forever

    v = kvmlab.model("fast_pf").variant("indirect_sp").derive("leaky", "leaky", programs={"vcpu": Leaky})
    r = check(v)
    assert r.violation("no_deadlock") is not None


@pytest.mark.parametrize("variant", [v.name for v in kvmlab.model("fast_pf").variants])
def test_reduction_gives_the_same_verdicts(variant):
    full, red = check(variant), check(variant, reduction=True)
    assert red.complete and red.states <= full.states
    assert sorted(v.property for v in red.violations) == sorted(v.property for v in full.violations)
    assert kvmlab.model("fast_pf").variant(variant).buggy == bool(full.violations)


def test_aba_schedule_is_also_shortest_with_reduction():
    assert check("indirect_sp", reduction=True).violation("dirty_log_complete").schedule == ABA


def test_stepper_shows_the_spte_bits_per_step():
    from kvmlab.widgets import Stepper
    s = Stepper("fast_pf", variant="indirect_sp", goal_property="dirty_log_complete")
    d = s.data
    assert d["goal_property"] == "dirty_log_complete" and d["shapes"][0][0] == "spte"
    # the SPTE pane shows the bits as the text describes them, including a bit set by the CPU (*)
    bits = {x for x in d["strings"] if x.startswith("W=")}
    assert {"W=0 A=1 D=0 HW=1 MW=1 pfn=1", "W=1 A=1 D=0 HW=1 MW=1 pfn=1", "W=1 A=1 D=1* HW=1 MW=1 pfn=1"} <= bits
    assert "0  (not present)" in d["strings"]
    # "show me" plays the document's ABA schedule
    assert d["counterexamples"]["dirty_log_complete"]["schedule"] == ABA
