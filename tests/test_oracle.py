"""The explorer against an independent reference search (tests/oracle.py).

For every model, variant and configuration below, the naive BFS and
``kvmlab.check`` must agree on which properties break (with every reduction
setting), on the state, transition and depth counts without reduction, and
on the length of each shortest counterexample; each counterexample the
explorer prints must replay to its violation. ``terminates`` is compared
under no, weak and strong fairness. The ``slow`` set widens the grid;
``KVMLAB_ORACLE=quick`` narrows it to the defaults (for tools/mutants.py).
"""

from __future__ import annotations

import itertools
import os

import oracle  # tests/oracle.py (pytest puts tests/ on sys.path)
import pytest

import kvmlab
from kvmlab.engine import Explorer

MAX = 20_000

# params varied one at a time around the defaults (fast set), and their grids (slow set)
PARAM_VALUES = {
    "apf_handshake": {"ready_first": [0, 1], "same_cpu": [0, 1], "irqs_off": [0, 1]},
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
    "zone_device": {"user": ["kvm", "kvm_exit", "mmap"]},
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
    for red in ("local", True):
        r = _check(sys, reduction=red, liveness=False)
        assert r.complete
        assert r.states <= ref.states
        assert {v.property for v in r.violations} == safety, red
        for v in r.violations:
            assert len(v.schedule) >= ref.shortest[v.property], (red, v.property)
            assert oracle.judge(sys, v) is None, (red, v.property, oracle.judge(sys, v), v.schedule)

    # termination: a fair cycle exists exactly when the explorer reports a lasso
    for fairness in ("none", "weak", "strong"):
        r = _check(sys, reduction=False, liveness=True, fairness=fairness)
        lasso = r.violation("terminates")
        expect = "terminates" in safety or ref.fair_cycle(fairness)
        assert (lasso is not None) == expect, fairness
        if lasso is not None and lasso.kind == "lasso":
            assert oracle.judge(sys, lasso, fairness) is None, (fairness, oracle.judge(sys, lasso, fairness))
        assert {v.property for v in r.violations} - {"terminates"} == safety - {"terminates"}
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


SLOW = _slow_cases()


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=[_id(c) for c in SLOW])
def test_explorer_agrees_with_the_reference_search_wide(case):
    compare(*case, too_big="skip")
