"""Chapter 3 (RCU watching): every claim, through the public API.

Models: rcu_watch (the general lesson) and apf_wait (seed 001, commit
6bca69ada4bc "x86/kvm: Sanitize kvm_async_pf_task_wait()"); the decision
table of both waits; the lab's grader with the reference solution, the
starter and wrong rules; the kernel-library additions (rcu_preempt_depth(),
the report texts).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import pathlib

import pytest

import kvmlab
from kvmlab.engine import KvmlabError, Model, Program, line
from kvmlab.kernel import KernelWorld, splat
from kvmlab.models import apf_wait

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALL_CONFIGS = [dict(zip(apf_wait.CONFIG_NAMES, b)) for b in itertools.product((True, False), repeat=3)]
POSSIBLE = [c for c in ALL_CONFIGS if apf_wait.kconfig_possible(c)]
CTX = {
    "#1": {"context": "host", "preempt_count": 0, "rcu_nesting": 0},
    "#2a": {"context": "user", "preempt_count": 0, "rcu_nesting": 0},
    "#2b": {"context": "kernel", "preempt_count": 0, "rcu_nesting": 0},
    "#2c reader": {"context": "kernel", "preempt_count": 0, "rcu_nesting": 1},
    "#2c atomic": {"context": "kernel", "preempt_count": 1, "rcu_nesting": 0},
    "idle": {"context": "idle", "preempt_count": 1, "rcu_nesting": 0},
}


def props(result):
    return {v.property for v in result.violations}


# --------------------------------------------------------------------------------------------
# rcu_watch
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prcu", [True, False])
@pytest.mark.parametrize("variant", ["watching", "irq_enter"])
def test_rcu_watch_correct_variants_are_clean(variant, prcu):
    r = kvmlab.check("rcu_watch", variant, config={"PREEMPT_RCU": prcu})
    assert r.complete and r.ok, r.violations
    assert r.states > 20


@pytest.mark.parametrize("prcu", [True, False])
def test_eqs_reader_uses_freed_memory_and_lockdep_says_so(prcu):
    r = kvmlab.check("rcu_watch", "eqs_reader", config={"PREEMPT_RCU": prcu})
    assert props(r) == {"no_use_after_free", "rcu_used_while_watching"}
    lockdep = r.violation("rcu_used_while_watching")
    assert lockdep.schedule == ["0"]  # the very first rcu_read_lock()
    assert "rcu_read_lock() used illegally while idle!" in lockdep.splat
    assert "extended quiescent state" in lockdep.splat
    uaf = r.violation("no_use_after_free")
    assert "BUG: KASAN: use-after-free in reader" in uaf.splat
    # shortest: the reader picks up gp, the updater publishes, the grace period does not wait
    # for the idle CPU, kfree(old), then the reader dereferences
    lines = [s["c"] for s in uaf.trace]
    assert lines == ["rcu_read_lock();", "p = rcu_dereference(gp);", "old = rcu_dereference_protected(gp, 1);",
                     "rcu_assign_pointer(gp, new);", "synchronize_rcu();", "kfree(old);", "v = p->data;"]


def test_grace_period_waits_for_a_watched_reader_and_not_for_an_eqs_one():
    sched = ["0", "0", "1", "1", "1"]  # reader inside, updater reaches synchronize_rcu()
    watched = kvmlab.replay("rcu_watch", "watching", schedule=sched)
    assert watched.can_move(1) is not None and "grace period" in watched.can_move(1)
    eqs = kvmlab.replay("rcu_watch", "eqs_reader", schedule=sched)
    assert eqs.can_move(1) is None  # synchronize_rcu() returned: kfree(old) is next
    fixed = kvmlab.replay("rcu_watch", "irq_enter", schedule=["0"] + sched)
    assert "grace period" in fixed.can_move(1)


def test_reader_that_starts_after_the_grace_period_began_sees_the_new_object():
    tr = kvmlab.replay("rcu_watch", "watching", schedule=["1", "1", "1", "1", "0", "0", "0", "0"])
    assert tr.steps[-2]["state"]["threads"][0]["locals"]["v"] == "2"


# --------------------------------------------------------------------------------------------
# apf_wait: the decision table
# --------------------------------------------------------------------------------------------

def oracle_old(ctx, cfg):
    """The removed predicate, from the seed's text, computed without the model."""
    if ctx["context"] == "idle":
        return "halt"
    interrupt_kernel = ctx["context"] == "kernel"  # the host passed 0, a guest !user_mode(regs)
    if cfg["PREEMPT_COUNT"]:
        # evaluated under raw_spin_lock(&b->lock): that lock adds 1
        pc = ctx["preempt_count"] + (0 if cfg["PREEMPT_RCU"] else ctx["rcu_nesting"]) + 1
        depth = ctx["rcu_nesting"] if cfg["PREEMPT_RCU"] else 0
        return "halt" if pc > 1 or depth else "schedule"
    return "halt" if interrupt_kernel else "schedule"


