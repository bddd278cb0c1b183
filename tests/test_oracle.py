"""The explorer against an independent reference search (tests/oracle.py).

For every model, variant and configuration below, the naive BFS and
``kvmlab.check`` must agree on which properties break (with every reduction
setting), on the state, transition and depth counts without reduction, and
on the length of each shortest counterexample; each counterexample the
explorer prints must replay to its violation. ``terminates`` is compared
under no, weak and strong fairness, and every lasso is replayed and judged
fair. Three hand-made models check that a step wrongly marked ``local``
hides nothing. The ``slow`` set widens the grid; ``KVMLAB_ORACLE=quick``
narrows it to the defaults (for tools/mutants.py).
"""

from __future__ import annotations

import itertools
import os

import oracle  # tests/oracle.py (pytest puts tests/ on sys.path)
import pytest

import kvmlab
from kvmlab.engine import Explorer, Model, Program, Variant, line
from kvmlab.kernel import KernelWorld

MAX = 20_000

# params varied one at a time around the defaults (fast set), and their grids (slow set)
PARAM_VALUES = {
    "apf_handshake": {"ready_first": [0, 1], "same_cpu": [0, 1], "irqs_off": [0, 1], "wake_all_anytime": [0, 1]},
    "apf_wait": {"context": ["host", "user", "kernel", "idle"], "preempt_count": [0, 1, 2],
                 "rcu_nesting": [0, 1, 2]},
    "apf_wake": {"waiters": [1, 2], "wakers": [1, 2], "alloc_failures": [-1, 0, 1, 2],
                 "context": ["task", "hardirq"]},
    "fast_pf": {},
    "kvm_lock_shrink": {"vms": [1, 2], "vcpus": [0, 1]},
    "lost_update": {"cpus": [1, 2, 3], "loops": [1, 2]},
    "rcu_watch": {},
    "tdp_root_put": {"readers": [0, 1, 2], "writer": [0, 1], "fastzap": ["none", "worker"],
                     "putter_lock": ["write", "read"]},
    "zone_device": {"user": ["kvm", "kvm_exit", "mmap"], "vcpus": [1, 2]},
}


# settings a param value needs to be valid (apf_wait: host and user code hold no RCU reader)
# (idle always has a preempt count; apf_wake: every waker needs a waiter's token)
NEEDS = {("apf_wait", "context", "host"): {"rcu_nesting": 0}, ("apf_wait", "context", "user"): {"rcu_nesting": 0},
         ("apf_wait", "context", "idle"): {"preempt_count": 1}, ("apf_wake", "wakers", 2): {"waiters": 2}}


def _valid(name, variant, cfg, prm):
    try:
        kvmlab.load(name, variant, cfg, prm)
    except kvmlab.KvmlabError:
        return False
    return True


def _configs(cls):
    names = list(cls.configs)
    for bits in itertools.product([False, True], repeat=len(names)):
        yield dict(zip(names, bits))


def _fast_cases():
    out = []
    for name in kvmlab.models.names():
        cls = kvmlab.model(name)
        for v in cls.variants:
            for cfg in _configs(cls):  # every config, default params
                out.append((name, v.name, cfg, {}))
            if name == "tdp_root_put" and v.name not in ("v3", "dec_not_one"):
                continue  # its bigger configurations of the other variants are in the slow set
            for p, values in PARAM_VALUES[name].items():  # each param, default config
                for val in values:
                    if val != cls.params[p].default:
                        out.append((name, v.name, {}, {p: val, **NEEDS.get((name, p, val), {})}))
    assert all(_valid(*c) for c in out)
    return out


def _slow_cases():
    fast = {(n, v, tuple(sorted(c.items())), tuple(sorted(p.items()))) for n, v, c, p in _fast_cases()}
    out = []
    for name in kvmlab.models.names():
        cls = kvmlab.model(name)
        grid = PARAM_VALUES[name]
        for v in cls.variants:
            for cfg in _configs(cls):
                for vals in itertools.product(*grid.values()):
                    prm = dict(zip(grid, vals))
                    key = (name, v.name, tuple(sorted(cfg.items())), tuple(sorted(prm.items())))
                    if key not in fast and _valid(name, v.name, cfg, prm):
                        out.append((name, v.name, cfg, prm))
    return out


