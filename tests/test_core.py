"""The explorer's speed-ups change nothing it finds.

The read-set memo (``memo="readset"``, the default) and the memo on the
whole global part (``memo="state"``) are compared with running every step
every time (``memo="off"``) on every model, variant and config switch, with
each reduction: the same states, transitions, depth, verdicts and
counterexamples. A model whose step reads state behind the recorder's back
shows that this comparison can fail.
"""

from __future__ import annotations

import pytest

from kvmlab import models
from kvmlab.engine import Explorer, KvmlabError, Model, Program, System, Variant, ccore, line

CASES = []
for name in models.names():
    cls = models.get(name)
    configs = [{}]
    for k, c in cls.configs.items():
        configs.append({k: not c.default})
    for v in cls.variants:
        for cfg in configs:
            CASES.append((name, v.name, cfg))


def _run(sys_args, memo, **kw):
    ex = Explorer(System(*sys_args), memo=memo, max_states=300_000, **kw)
    return ex, ex.run()


def _same(a, b):
    assert (a.complete, a.states, a.transitions, a.depth) == (b.complete, b.states, b.transitions, b.depth)
    assert [(v.property, v.kind, v.schedule, v.loop_start, v.message) for v in a.violations] == \
        [(v.property, v.kind, v.schedule, v.loop_start, v.message) for v in b.violations]


@pytest.mark.parametrize("name,variant,cfg", CASES, ids=[f"{n}-{v}-{c}" for n, v, c in CASES])
@pytest.mark.parametrize("how", [{}, {"liveness": False}, {"liveness": False, "reduction": False}],
                         ids=["default", "full", "none"])
def test_memos_agree_with_running_every_step(name, variant, cfg, how):
    args = (models.get(name), variant, cfg)
    ex0, off = _run(args, "off", **how)
    ex1, state = _run(args, "state", **how)
    ex2, readset = _run(args, "readset", **how)
    assert off.complete
    _same(off, state)
    _same(off, readset)
    assert ex2.stats["readset_conflicts"] == 0
    assert ex2.stats["step_runs"] <= ex1.stats["step_runs"] <= ex0.stats["step_runs"]


def test_memos_agree_on_bigger_apf_wake():
    cls = models.get("apf_wake")
    for variant in ("unlock_alloc", "recheck"):
        args = (cls, variant, {}, {"waiters": 2, "wakers": 2})
        ex0, off = _run(args, "off")
        ex1, state = _run(args, "state")
        ex2, readset = _run(args, "readset")
        _same(off, readset)
        # the read-set memo runs far fewer steps than the memo on the whole global part
        assert ex2.stats["step_runs"] * 2 < ex1.stats["step_runs"]


class Bump(Program):
    fn = "bump"

    @line("x = x + 1;")
    def bump(self, w, t):
        w["x"] = w["x"] + 1


class Peek(Program):
    fn = "peek"
    locals = {"seen": 0}

    @line("seen = READ_ONCE(x);")
    def peek(self, w, t):
        t.seen = dict.__getitem__(w.sh, "x")  # escapes the recorder

    @line("y = seen;")
    def copy(self, w, t):
        w["y"] = t.seen


class Sneaky(Model):
    """Reads a shared field without going through the World's recorder (a broken model)."""

    name = "sneaky"
    variants = [Variant("plain", "as written")]
    properties = {"x_small": "y stays below 2"}

    def setup(self, w, variant, config, params):
        w.declare("x", 0)
        w.declare("y", 0)
        w.spawn(Bump("a", cpu=0))
        w.spawn(Bump("b", cpu=1))
        w.spawn(Peek("c", cpu=2))

    def invariants(self, w):
        if w["y"] >= 2:
            yield "x_small", "y reached 2"


def test_an_escaping_read_is_caught_by_the_comparison():
    args = (Sneaky, None, {})
    _, off = _run(args, "off", liveness=False, reduction=False)
    _, readset = _run(args, "readset", liveness=False, reduction=False)
    assert off.violation("x_small") is not None
    with pytest.raises(AssertionError):
        _same(off, readset)


