"""The engine on small models whose state graphs are counted by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import kvmlab
from kvmlab.engine import DONE, KvmlabError, Model, ModelError, Param, Program, Variant, line
from kvmlab.engine.search import find_fair_cycle
from kvmlab.kernel import KernelWorld

# -- lost_update, counted by hand (see the comments) ---------------------------------


def test_lost_update_plain_hand_counted():
    # states (pc0, pc1, counter, tmp0, tmp1): LL0; SL0 LS0; SS0 DL1 LD1; DS1(tmp 0) SD1(tmp 0)
    # DS1(tmp 1) SD1(tmp 1); DD1 DD2  -> 12 states, 14 transitions, depth 4
    r = kvmlab.check("lost_update", "plain", reduction=False)
    assert (r.states, r.transitions, r.depth, r.complete) == (12, 14, 4, True)
    v = r.violation("no_lost_update")
    assert v is not None and v.kind == "end"
    assert v.schedule == ["0", "1", "0", "1"]  # both load, both store: the shortest loss
    assert "counter == 1" in v.message


def test_lost_update_atomic_and_spinlock_hand_counted():
    r = kvmlab.check("lost_update", "atomic", reduction=False)
    assert (r.states, r.transitions, r.ok) == (4, 4, True)
    # 1 initial + 3+3 with one CPU inside lock..unlock + 4+4 with one done + 1 both done
    r = kvmlab.check("lost_update", "spinlock", reduction=False)
    assert (r.states, r.ok) == (16, True)


def test_lost_update_three_cpus_two_loops_still_loses():
    r = kvmlab.check("lost_update", "plain", params={"cpus": 3, "loops": 2})
    assert r.violation("no_lost_update") is not None
    assert kvmlab.check("lost_update", "spinlock", params={"cpus": 3, "loops": 2}).ok


# -- a model written here: blocking, choices, stuck states, lassos -------------------


class Take(Program):
    locals = {"got": False}

    @line("spin_lock(&a);")
    def la(self, w, t):
        w.spin_lock(self.first)

    @line("spin_lock(&b);")
    def lb(self, w, t):
        w.spin_lock(self.second)

    @line("spin_unlock(&b);")
    def ub(self, w, t):
        w.spin_unlock(self.second)

    @line("spin_unlock(&a);")
    def ua(self, w, t):
        w.spin_unlock(self.first)


class ABBA(Model):
    name = "abba"
    variants = [Variant("abba", "opposite orders", programs={"p": Take}),
                Variant("ordered", "same order", programs={"p": Take}, flags={"ordered": True})]
    properties = {"no_deadlock": "some CPU can always move"}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        w.spinlock("A")
        w.spinlock("B")
        w.spawn(Take("t0", cpu=0, first="A", second="B"))
        second = ("A", "B") if variant.flags.get("ordered") else ("B", "A")
        w.spawn(Take("t1", cpu=1, first=second[0], second=second[1]))


def test_abba_deadlock_is_a_stuck_state_with_reasons():
    r = kvmlab.check(ABBA, "abba")
    v = r.violation("no_deadlock")
    assert v is not None and v.kind == "stuck"
    assert v.schedule == ["0", "1"]
    assert "CPU0 spinning on B (held by CPU1) forever" in v.message
    assert "CPU1 spinning on A (held by CPU0) forever" in v.message
    assert kvmlab.check(ABBA, "ordered").ok


class Retry(Program):
    """Try to allocate until it works; a second thread just finishes."""

    locals = {"p": None}

    @line("p = kmalloc(sizeof(*p), GFP_KERNEL);")
    def alloc(self, w, t):
        t.p = w.kmalloc("GFP_KERNEL", "obj", may_fail=True)

    @line("if (!p) goto again;", local=True)
    def check(self, w, t):
        if t.p is None:
            return "alloc"

    @line("kfree(p);")
    def free(self, w, t):
        w.kfree(t.p)
        t.p = None


class Other(Program):
    @line("x = 1;")
    def set(self, w, t):
        w["x"] = 1


class RetryModel(Model):
    name = "retry"
    variants = [Variant("v", "retry forever", programs={})]
    properties = {"terminates": "every CPU finishes"}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        w.declare("x", 0)
        w.spawn(Retry("r", cpu=0))
        w.spawn(Other("o", cpu=1))


@pytest.mark.parametrize("reduction", [False, True])
def test_lasso_without_fairness_and_fair_termination(reduction):
    r = kvmlab.check(RetryModel, fairness="none", reduction=reduction)
    v = r.violation("terminates")
    assert v is not None and v.kind == "lasso" and v.loop_start is not None
    loop = v.schedule[v.loop_start:]
    assert loop and all(m.startswith("0") for m in loop)  # only the retrying CPU loops
    assert "CPU0 loops forever" in v.message and "fairness: none" in v.message
    # the allocation may fail forever: fairness between CPUs does not help that
    r = kvmlab.check(RetryModel, fairness="weak", reduction=reduction)
    v = r.violation("terminates")
    assert v is not None
    assert set(m.split(":")[0] for m in v.schedule[v.loop_start:]) == {"0"}
    assert any(m.startswith("1") for m in v.schedule[:v.loop_start])  # CPU1 finished first


def test_fair_cycle_weak_vs_strong_on_a_hand_made_graph():
    # two states: 0 <-> 1 by thread 0; thread 1 enabled only in state 1 and never taken
    succ = [[(1, 0, "0")], [(0, 0, "0")]]
    enabled = [0b01, 0b11]
    assert find_fair_cycle(succ, enabled, "none") is not None
    assert find_fair_cycle(succ, enabled, "weak") is not None  # thread 1 not enabled all along
    assert find_fair_cycle(succ, enabled, "strong") is None  # enabled infinitely often: unfair
    entry, moves = find_fair_cycle(succ, enabled, "none")
    assert entry == 0 and moves == ["0", "0"]


def test_weak_fairness_excludes_a_cycle_that_starves_an_always_enabled_thread():
    # 0 <-> 1 by thread 0; thread 1 is enabled in both states (its move leaves to 2) and never
    # moves on the cycle: weakly unfair, so only "none" accepts the cycle
    succ = [[(1, 0, "0"), (2, 1, "1")], [(0, 0, "0"), (2, 1, "1")], []]
    enabled = [0b11, 0b11, 0]
    assert find_fair_cycle(succ, enabled, "none") == (0, ["0", "0"])
    assert find_fair_cycle(succ, enabled, "weak") is None
    assert find_fair_cycle(succ, enabled, "strong") is None


def test_strong_fairness_finds_a_fair_cycle_inside_an_unfair_component():
    # one component {0, 1, 2}, all moves by thread 0; thread 2 is enabled only in state 2 and never
    # moves. The whole component is strongly unfair, but the cycle 0 <-> 1 avoids state 2: fair.
    succ = [[(1, 0, "0"), (2, 0, "0:x")], [(0, 0, "0")], [(0, 0, "0")]]
    enabled = [0b001, 0b001, 0b101]
    for fairness in ("none", "weak", "strong"):
        found = find_fair_cycle(succ, enabled, fairness)
        assert found is not None, fairness
    entry, moves = find_fair_cycle(succ, enabled, "strong")
    assert entry == 0 and moves == ["0", "0"]  # the sub-cycle, not through state 2
    # a state without a self-loop is no cycle; a self-loop is
    assert find_fair_cycle([[]], [0b1], "none") is None
    assert find_fair_cycle([[(0, 0, "0")]], [0b1], "none") == (0, ["0"])


# -- determinism, errors ------------------------------------------------------------------


def test_output_is_identical_whatever_pythonhashseed():
    outs = []
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        p = subprocess.run([sys.executable, "-m", "kvmlab.cli", "check", "apf_wake", "--variant", "unlock_alloc",
                            "--param", "waiters=2", "--json"], capture_output=True, text=True, env=env)
        assert p.returncode == 1, p.stderr
        d = json.loads(p.stdout)
        d.pop("seconds")
        outs.append(d)
    assert outs[0] == outs[1] == outs[2]


def test_bad_input_is_a_clear_error():
    with pytest.raises(KvmlabError, match="unknown model"):
        kvmlab.check("no_such_model")
    with pytest.raises(KvmlabError, match="unknown variant"):
        kvmlab.check("apf_wake", "nope")
    with pytest.raises(KvmlabError, match="unknown config"):
        kvmlab.check("apf_wake", config={"PREEMPT_FOO": "y"})
    with pytest.raises(KvmlabError, match="use y or n"):
        kvmlab.check("apf_wake", config={"PREEMPT_RT": "maybe"})
    with pytest.raises(KvmlabError, match="between"):
        kvmlab.check("apf_wake", params={"waiters": 99})
    with pytest.raises(KvmlabError, match="not an integer"):
        kvmlab.check("apf_wake", params={"waiters": "two"})


def test_state_bound_reports_incomplete():
    r = kvmlab.check("apf_wake", "recheck", params={"waiters": 2, "wakers": 2}, max_states=100)
    assert not r.complete and r.exit_code == 3 and "max states" in r.stopped_by
    assert not r.ok and r.holds("no_leak") is False


class Undeclared(Program):
    @line("y = 1;")
    def s(self, w, t):
        t.y = 1


class Jumper(Program):
    @line("goto nowhere;")
    def s(self, w, t):
        return "nowhere"


class LocalLiar(Program):
    @line("x = 1;", local=True)
    def a(self, w, t):
        return None

    @line("x = 2;", local=True)
    def b(self, w, t):
        w["x"] = 2


class UnderLiar(Program):
    @line("x = 1;", under="l")
    def a(self, w, t):
        w["x"] = 1


def _one(prog_cls):
    class M(Model):
        name = "one"
        variants = [Variant("v", "v")]
        world = KernelWorld

        def setup(self, w, variant, config, params):
            w.declare("x", 0)
            w.spawn(prog_cls("p"))
    return M


def test_model_errors_are_reported():
    with pytest.raises(ModelError, match="undeclared local"):
        kvmlab.check(_one(Undeclared))
    with pytest.raises(ModelError, match="not a step"):
        kvmlab.check(_one(Jumper))
    # a false local promise is caught as the step runs: the reduction does not apply to it,
    # so the reduced search sees the shared write as a step of its own
    red = kvmlab.check(_one(LocalLiar), reduction=True)
    full = kvmlab.check(_one(LocalLiar), reduction=False)
    assert red.complete and full.complete and red.states == full.states == 3
    # likewise a step marked under= a lock it does not hold is not merged into anything
    red = kvmlab.check(_one(UnderLiar), reduction=True, liveness=False)
    full = kvmlab.check(_one(UnderLiar), reduction=False, liveness=False)
    assert red.complete and (red.states, red.transitions) == (full.states, full.transitions) == (2, 1)


def test_variant_override_keeps_place_and_inserts():
    from kvmlab.models.apf_wake import WakerOriginal, WakerUnlockAlloc
    names = [s.name for s in WakerUnlockAlloc("w", tokens=(1,), alloc_failures=0).steps]
    base = [s.name for s in WakerOriginal("w", tokens=(1,), alloc_failures=0).steps]
    assert names.index("unlock_for_alloc") == base.index("alloc")
    assert names[names.index("alloc") + 1] == "relock"
    assert [n for n in names if n not in ("unlock_for_alloc", "relock")] == base


def test_a_learner_variant_is_a_few_lines():
    """Derive a variant overriding one step, as a lab does; the explorer judges it."""
    M = kvmlab.model("lost_update")
    from kvmlab.models.lost_update import PlainInc

    class Mine(PlainInc):
        @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
        def store(self, w, t):
            w["counter"] = w["counter"] + 1  # one step reads and writes: an atomic increment
            t.i += 1

    v = M.variant("plain").derive("mine", "store re-reads the counter", programs={"worker": Mine})
    r = kvmlab.check(M, v)
    assert r.ok  # load is now dead code; the store itself is one atomic read-modify-write
    assert r.variant == "mine"


class StopsEarly(Program):
    @line("if (x) return;")
    def check(self, w, t):
        if w["x"] == 0:
            return DONE

    @line("x = 2;")
    def later(self, w, t):
        w["x"] = 2


def test_done_ends_a_thread_before_its_last_step_and_param_choices():
    sys_ = kvmlab.load(_one(StopsEarly))
    w = sys_.run(sys_.initial, 0)
    assert w.thread(0) is None and sys_.all_done(w.key())  # the step after it never runs
    assert w["x"] == 0 and sys_.enabled(w.key()) == ([], {0: "done"})
    r = kvmlab.check(_one(StopsEarly), reduction=False)
    assert (r.states, r.transitions) == (2, 1)
    p = Param(1, 0, 2, choices=("task", "hardirq"))
    assert p.parse("ctx", "task") == "task"
    with pytest.raises(KvmlabError):
        p.parse("ctx", "softirq")


def test_liveness_checks_never_use_lock_transactions():
    """Weak fairness depends on where a thread is enabled: lock transactions must not decide it
    (only private steps are merged, and the verdict is the full graph's)."""
    params = {"alloc_failures": -1}
    a = kvmlab.check("apf_wake", "recheck", params=params, liveness=True, fairness="weak", reduction=True)
    b = kvmlab.check("apf_wake", "recheck", params=params, liveness=True, fairness="weak", reduction=False)
    assert a.reduction == "local" and b.reduction is False
    assert a.states < b.states
    assert (a.violation("terminates") is None) == (b.violation("terminates") is None)
    assert a.violation("terminates") is not None  # the waiter may find b->lock taken every time
    s = kvmlab.check("apf_wake", "recheck", params=params, liveness=True, fairness="strong")
    assert s.violation("terminates") is None  # a fairly queued lock lets the waiter in
    n = kvmlab.check("apf_wake", "recheck", params=params, liveness=True, fairness="none")
    v = n.violation("terminates")
    assert v is not None and all(m.startswith("1") for m in v.schedule[v.loop_start:])


class SetX(Program):
    @line("x = 1;")
    def a(self, w, t):
        w["x"] = 1

    @line("x = 0;")
    def b(self, w, t):
        w["x"] = 0


class XZero(Model):
    name = "xzero"
    variants = [Variant("v", "x = 1; x = 0;")]
    properties = {"x_zero": "x is 0 in every state"}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        w.declare("x", 0)
        w.spawn(SetX("p"))

    def invariants(self, w):
        if w["x"]:
            yield "x_zero", "x == 1"


@pytest.mark.parametrize("reduction", [False, "local", True])
def test_an_invariant_is_checked_in_every_state_even_one_step_in(reduction):
    r = kvmlab.check(XZero, reduction=reduction, liveness=False)
    v = r.violation("x_zero")
    assert v is not None and (v.kind, v.schedule, v.message) == ("invariant", ["0"], "x == 1")


def test_the_verdict_names_the_fairness_it_assumed():
    assert kvmlab.check(RetryModel).fairness == "none"  # the model's default
    assert kvmlab.check(RetryModel, fairness="weak").fairness == "weak"
    assert kvmlab.check(RetryModel, fairness="strong").fairness == "strong"
    r = kvmlab.check("tdp_root_put", "v3")
    assert r.fairness == kvmlab.model("tdp_root_put").fairness == "weak"
    assert kvmlab.check(RetryModel).violation("terminates") is not None  # listed: checked by default