def oracle_new(ctx, cfg):
    if ctx["context"] == "host":
        return "schedule"  # kvm_handle_page_fault() calls kvm_async_pf_task_wait_schedule()
    pc = ctx["preempt_count"] + (0 if cfg["PREEMPT_RCU"] else ctx["rcu_nesting"])
    if ctx["context"] == "idle":
        pc = max(pc, 1)
    visible = pc if (cfg["PREEMPT_COUNT"] or cfg["PREEMPTION"]) else 0
    depth = ctx["rcu_nesting"] if cfg["PREEMPT_RCU"] else 0
    if cfg["PREEMPTION"]:
        return "schedule" if visible + depth == 0 else "halt"
    return "schedule" if ctx["context"] == "user" else "halt"


def test_decision_table_covers_every_context_and_config_and_matches_the_seed():
    rows = apf_wait.decision_table()
    assert len(rows) == len(apf_wait.contexts()) * 8 == 56
    for r in rows:
        ctx = {k: r[k] for k in ("context", "preempt_count", "rcu_nesting")}
        cfg = {k: r[k] for k in apf_wait.CONFIG_NAMES}
        assert r["single_wait"] == oracle_old(ctx, cfg), r
        assert r["split_wait"] == oracle_new(ctx, cfg), r
    assert sum(r["possible"] for r in rows) == 3 * len(apf_wait.contexts())


def test_the_variants_differ_in_one_possible_configuration_only():
    diff = apf_wait.differences(apf_wait.decision_table())
    got = {(r["context"], r["preempt_count"], r["rcu_nesting"], r["PREEMPTION"], r["PREEMPT_COUNT"],
            r["PREEMPT_RCU"], r["single_wait"], r["split_wait"], r["possible"]) for r in diff}
    assert got == {
        # PREEMPTION=n with PREEMPT_COUNT=y: the old code let #2b-like kernel code schedule
        ("kernel", 0, 0, False, True, False, "schedule", "halt", True),
        ("kernel", 0, 0, False, True, True, "schedule", "halt", False),
        # PREEMPTION=y without PREEMPT_COUNT (Kconfig forbids it): the old code halted
        ("kernel", 0, 0, True, False, True, "halt", "schedule", False),
        ("kernel", 0, 0, True, False, False, "halt", "schedule", False),
    }
    assert [r for r in apf_wait.differences(apf_wait.decision_table(only_possible=True))] == \
        [r for r in diff if r["possible"]]


def test_seed_claims_about_the_split_rule():
    for cfg in POSSIBLE:
        for name, ctx in CTX.items():
            d = apf_wait.decide("split_wait", ctx, cfg)
            if name in ("#1", "#2a"):
                assert d == "schedule"  # schedulable states, RCU is watching
            elif name == "#2b":
                # "If CONFIG_PREEMPTION is disabled only allow scheduling when coming from user mode"
                assert d == ("schedule" if cfg["PREEMPTION"] else "halt")
            else:
                assert d == "halt"  # #2c and the idle task ("idle always has a preempt count > 0")


def test_old_predicate_needs_greater_than_one_because_b_lock_is_held():
    class Wrong(apf_wait.SingleWait):
        @line(["n.halted = is_idle_task(current) ||", "        (IS_ENABLED(CONFIG_PREEMPT_COUNT)",
               "         ? preempt_count() > 0 || rcu_preempt_depth()", "         : interrupt_kernel);"],
              local=True)
        def o_halted(self, w, t):
            w.deref(self.node)["halted"] = bool(self.idle or w.preempt_count() > 0 or w.rcu_preempt_depth())

    wrong = kvmlab.model("apf_wait").variant("single_wait").derive("gt0", "> 0", programs={"waiter": Wrong})
    cfg = POSSIBLE[0]
    assert cfg["PREEMPTION"] and cfg["PREEMPT_COUNT"]
    assert apf_wait.decide("single_wait", CTX["#2a"], cfg) == "schedule"
    assert apf_wait.decide(wrong, CTX["#2a"], cfg) == "halt"  # even user mode would halt


