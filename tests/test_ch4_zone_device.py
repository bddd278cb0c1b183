"""Chapter 4 (ZONE_DEVICE pfn refcounting): every claim of the chapter, through the public API."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

import kvmlab
from kvmlab.engine import line
from kvmlab.models import zone_device as zd

M = "zone_device"
ROOT = pathlib.Path(__file__).resolve().parents[1]
USERS = ("kvm", "kvm_exit", "mmap")
OTHER = ("no_use_after_free", "no_thp_on_device_pfn", "no_unpinned_check", "memmap_freed_after_drain",
         "no_stale_spte")


def check(variant, user="kvm", **kw):
    r = kvmlab.check(M, variant, params={"user": user}, **kw)
    assert r.complete
    return r


def props(r):
    return sorted(v.property for v in r.violations)


# -- the bug: reserved_pfn ------------------------------------------------------------

@pytest.mark.parametrize("user", ["kvm", "kvm_exit"])
def test_reserved_pfn_teardown_hangs(user):
    r = check("reserved_pfn", user)
    v = r.violation("teardown_completes")
    assert v is not None and v.kind == "stuck"
    assert "waiting in dev_pagemap_cleanup() for 1 reference" in v.message
    for p in OTHER:
        assert r.holds(p), p
    last = v.trace[-1]["state"]
    assert last["shared"]["page references"] == "KVM (gup)"
    assert last["shared"]["pgmap->ref"].startswith("1 (dead)")


def test_reserved_pfn_hangs_even_after_the_vm_exited():
    r = check("reserved_pfn", "kvm_exit")
    v = r.violation("teardown_completes")
    last = v.trace[-1]["state"]
    done = {t["name"]: t["done"] for t in last["threads"]}
    assert done == {"vcpu": True, "teardown": False, "exit": True}
    assert last["shared"]["SPTE"] == "none"
    assert last["shared"]["KVM mmu_notifier"] == "unregistered"
    # replaying the counterexample leaves the teardown unable to move, for the stated reason
    tr = kvmlab.replay(M, "reserved_pfn", schedule=v.schedule, params={"user": "kvm_exit"})
    assert tr.can_move(1) == "waiting in dev_pagemap_cleanup() for 1 reference"
    assert tr.can_move(0) is not None and tr.can_move(2) is not None


@pytest.mark.parametrize("variant", ["reserved_pfn", "refcounted", "unpinned_check"])
def test_plain_mmap_teardown_completes(variant):
    r = check(variant, "mmap")
    assert r.ok, props(r)
    # and not because nothing ran: in both orders the teardown gets to arch_remove_memory()
    for first in ("0", "1"):
        tr = kvmlab.replay(M, variant, schedule=[], params={"user": "mmap"})
        for tid in (first, "1" if first == "0" else "0"):
            while tr.can_move(int(tid)) is None:
                tr.step(tid)
        last = tr.steps[-1]["state"]["shared"]
        assert last["struct page 0x140000"] == "freed (arch_remove_memory)"
        assert last["pgmap->ref"].startswith("0 (dead)")


def test_reserved_pfn_kvm_never_puts_its_reference():
    # the vCPU alone: after kvm_release_pfn_clean() the page still carries KVM's reference
    sched = ["0"] * 13
    tr = kvmlab.replay(M, "reserved_pfn", schedule=sched)
    assert tr.steps[-1]["fn"] == "kvm_release_pfn_clean"
    assert tr.steps[-1]["state"]["shared"]["page references"] == f"{zd.H_INIT}, {zd.H_KVM}"
    tr = kvmlab.replay(M, "refcounted", schedule=sched)
    assert tr.steps[-1]["state"]["shared"]["page references"] == zd.H_INIT


# -- the fix: refcounted -----------------------------------------------------------------

@pytest.mark.parametrize("user", USERS)
def test_refcounted_is_clean(user):
    r = check("refcounted", user)
    assert r.ok, props(r)
    assert r.holds("teardown_completes") and r.holds("memmap_freed_after_drain")
    assert r.holds("no_thp_on_device_pfn")


@pytest.mark.parametrize("user", ["kvm", "kvm_exit"])
def test_refcounted_frees_memmap_only_after_drain(user):
    # the property is checked at the arch_remove_memory() step; it holds for the fix ...
    assert check("refcounted", user).holds("memmap_freed_after_drain")
    # ... and it is not vacuous: confusing the two references (dropping a pgmap reference
    # instead of the page reference) frees the memmap while KVM's page reference remains
    r = check(variant_of(PgmapInstead), user)
    v = r.violation("memmap_freed_after_drain")
    assert v is not None and "page _refcount 1" in v.splat
    assert v.trace[-1]["fn"] == "memunmap_pages"


def test_refcounted_teardown_waits_while_kvm_pins():
    # vCPU pins the page (6 steps), then the teardown runs as far as it can: it stops in
    # dev_pagemap_cleanup() with the memmap still there; once KVM puts its reference it finishes
    sys = kvmlab.load(M, "refcounted")
    tr = kvmlab.replay(M, "refcounted", schedule=["0"] * 6)
    assert tr.steps[-1]["state"]["shared"]["page references"] == f"{zd.H_INIT}, {zd.H_KVM}"
    while tr.can_move(1) is None:
        tr.step("1")
    assert tr.can_move(1) == "waiting in dev_pagemap_cleanup() for 1 reference"
    assert tr.steps[-1]["state"]["shared"][f"struct page {zd.PFN:#x}"].endswith("_refcount 1")
    while tr.can_move(0) is None:
        tr.step("0")
    assert sys.is_done(tr.key, 0)
    assert tr.can_move(1) is None
    tr.step("1")  # wait_for_completion() returns
    assert tr.steps[-1]["c"] == "wait_for_completion(&pgmap->done);"
    assert tr.steps[-1]["state"]["shared"][f"struct page {zd.PFN:#x}"].endswith("_refcount 0")
    tr.step("1")  # arch_remove_memory()
    assert tr.steps[-1]["state"]["shared"][f"struct page {zd.PFN:#x}"] == "freed (arch_remove_memory)"
    assert sys.is_done(tr.key, 1)


# -- Dan's race: unpinned_check ----------------------------------------------------------

@pytest.mark.parametrize("user", ["kvm", "kvm_exit"])
def test_unpinned_check_reads_freed_memmap(user):
    r = check("unpinned_check", user)
    v = r.violation("no_use_after_free")
    assert v is not None and v.kind == "splat"
    steps = [(s["label"], s["fn"]) for s in v.trace]
    i_free = steps.index(("CPU1", "memunmap_pages"), len(steps) - 3)
    assert v.trace[i_free]["c"].startswith("arch_remove_memory")
    assert steps[-1] == ("CPU0", "kvm_is_zone_device_pfn")
    assert any(s["fn"] == "kvm_is_zone_device_pfn" and s["c"].startswith("if (!pfn_valid")
               for s in v.trace[:i_free])
    # the merged WARN_ON_ONCE(!page_count()) fires in the window before the memmap is freed
    w = r.violation("no_unpinned_check")
    assert w is not None and "kvm_is_zone_device_pfn" in w.splat
    assert len(w.schedule) < len(v.schedule)
    assert r.holds("teardown_completes")


def test_properties_are_not_vacuous():
    # Sean's kvm_is_reserved_pfn() change without the kvm_is_zone_device_pfn() guards
    r = check(kvmlab.model(M).variant("refcounted").derive(
        "no_guards", "fixed rule, old THP guard and kvm_set_pfn_accessed()",
        programs={"vcpu": zd.FaultPath, "teardown": zd.TeardownOld, "exit": zd.VmExitOld}), "kvm_exit")
    v = r.violation("no_thp_on_device_pfn")
    assert v is not None and v.trace[-1]["fn"] == "transparent_hugepage_adjust"
    # without mmu_notifier_retry() the SPTE can outlive the user PTE
    r = check(variant_of(NoRetry), "kvm")
    assert r.violation("no_stale_spte") is not None


def test_dan_alternative_put_right_after_gup_is_clean_for_the_fault_path():
    # a78986aae9b2 explains why this was not taken: kvm_vcpu_map() needs the pin, which the model leaves out
    for user in ("kvm", "kvm_exit"):
        assert check(variant_of(EarlyPut), user).ok
    # clean because the reference is gone early, not because the vCPU never pinned the page
    tr = kvmlab.replay(M, variant_of(EarlyPut), schedule=[])
    refs = []
    while tr.can_move(0) is None:
        rec = tr.step("0")
        refs.append((rec["step"], rec["state"]["shared"]["page references"]))
    assert ("try_get", "device (initial), KVM (gup)") in refs
    assert ("early_put", "device (initial)") in refs


def test_old_guards_with_the_fixed_rule_fail_where_the_chapter_says():
    # exercise ch4-ex-guards: both old guards -> the THP guard in the vCPU's own fault
    r = check(zd.guards_variant("old", "old"), "kvm_exit")
    v = r.violation("no_thp_on_device_pfn")
    assert v.trace[-1]["fn"] == "transparent_hugepage_adjust" and {s["label"] for s in v.trace} == {"CPU0"}
    # only the accessed guard old -> mark_page_accessed() when an SPTE is zapped
    r = check(zd.guards_variant("new", "old"), "kvm_exit")
    v = r.violation("no_thp_on_device_pfn")
    assert v.trace[-1]["fn"] == "mmu_spte_clear_track_bits" and "mark_page_accessed()" in v.message
    assert props(r) == ["no_thp_on_device_pfn"]
    # both new: the fix
    assert check(zd.guards_variant("new", "new"), "kvm_exit").ok


@pytest.mark.parametrize("user", ["kvm", "kvm_exit"])
def test_two_faults(user):
    # two vCPUs fault on the page: each takes and (after the fix) drops its own reference
    fixed = kvmlab.check(M, "refcounted", params={"user": user, "vcpus": 2})
    assert fixed.complete and fixed.ok
    one = kvmlab.check(M, "refcounted", params={"user": user})
    assert fixed.states > one.states
    bug = kvmlab.check(M, "reserved_pfn", params={"user": user, "vcpus": 2})
    assert props(bug) == ["teardown_completes"]
    sched = bug.violation("teardown_completes").schedule
    tr = kvmlab.replay(M, "reserved_pfn", schedule=sched, params={"user": user, "vcpus": 2})
    # the shortest hang needs only one leaked reference; a run where both vCPUs fault leaks two
    assert "KVM (gup)" in tr.steps[-1]["state"]["shared"]["page references"]
    with pytest.raises(kvmlab.KvmlabError):
        kvmlab.check(M, "refcounted", params={"user": user, "vcpus": 3})


@pytest.mark.parametrize("variant", ["reserved_pfn", "refcounted", "unpinned_check"])
@pytest.mark.parametrize("user", ["kvm", "kvm_exit"])
def test_reduction_is_sound(variant, user):
    a = check(variant, user)
    b = check(variant, user, reduction=False)
    assert props(a) == props(b)
    for p in props(a):
        assert len(a.violation(p).schedule) == len(b.violation(p).schedule)


def test_bad_param():
    with pytest.raises(kvmlab.KvmlabError):
        kvmlab.check(M, "refcounted", params={"user": "qemu"})
    with pytest.raises(kvmlab.KvmlabError):
        zd.lab_variant(object)


def test_references_dot():
    sys = kvmlab.load(M, "reserved_pfn")
    src = zd.references_dot(sys.load(sys.initial), "initial")
    assert "_refcount = 1" in src and "ref = 2 (live)" in src
    tr = kvmlab.replay(M, "reserved_pfn", schedule=[])
    while tr.can_move(1) is None:  # the teardown alone, before any fault
        tr.step("1")
    assert sys.is_done(tr.key, 1)
    src = zd.references_dot(sys.load(tr.key))
    assert "(memmap freed)" in src
    graphviz = pytest.importorskip("graphviz")
    assert "<svg" in graphviz.Source(src).pipe(format="svg", encoding="utf-8")


# -- the lab ----------------------------------------------------------------------------

def _solution():
    path = ROOT / "solutions" / "lab4_zone_device.py"
    spec = importlib.util.spec_from_file_location("lab4_zone_device", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lab_verdicts(variant):
    out = set()
    for params in zd.LAB_PARAMS:
        r = kvmlab.check(M, variant, params=params)
        assert r.complete
        out |= {p for p in zd.LAB_MUST_HOLD if not r.holds(p)}
    return out


def test_lab_solution_passes():
    assert lab_verdicts(_solution().variant()) == set()


def notebook_starter():
    """The answer cell of notebooks/lab4-zone-device.ipynb as handed out, built by the lab registry."""
    from conftest import notebook_lab_variant
    return notebook_lab_variant("lab4")


def test_lab_starter_hangs():
    assert lab_verdicts(zd.lab_variant(zd.LabStarter, "starter")) == {"teardown_completes"}
    assert lab_verdicts(notebook_starter()) == {"teardown_completes"}


def test_lab_put_then_look_is_a_use_after_free():
    assert "no_use_after_free" in lab_verdicts(variant_of(PutThenCheck))


def test_lab_grade():
    from kvmlab import lab
    sol = _solution().variant()
    assert lab.grade(M, sol, params=list(zd.LAB_PARAMS), must_hold=list(zd.LAB_MUST_HOLD)).passed
    bad = lab.grade(M, notebook_starter(), params=list(zd.LAB_PARAMS), must_hold=list(zd.LAB_MUST_HOLD))
    assert not bad.passed and bad.counterexample.property == "teardown_completes"
    uaf = lab.grade(M, variant_of(PutThenCheck), params=list(zd.LAB_PARAMS), must_hold=list(zd.LAB_MUST_HOLD))
    assert not uaf.passed and uaf.counterexample.property == "no_use_after_free"


# -- wrong variants used above (the chapter's exercises) ----------------------------------

def variant_of(cls, name=None):
    return zd.lab_variant(cls, name or cls.__name__.lower())


PgmapInstead = zd.PgmapInstead


class PutThenCheck(zd.FaultPathFixed):
    @line("put_page(pfn_to_page(pfn));", fn="kvm_release_pfn_clean")
    def release(self, w, t):
        zd.put_page(w, zd.H_KVM)

    @line("if (is_zone_device_page(pfn_to_page(pfn))) put_dev_pagemap(pfn_to_page(pfn)->pgmap);",
          fn="kvm_release_pfn_clean", after="release")
    def release_pgmap(self, w, t):
        if zd.is_zone_device_page(w, t.pfn):
            zd.put_dev_pagemap(w, "KVM (wrongly)")


NoRetry = zd.NoRetry
EarlyPut = zd.EarlyPut