def test_bad_memo_is_a_clear_error():
    with pytest.raises(KvmlabError, match="memo"):
        Explorer(System(models.get("lost_update")), memo="fast")


needs_c = pytest.mark.skipif(not ccore.available(), reason="the compiled core (kvmlab._core) is not built")


def _engine_run(monkeypatch, args, pure, **kw):
    monkeypatch.setenv("KVMLAB_PURE", "1" if pure else "0")
    ex = Explorer(System(*args), max_states=300_000, **kw)
    r = ex.run()
    assert ex.engine == ("python" if pure else "c")
    return r


def _identical(a, b):
    _same(a, b)
    assert [(v.trace, v.splat) for v in a.violations] == [(v.trace, v.splat) for v in b.violations]
    assert a.to_json() | {"seconds": 0} == b.to_json() | {"seconds": 0}


@needs_c
@pytest.mark.parametrize("name,variant,cfg", CASES, ids=[f"{n}-{v}-{c}" for n, v, c in CASES])
@pytest.mark.parametrize("how", [{}, {"liveness": False}, {"liveness": False, "reduction": False},
                                 {"fairness": "strong"}, {"fairness": "weak"}],
                         ids=["default", "full", "none", "strong", "weak"])
def test_compiled_core_finds_what_python_finds(monkeypatch, name, variant, cfg, how):
    args = (models.get(name), variant, cfg)
    _identical(_engine_run(monkeypatch, args, True, **how), _engine_run(monkeypatch, args, False, **how))


@needs_c
def test_compiled_core_on_bigger_apf_wake(monkeypatch):
    for variant in ("original", "unlock_alloc", "recheck"):
        args = (models.get("apf_wake"), variant, {}, {"waiters": 2, "wakers": 2})
        _identical(_engine_run(monkeypatch, args, True), _engine_run(monkeypatch, args, False))


@needs_c
def test_compiled_core_stops_at_the_same_bound(monkeypatch):
    args = (models.get("apf_wake"), "recheck", {}, {"waiters": 2, "wakers": 2})
    a = None
    for pure in (True, False):
        monkeypatch.setenv("KVMLAB_PURE", "1" if pure else "0")
        r = Explorer(System(*args), max_states=5000).run()
        assert not r.complete and r.exit_code == 3 and r.stopped_by == "max states (5000)"
        a = a or r
        assert r.states == a.states


def test_pure_python_when_asked(monkeypatch):
    monkeypatch.setenv("KVMLAB_PURE", "1")
    ex = Explorer(System(models.get("lost_update")))
    ex.run()
    assert ex.engine == "python"


@needs_c
@pytest.mark.parametrize("name", models.names())
def test_compiled_core_value_tables_match_the_parts(monkeypatch, name):
    """C's value of every read-set location in every global part (copied from the part a delta
    made it from, then patched) equals the value computed from the part itself."""
    monkeypatch.setenv("KVMLAB_PURE", "0")
    monkeypatch.setattr(ccore, "CHECK_TABLES", True)
    cls = models.get(name)
    for v in cls.variants:
        Explorer(System(cls, v.name), max_states=300_000).run()
    Explorer(System(models.get("apf_wake"), "recheck", {}, {"waiters": 2, "wakers": 2})).run()


@needs_c
def test_the_value_table_check_can_fail(monkeypatch):
    class Off:  # the C library, but a row's values come out one off
        def __getattr__(self, k):
            f = getattr(real, k)
            if k != "kc_row_set":
                return f
            return lambda c, g, n, locs, vals: f(c, g, n, locs, [x + 1 for x in vals])

    real = ccore.lib
    monkeypatch.setenv("KVMLAB_PURE", "0")
    monkeypatch.setattr(ccore, "CHECK_TABLES", True)
    monkeypatch.setattr(ccore, "lib", Off())
    with pytest.raises(AssertionError, match="is wrong"):
        Explorer(System(models.get("apf_wake"), "recheck", {}, {"waiters": 2, "wakers": 2})).run()