# --------------------------------------------------------------------------------------------
# apf_wait: verdicts
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["single_wait", "split_wait"])
@pytest.mark.parametrize("cfg", ALL_CONFIGS, ids=lambda c: "".join("y" if v else "n" for v in c.values()))
def test_both_waits_are_clean_everywhere(variant, cfg):
    for ctx in apf_wait.contexts():
        r = kvmlab.check("apf_wait", variant, config=cfg, params=ctx)
        assert r.complete and r.ok, (ctx, r.violations)


@pytest.mark.parametrize("cfg", ALL_CONFIGS, ids=lambda c: "".join("y" if v else "n" for v in c.values()))
def test_preempt_only_schedules_in_a_preemptible_rcu_reader(cfg):
    for ctx in apf_wait.contexts():
        r = kvmlab.check("apf_wait", "preempt_only", config=cfg, params=ctx)
        bad = cfg["PREEMPTION"] and cfg["PREEMPT_RCU"] and ctx["context"] == "kernel" \
            and ctx["rcu_nesting"] and not ctx["preempt_count"]
        if bad:
            assert props(r) == {"no_schedule_in_rcu_reader"}
            v = r.violation("no_schedule_in_rcu_reader")
            assert "Voluntary context switch within RCU read-side critical section!" in v.splat
            assert v.trace[-1]["c"] == "schedule();"
            assert v.trace[-1]["label"] == "CPU0"
            assert {s["label"] for s in v.trace} == {"CPU0"}  # the waiter alone gets there
        else:
            assert r.ok, (ctx, r.violations)


def test_halt_path_rcu_watching_old_and_new():
    """Idle task (#2c, RCU not watching): old code halts with RCU not watching, new one watching."""
    for variant, halt_line, watching in (("single_wait", "native_safe_halt();", 0),
                                         ("split_wait", "native_safe_halt();", 1)):
        sys_ = kvmlab.load("apf_wait", variant, params=CTX["idle"])
        tr = kvmlab.replay("apf_wait", variant, params=CTX["idle"], schedule=[])
        while sys_.programs[0].steps[sys_.load(tr.key).thread(0)["_pc"]].text != halt_line:
            tr.step(0)
        assert sys_.load(tr.key).thread(0)["_watch"] == watching
        tr.step(0)  # HLT: the vCPU stops until an interrupt is taken
        assert tr.can_move(0) == "halted"
        assert sys_.load(tr.key).thread(0)["_watch"] == watching


def test_no_lost_wakeup_catches_a_waker_that_ignores_use_halt():
    class DeafWaker(apf_wait.Waker):
        @line(["if (n->use_halt)", "smp_send_reschedule(n->cpu);"], fn="apf_task_wake_one")
        def kick(self, w, t):
            return None  # never kicks the halted CPU

    v = kvmlab.model("apf_wait").variant("split_wait").derive("deaf", "no IPI", programs={"waker": DeafWaker})
    r = kvmlab.check("apf_wait", v, params=CTX["#2c reader"])
    assert props(r) == {"no_lost_wakeup"}
    assert "halted" in r.violation("no_lost_wakeup").message
    assert kvmlab.check("apf_wait", v, params=CTX["#2b"]).ok  # the schedule path does not need it


def test_silent_violation_without_preempt_count():
    """PREEMPT_COUNT=n: schedule() in a non-preemptible reader is invisible to the kernel, not to the model."""
    def always(w, usermode):
        return True

    cfg = {"PREEMPTION": False, "PREEMPT_COUNT": False, "PREEMPT_RCU": False}
    r = kvmlab.check("apf_wait", apf_wait.rule_variant(always), config=cfg, params=CTX["#2c reader"])
    assert props(r) == {"no_schedule_in_rcu_reader", "no_sleep_in_atomic"}
    assert r.violation("no_schedule_in_rcu_reader").splat.startswith("(model)")
    assert "prints nothing" in r.violation("no_sleep_in_atomic").splat


@pytest.mark.parametrize("params", [{"context": "user", "rcu_nesting": 1},
                                    {"context": "host", "preempt_count": 1, "rcu_nesting": 0},
                                    {"context": "idle", "preempt_count": 0, "rcu_nesting": 0},
                                    {"context": "guest"}])