def _id(case):
    name, variant, cfg, prm = case
    bits = [f"{k}={'y' if v else 'n'}" for k, v in cfg.items()] + [f"{k}={v}" for k, v in prm.items()]
    return "-".join([name, variant, *bits])


FAST = _fast_cases()
if os.environ.get("KVMLAB_ORACLE") == "quick":
    # tools/mutants.py: every model and variant at its defaults and every config, plus the
    # cases with an endless loop, a choice-heavy and a three-thread configuration
    EXTRA = [("apf_wake", "recheck", {}, {"alloc_failures": -1}), ("apf_wake", "unlock_alloc", {}, {"waiters": 2}),
             ("lost_update", "plain", {}, {"cpus": 3}), ("tdp_root_put", "v3", {}, {"readers": 2})]
    FAST = [c for c in FAST if not c[3]] + EXTRA


def _check(sys, **kw):
    return Explorer(sys, max_states=MAX * 10, **kw).run()


def compare(name, variant, cfg, prm, *, too_big="fail"):
    sys = kvmlab.load(name, variant, cfg, prm)
    try:
        ref = oracle.explore(sys, max_states=MAX)
    except RuntimeError:
        if too_big == "skip":
            pytest.skip(f"more than {MAX} states")
        raise
    safety = ref.violated - {"terminates"}

    # without reduction: the same graph, the same counts, the same shortest lengths
    r0 = _check(sys, reduction=False, liveness=False)
    assert r0.complete
    assert (r0.states, r0.transitions, r0.depth) == (ref.states, ref.transitions, ref.depth)
    assert {v.property for v in r0.violations} == safety
    for v in r0.violations:
        assert len(v.schedule) == ref.shortest[v.property], v.property
        assert oracle.judge(sys, v) is None, (v.property, oracle.judge(sys, v), v.schedule)

    # reductions: the same verdicts, counterexamples that replay and are no shorter than shortest
    # (Lipton transactions here; the default check below, with progress, merges local steps only)
    def same_safety(r, red):
        assert r.complete and r.states <= ref.states
        assert {v.property for v in r.violations} - {"terminates"} == safety, red
        for v in r.violations:
            if v.kind != "lasso":
                assert len(v.schedule) >= ref.shortest[v.property], (red, v.property)
                assert oracle.judge(sys, v) is None, (red, v.property, oracle.judge(sys, v), v.schedule)

    r = _check(sys, reduction=True, liveness=False)
    assert r.reduction is True
    same_safety(r, True)

    # termination (checked by default): a fair cycle exists exactly when the explorer reports a
    # lasso, unreduced and with the reduction it allows itself for it
    for fairness in ("none", "weak", "strong"):
        for red in (False, True):
            r = _check(sys, reduction=red, fairness=fairness)
            assert r.complete and r.fairness == fairness
            if red and fairness == "none":
                assert r.reduction == "local"
                same_safety(r, "local")
            lasso = r.violation("terminates")
            expect = "terminates" in safety or ref.fair_cycle(fairness)
            assert (lasso is not None) == expect, (fairness, red)
            if lasso is not None and lasso.kind == "lasso":
                why = oracle.judge(sys, lasso, fairness)
                assert why is None, (fairness, red, why, lasso.schedule, lasso.loop_start)
            assert {v.property for v in r.violations} - {"terminates"} == safety
    return ref


@pytest.mark.parametrize("case", FAST, ids=[_id(c) for c in FAST])
def test_explorer_agrees_with_the_reference_search(case):
    compare(*case, too_big="skip")


def test_the_grid_covers_every_model_and_variant():
    seen = {(n, v) for n, v, _, _ in FAST}
    for name in kvmlab.models.names():
        cls = kvmlab.model(name)
        assert set(cls.params) == set(PARAM_VALUES[name]), name
        for v in cls.variants:
            assert (name, v.name) in seen


def test_the_reference_sees_violations_and_cycles():
    # the oracle itself must be able to fail: a known bug and a known endless loop
    ref = oracle.explore(kvmlab.load("lost_update", "plain"))
    assert ref.shortest == {"no_lost_update": 4}
    ref = oracle.explore(kvmlab.load("apf_wake", "recheck", params={"alloc_failures": -1}))
    assert ref.fair_cycle("none")
    assert not oracle.explore(kvmlab.load("lost_update", "atomic")).fair_cycle("none")


