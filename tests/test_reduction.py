"""Reduced and unreduced explorations agree on every verdict, for every model.

The reductions (``local`` steps merged; Lipton transactions on locks) must
not change which properties hold. This runs every registered model and
variant at its default params, with each config switch at its default and
flipped, with the reduction off, ``local`` and full.
"""

from __future__ import annotations

import pytest

import kvmlab
from kvmlab import models
from kvmlab.engine import Model, Program, Variant, line
from kvmlab.kernel import KernelWorld

CASES = []
for name in models.names():
    cls = models.get(name)
    configs = [{}]
    for k, c in cls.configs.items():
        configs.append({k: not c.default})
    for v in cls.variants:
        for cfg in configs:
            CASES.append((name, v.name, cfg))


def _verdicts(name, variant, cfg, reduction):
    r = kvmlab.check(name, variant, config=cfg, reduction=reduction, max_states=200_000, liveness=False)
    assert r.complete, f"{name}/{variant} {cfg}: incomplete at default params"
    return r, sorted(v.property for v in r.violations)


@pytest.mark.parametrize("name,variant,cfg", CASES, ids=[f"{n}-{v}-{c}" for n, v, c in CASES])
def test_reductions_agree(name, variant, cfg):
    r0, v0 = _verdicts(name, variant, cfg, False)
    r1, v1 = _verdicts(name, variant, cfg, "local")
    r2, v2 = _verdicts(name, variant, cfg, True)
    assert v0 == v1 == v2
    assert r2.states <= r1.states <= r0.states
    # every counterexample replays step by step without the reduction
    for r in (r1, r2):
        for v in r.violations:
            tr = kvmlab.replay(name, variant, schedule=v.schedule, config=cfg)
            assert len(tr.steps) == len(v.schedule)
    # a report's counterexample is exactly as short as without the reduction; an invariant's
    # may keep a local step it does not need when the invariant reads thread-local state
    for v in r2.violations:
        exact = len(r0.violation(v.property).schedule)
        if v.kind == "splat":
            assert len(v.schedule) == exact, v.property
        elif v.kind == "invariant":
            assert len(v.schedule) >= exact, v.property


def test_reductions_agree_on_bigger_apf_wake():
    for variant in ("original", "unlock_alloc", "recheck"):
        for p in ({"waiters": 2, "wakers": 1}, {"waiters": 2, "wakers": 2}):
            a = kvmlab.check("apf_wake", variant, params=p, reduction=False, liveness=False)
            b = kvmlab.check("apf_wake", variant, params=p, reduction=True, liveness=False)
            assert sorted(x.property for x in a.violations) == sorted(x.property for x in b.violations)
            assert b.states < a.states


# -- an invariant broken inside a Lipton transaction ----------------------------------------


class Txn(Program):
    @line("spin_lock(&l);")
    def lock(self, w, t):
        w.spin_lock("l")

    @line("x = 1;", under="l")
    def set(self, w, t):
        w["x"] = 1

    @line("x = 0;", under="l")
    def clear(self, w, t):
        w["x"] = 0

    @line("spin_unlock(&l);", under="l")
    def unlock(self, w, t):
        w.spin_unlock("l")


class TxnModel(Model):
    name = "txn"
    variants = [Variant("v", "lock; x = 1; x = 0; unlock")]
    world = KernelWorld
    properties = {"x_zero": "x is 0 in every state"}

    def setup(self, w, variant, config, params):
        w.spinlock("l")
        w.declare("x", 0)
        w.spawn(Txn("t", cpu=0))
        w.spawn(Txn("u", cpu=1))

    def invariants(self, w):
        if w["x"] != 0:
            yield "x_zero", f"x == {w['x']}"


@pytest.mark.parametrize("reduction", [False, "local", True])
def test_an_invariant_broken_mid_transaction_is_found(reduction):
    """The transaction lock..unlock is one step when reduced; the state x == 1 inside it still counts."""
    # (liveness=False: the termination check would limit the reduction to local steps)
    r = kvmlab.check(TxnModel, reduction=reduction, liveness=False)
    assert r.reduction == reduction
    v = r.violation("x_zero")
    assert v is not None and v.kind == "invariant"
    assert v.schedule == ["0", "0"]  # spin_lock, x = 1
    tr = kvmlab.replay(TxnModel, schedule=v.schedule)
    assert tr.steps[-1]["state"]["shared"]["x"] == "1"
    full = kvmlab.check(TxnModel, reduction=False, liveness=False)
    assert r.states <= full.states