def test_bad_contexts_are_rejected(params):
    with pytest.raises(KvmlabError):
        kvmlab.load("apf_wait", "split_wait", params=params)


# --------------------------------------------------------------------------------------------
# the lab
# --------------------------------------------------------------------------------------------

def _load_solution():
    spec = importlib.util.spec_from_file_location("lab3_rcu", ROOT / "solutions" / "lab3_rcu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_solution_passes():
    rep = apf_wait.grade_rule(_load_solution().can_schedule)
    assert rep.passed and len(rep.rows) == 3 * 6 and not rep.failures
    assert "PASSED" in str(rep)


def _starter():
    nb = json.loads((ROOT / "notebooks" / "lab3-rcu.ipynb").read_text())
    src = next("".join(c["source"]) for c in nb["cells"]
               if c["cell_type"] == "code" and "def can_schedule" in "".join(c["source"]))
    ns = {}
    exec(compile(src, "lab3-starter", "exec"), ns)
    return ns["can_schedule"]


def test_starter_runs_and_is_not_yet_right():
    rep = apf_wait.grade_rule(_starter())
    assert not rep.passed and "NOT YET" in str(rep)


def test_wrong_rules_show_the_failing_case():
    rep = apf_wait.grade_rule(apf_wait.preempt_only_can_schedule)
    assert not rep.passed and len(rep.failures) == 1
    f = rep.failures[0]
    assert (f["context"], f["rcu_nesting"], f["PREEMPT_RCU"]) == ("kernel", 1, True)
    assert "Voluntary context switch" in str(rep) and "shortest schedule" in str(rep)
    assert "<table>" in rep._repr_html_()

    rep = apf_wait.grade_rule(lambda w, usermode: usermode)  # too cautious: halts in #2b
    assert [f["case"] for f in rep.failures] == ["#2b"]
    assert "halts where the 2020 rule (6bca69ada4bc) schedules" in str(rep)

    rep = apf_wait.grade_rule(lambda w, usermode: w.preempt_count() + w.rcu_preempt_depth() == 0)
    assert not rep.passed
    assert any(f["splat"] for f in rep.failures)  # PREEMPT_COUNT=n: the model's silent report
    assert any(f["case"] == "#2c (PREEMPTION=n)" and "no indication" in f["why"] for f in rep.failures)

    rep = apf_wait.grade_rule(lambda w, usermode: w.rcu_preempt_depth() == 0)  # exercise ch3-ex-rcuonly
    first = rep.failures[0]
    assert (first["case"], first["preempt_count"], first["PREEMPTION"]) == ("#2c", 1, True)
    assert "BUG: scheduling while atomic" in first["splat"]
    assert any(f["context"] == "idle" for f in rep.failures)
    silent = [f for f in rep.failures if not f["PREEMPT_COUNT"] and f["rcu_nesting"]]
    assert silent and all(f["splat"].startswith("(model)") for f in silent)

    with pytest.raises(KvmlabError):
        apf_wait.grade_rule("not a function")


# --------------------------------------------------------------------------------------------
# kernel library additions
# --------------------------------------------------------------------------------------------

class _DepthProbe(Program):
    fn = "probe"
    locals = {"d": -1}

    @line("rcu_read_lock();")
    def lock(self, w, t):
        w.rcu_read_lock()

    @line("d = rcu_preempt_depth();")
    def depth(self, w, t):
        t.d = w.rcu_preempt_depth()

    @line("rcu_read_unlock();")
    def unlock(self, w, t):
        w.rcu_read_unlock()


class _DepthModel(Model):
    name = "depth_probe"
    from kvmlab.engine import Config, Variant
    variants = [Variant("probe", "probe", programs={"p": _DepthProbe})]
    configs = {"PREEMPT_RCU": Config(True)}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        w.spawn(_DepthProbe("p"))


@pytest.mark.parametrize("prcu,depth,pre", [(True, 1, 0), (False, 0, 1)])
def test_rcu_preempt_depth(prcu, depth, pre):
    tr = kvmlab.replay(_DepthModel, "probe", schedule=[0, 0], config={"PREEMPT_RCU": prcu})
    th = kvmlab.load(_DepthModel, "probe", config={"PREEMPT_RCU": prcu}).load(tr.key).thread(0)
    assert th["d"] == depth and th["_pre"] == pre


def test_report_texts():
    text = splat.rcu_voluntary_switch("task", 100, ("f", "schedule();"), cpu=2)
    assert text.splitlines()[:3] == [
        "------------[ cut here ]------------",
        "Voluntary context switch within RCU read-side critical section!",
        "WARNING: CPU: 2 PID: 100 at kernel/rcu/tree_plugin.h rcu_note_context_switch"]
    r = kvmlab.check("rcu_watch", "eqs_reader")
    assert r.violation("rcu_used_while_watching").splat.count("used illegally while idle!") == 1


def test_reduction_changes_no_verdict_and_no_counterexample():
    for variant in ("single_wait", "split_wait", "preempt_only"):
        for cfg in ALL_CONFIGS:
            for ctx in apf_wait.contexts():
                a = kvmlab.check("apf_wait", variant, config=cfg, params=ctx)
                b = kvmlab.check("apf_wait", variant, config=cfg, params=ctx, reduction=False)
                assert a.complete and b.complete
                assert [(v.property, v.schedule) for v in a.violations] == \
                    [(v.property, v.schedule) for v in b.violations], (variant, cfg, ctx)
    for variant in ("watching", "eqs_reader", "irq_enter"):
        a, b = kvmlab.check("rcu_watch", variant), kvmlab.check("rcu_watch", variant, reduction=False)
        assert [(v.property, v.schedule) for v in a.violations] == [(v.property, v.schedule) for v in b.violations]


def test_chapter_exercise_solutions_print_what_the_text_says():
    """Each solution block runs and prints the answer its comments and prose claim."""
    import contextlib
    import io
    import re
    text = (ROOT / "book" / "ch3-rcu-watching.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    outs = []
    for b in blocks:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(b, "ch3-solution", "exec"), {})
        outs.append(buf.getvalue().splitlines())
    assert len(outs) == 4, len(outs)
    idle, gt0, deaf, rcuonly = outs
    assert len(idle) == 3 and all(ln.endswith(" halt") for ln in idle), idle      # halt, halt, halt
    assert gt0 == ["schedule halt"]
    assert deaf == ["['no_lost_wakeup']", "True"]
    assert rcuonly[0].startswith("NOT YET") and "preempt_count=1, rcu_nesting=0" in rcuonly[1]
    assert "no_sleep_in_atomic" in rcuonly[2] and "scheduling while atomic" in rcuonly[2]


def _split_without(step):
    """split_wait with one of the halt bracket's RCU calls made a no-op (keeping its C line)."""
    cls = type(f"No_{step}", (apf_wait.SplitWait,), {})
    spec = apf_wait.SplitWait._specs[step]

    def noop(self, w, t, _step=step):
        return apf_wait.DONE if _step == "halt_rcu_exit" else None
    setattr(cls, step, line(list(spec.c), local=spec.local)(noop))
    cls.__init_subclass__()  # re-read the overriding step
    return kvmlab.model("apf_wait").variant("split_wait").derive(f"no_{step}", "", programs={"waiter": cls})


@pytest.mark.parametrize("step", ("halt_rcu_enter", "halt_rcu_exit"))
def test_halt_bracket_pairing_is_a_property(step):
    """Drop either half of the rcu_irq_enter()/exit() bracket around the halt: rcu_irq_balanced fails."""
    v = _split_without(step)
    r = kvmlab.check("apf_wait", v, params=CTX["#2c reader"])
    assert r.complete and props(r) == {"rcu_irq_balanced"}, props(r)
    # in a schedulable context the bracket is not on the path: nothing to report
    assert kvmlab.check("apf_wait", v, params=CTX["#2b"]).ok
    # the kernel's code pairs them on every path
    for ctx in CTX.values():
        assert kvmlab.check("apf_wait", "split_wait", params=ctx).holds("rcu_irq_balanced")


def test_schedule_only_while_rcu_watches():
    """A rule that lets the idle task schedule sleeps where RCU is not watching: reported."""
    bad = type("IdleSchedules", (apf_wait.SplitWait,), {"rule": staticmethod(lambda w, usermode: True)})
    v = kvmlab.model("apf_wait").variant("split_wait").derive("idle_sched", "", programs={"waiter": bad})
    r = kvmlab.check("apf_wait", v, params=CTX["idle"])
    assert "schedule_while_watching" in props(r), props(r)
    for variant in ("single_wait", "split_wait", "preempt_only"):
        for ctx in CTX.values():
            assert kvmlab.check("apf_wait", variant, params=ctx).holds("schedule_while_watching")