# -- two small models where a reduction that trusted its promises would hide a violation --------


class Publisher(Program):
    locals = {"q": None}

    @line("q = p;")
    def get_p(self, w, t):
        t.q = w["p"]

    @line("x = 1;")
    def set_x(self, w, t):
        w["x"] = 1

    @line("q->f = 1;", local=True)  # q is reachable from shared p: not private at all
    def set_f(self, w, t):
        w.obj(t.q)["f"] = 1

    @line("x = 2;")
    def again(self, w, t):
        w["x"] = 2


class Observer(Program):
    @line("WARN_ON(x == 1 && !p->f);")
    def look(self, w, t):
        if w["x"] == 1 and not w.obj(w["p"])["f"]:
            w.report("ordered", "WARNING: x == 1 but p->f == 0")


class PublishModel(Model):
    name = "publish"
    variants = [Variant("v", "a local step writes a published object")]
    properties = {"ordered": "p->f is set whenever x is"}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        w.declare("p", w.new_obj("p", f=0))
        w.declare("x", 0)
        w.spawn(Publisher("pub", cpu=0))
        w.spawn(Observer("obs", cpu=1))


class IrqOffTask(Program):
    @line("y = 1;")
    def set_y(self, w, t):
        w["y"] = 1

    @line("local_irq_disable();", local=True)  # a handler on this CPU sees it: not private
    def off(self, w, t):
        w.local_irq_disable()

    @line("x = 1;")
    def set_x(self, w, t):
        w["x"] = 1

    @line("local_irq_enable();")
    def on(self, w, t):
        w.local_irq_enable()


class SameCpuHandler(Program):
    kind = "hardirq"

    @line("WARN_ON(y == 1 && x == 0);")
    def look(self, w, t):
        if w["y"] == 1 and w["x"] == 0:
            w.report("ordered", "WARNING: the handler saw y == 1 and x == 0")


class IrqModel(Model):
    name = "irq_local"
    variants = [Variant("v", "a local local_irq_disable() with a handler on the same CPU")]
    properties = {"ordered": "the handler never sees y set without x"}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        w.declare("x", 0)
        w.declare("y", 0)
        w.spawn(IrqOffTask("task", cpu=0))
        w.spawn(SameCpuHandler("irq", cpu=0, label="IRQ0"))


class LateSleeper(Program):
    @line("cond = 1;")
    def set_cond(self, w, t):
        w["cond"] = 1

    @line("set_current_state(TASK_UNINTERRUPTIBLE);", local=True)  # a waker reads the task state
    def prepare(self, w, t):
        w.set_current_state("D")

    @line("schedule();")
    def sleep(self, w, t):
        w.schedule()


class CondWaker(Program):
    @line("while (!cond) cpu_relax();")
    def wait(self, w, t):
        if not w["cond"]:
            w.block("spinning until cond")

    @line("wake_up_process(sleeper);")
    def wake(self, w, t):
        w.wake_up_process(0)


class LateSleepModel(Model):
    name = "late_sleep"
    variants = [Variant("v", "a local set_current_state() after publishing the condition")]
    properties = {"no_deadlock": "nobody sleeps forever"}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        w.declare("cond", 0)
        w.spawn(LateSleeper("sleeper", cpu=0))
        w.spawn(CondWaker("waker", cpu=1))


HAND = {"published-object": (PublishModel, "ordered", 3), "same-cpu-irq": (IrqModel, "ordered", 2),
        "task-state": (LateSleepModel, "no_deadlock", 4)}


@pytest.mark.parametrize("case", HAND.values(), ids=list(HAND))
def test_a_broken_local_promise_hides_nothing(case):
    model_cls, prop, length = case
    ref = compare(model_cls, None, {}, {})  # every reduction agrees with the reference search
    assert ref.shortest == {prop: length}


SLOW = _slow_cases()


@pytest.mark.wide  # about 1,200 cases: run on demand (pytest -m wide), not in make test
@pytest.mark.parametrize("case", SLOW, ids=[_id(c) for c in SLOW])
def test_explorer_agrees_with_the_reference_search_wide(case):
    compare(*case, too_big="skip")
