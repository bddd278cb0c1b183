"""The stepper's graph export, its HTML/widget representations, summaries and progress."""

from __future__ import annotations

import json
import re

import oracle  # tests/oracle.py
import pytest

import kvmlab
from kvmlab import KvmlabError
from kvmlab.api import make_system
from kvmlab.engine.graph import explore
from kvmlab.widgets import Progress, Stepper, compare, export_graph, summary
from kvmlab.widgets.stepper import reset_page

CASES = [
    ("lost_update", "plain", None, {}),
    ("lost_update", "atomic", None, {}),
    ("lost_update", "spinlock", None, {"cpus": 3}),
    ("lost_update", "spinlock", {"PREEMPT_RT": True}, {"cpus": 2, "loops": 2}),
    ("apf_wake", "original", None, {}),
    ("apf_wake", "unlock_alloc", None, {}),
    ("apf_wake", "recheck", None, {}),
    ("apf_wake", "unlock_alloc", {"PREEMPT_RT": False}, {"alloc_failures": 0}),
    ("rcu_watch", "eqs_reader", None, {}),  # a fatal KASAN report ends a run
    ("tdp_root_put", "dec_not_one", None, {}),
]
NO_GOAL = {"goal": ""}  # free play: no goal text, so nothing for the stepper to detect


def _edges(d, i):
    m = d["states"][i][2]
    return [m[k:k + 5] for k in range(0, len(m), 5)]


@pytest.mark.parametrize("model,variant,config,params", CASES)
def test_export_matches_an_independent_search(model, variant, config, params):
    """The exported graph is the reference BFS's graph (tests/oracle.py), edge for edge."""
    d = export_graph(model, variant, config=config, params=params)
    ref = oracle.explore(kvmlab.load(model, variant, config, params))
    S = d["strings"]
    # both number states in BFS discovery order: the same index is the same state
    assert len(d["states"]) == ref.states and d["transitions"] == ref.transitions
    for i in range(ref.states):
        assert [(e[3], e[0], S[e[1]]) for e in _edges(d, i)] == ref.succ[i], i
        for tid in range(len(d["threads"])):
            if ref.keys[i][2 + tid] is None:
                assert S[d["states"][i][0][3 * tid + 1]] == "done"
            elif i not in ref.fatal:
                assert S[d["states"][i][0][3 * tid + 1]] == ref.blocked.get(i, {}).get(tid, ""), (i, tid)
    assert set(d["fatal"]) == ref.fatal
    if model == "rcu_watch":
        assert ref.fatal  # the case that shows fatal states
        for i in ref.fatal:  # nobody moves on after a fatal report
            assert not _edges(d, i) and all(
                S[d["states"][i][0][3 * t + 1]] in ("done", "the run ended at the kernel's report")
                for t in range(len(d["threads"])))
    assert {int(i): {(S[b[0]], b[2]) for b in row} for i, row in d["bad"].items()} == ref.bad
    # every property is listed, those that hold too (the player shows them as holding)
    assert set(kvmlab.model(model).properties) <= set(d["properties"])
    assert ref.violated <= set(d["properties"])
    # one counterexample per broken property, as short as the shortest, ending where it breaks
    assert set(d["counterexamples"]) == ref.violated
    for prop, c in d["counterexamples"].items():
        assert len(c["schedule"]) == ref.shortest[prop], prop
        cur, splat = 0, None
        for mv in c["schedule"]:
            e = next(e for e in _edges(d, cur) if S[e[1]] == mv)
            cur, splat = e[3], e[4]
        if c["kind"] == "splat":
            assert splat >= 0 and prop in [S[x[0]] for x in d["splats"][splat]]
        else:
            assert c["kind"] in ("invariant", "stuck", "end")
            assert prop in [S[b[0]] for b in d["bad"][str(cur)]]


def test_export_lists_properties_that_hold():
    """A property no run breaks is still listed (the player shows it as holding)."""
    d = export_graph("apf_wake", "recheck")
    props = set(kvmlab.model("apf_wake").properties)
    assert props <= set(d["properties"])
    assert not d["counterexamples"] and not d["bad"]


def _state_after(d, schedule):
    S = d["strings"]
    cur = 0
    for mv in schedule:
        m = d["states"][cur][2]
        cur = next(m[k + 3] for k in range(0, len(m), 5) if S[m[k + 1]] == mv)
    return cur


def _status(d, state, tid):
    t = d["states"][state][0]
    return t[3 * tid], d["strings"][t[3 * tid + 1]]


def test_blocked_reasons():
    d = export_graph("apf_wake", "unlock_alloc", goal_property="no_lost_wakeup")
    s = _state_after(d, ["1"])  # the waker took b->lock
    assert _status(d, s, 0) == (0, "spinning on b->lock (held by CPU1)")
    assert _status(d, s, 1)[1] == ""  # can move
    cex = d["counterexamples"]["no_lost_wakeup"]["schedule"]
    end = _state_after(d, cex)
    pc, why = _status(d, end, 0)
    assert why == "asleep in schedule()"
    assert "schedule()" in d["strings"][d["threads"][0]["code"][pc][1][0]]
    assert _status(d, end, 1) == (-1, "done")
    # a step with two outcomes: kzalloc may fail
    s = _state_after(d, ["1", "1", "1", "1"])
    m = d["states"][s][2]
    moves = {d["strings"][m[k + 1]]: d["strings"][m[k + 2]] for k in range(0, len(m), 5) if m[k] == 1}
    assert moves == {"1": "kmalloc: ok", "1:fail": "kmalloc: fail"}


def test_thread_listing_and_shared_state():
    d = export_graph("lost_update", "plain", goal_property="no_lost_update")
    S = d["strings"]
    assert [t["label"] for t in d["threads"]] == ["CPU0", "CPU1"]
    code = d["threads"][0]["code"]
    assert [S[c[0]] for c in code] == ["worker", "worker"]
    assert "load" in S[code[0][1][0]] and code[0][2] == "load"
    assert d["shapes"] == [["counter", "lock"]]
    s = _state_after(d, ["0", "0"])
    sh = d["states"][s][1]
    names = d["shapes"][sh[0]]
    assert S[sh[1 + names.index("counter")]] == "1"
    assert d["goal"] == kvmlab.model("lost_update").goals["plain"]


def test_refuses_large_graphs():
    with pytest.raises(KvmlabError, match="more than 100 states"):
        export_graph("apf_wake", "unlock_alloc", max_states=100)
    with pytest.raises(KvmlabError, match="more than 100 states"):
        Stepper("apf_wake", "unlock_alloc", max_states=100)


def test_json_small():
    for args in (("lost_update", "plain"), ("apf_wake", "unlock_alloc")):
        s = Stepper(*args, **NO_GOAL)
        size = len(s.to_html(assets=True).encode())
        assert size < 150_000, (args, size)
    # the largest configuration the chapters are likely to step still fits a page, whole
    params = {"waiters": 2}
    big = Stepper("apf_wake", "unlock_alloc", params=params)
    page = big.to_html(assets=True)
    assert len(page.encode()) < 1_500_000
    data = json.loads(re.search(r'class="kvmlab-stepper-data">(.*?)</script>', page, re.S).group(1))
    ref = oracle.explore(kvmlab.load("apf_wake", "unlock_alloc", params=params))
    assert big.states == len(data["states"]) == ref.states
    assert data["transitions"] == ref.transitions


def test_html_assets_once_and_ids():
    reset_page()
    a = Stepper("lost_update", "plain", goal_property="no_lost_update")
    b = Stepper("apf_wake", "unlock_alloc", goal_property="no_lost_wakeup")
    c = Stepper("lost_update", "plain", params={"cpus": 3}, goal_property="no_lost_update")
    d = Stepper("lost_update", "plain", goal_property="no_lost_update")
    ha, hb = a._repr_html_(), b._repr_html_()
    assert 'id="kvmlab-stepper-js"' in ha and 'id="kvmlab-stepper-js"' not in hb
    assert "require" not in ha and "cdn" not in ha.lower() and "http" not in ha
    assert (a.id, b.id, c.id, d.id) == ("lost_update-plain", "apf_wake-unlock_alloc",
                                         "lost_update-plain-cpus3", "lost_update-plain-2")
    data = json.loads(re.search(r'class="kvmlab-stepper-data">(.*?)</script>', hb, re.S).group(1))
    assert data["goal_property"] == "no_lost_wakeup" and data["id"] == "apf_wake-unlock_alloc"
    with pytest.raises(KvmlabError):
        Stepper("lost_update", "plain", id="bad id!", **NO_GOAL)
    with pytest.raises(KvmlabError, match="goal_property"):
        Stepper("lost_update", "plain", goal_property="no_such_property")


def test_model_text_cannot_break_out_of_the_page(evil_model):
    reset_page()
    s = Stepper(evil_model, title="</script><script>alert(2)</script>")
    h = s.to_html(assets=False)
    body = h.split('class="kvmlab-stepper-data">', 1)[1].split("</script>", 1)[0]
    assert "<script" not in body and "<!--" not in body
    data = json.loads(body)
    assert data["title"].startswith("</script>")  # the text survives, escaped for the script block
    assert any("</script><img" in x for x in data["strings"])
    js = s.to_html(assets=True)
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js


def test_mimebundle_static_and_live(monkeypatch):
    import IPython

    from kvmlab.widgets import stepper as mod

    class FakeShell:
        kernel = object()  # what a live IPython kernel has

    s = Stepper("lost_update", "plain")
    widget_mime = "application/vnd.jupyter.widget-view+json"
    monkeypatch.delenv("KVMLAB_LIVE", raising=False)
    # no IPython kernel here: static HTML, the player marked as not live
    monkeypatch.delenv("KVMLAB_STATIC", raising=False)
    b = s._repr_mimebundle_()
    assert set(b) == {"text/plain", "text/html"} and 'data-kvmlab-live="1"' not in b["text/html"]
    # in a live kernel: the player inlined and marked live, still no widget by default
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell())
    b = s._repr_mimebundle_()
    assert set(b) == {"text/plain", "text/html"}
    assert 'data-kvmlab-live="1"' in b["text/html"] and 'id="kvmlab-stepper-js"' in b["text/html"]
    # building the static book wins over a kernel
    monkeypatch.setenv("KVMLAB_STATIC", "1")
    b = s._repr_mimebundle_()
    assert 'data-kvmlab-live="1"' not in b["text/html"] and widget_mime not in b
    monkeypatch.delenv("KVMLAB_STATIC")
    # KVMLAB_LIVE=widget: the anywidget view, with the HTML player as the fallback
    monkeypatch.setenv("KVMLAB_LIVE", "widget")
    assert mod.live_face() == "widget"
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return
    b = s._repr_mimebundle_()
    assert widget_mime in b and 'data-kvmlab-live="1"' in b["text/html"]


def test_anywidget_front_end():
    pytest.importorskip("anywidget")
    s = Stepper("lost_update", "plain", **NO_GOAL)
    w = s.widget()
    assert json.loads(w.graph)["states"] == s.data["states"]
    assert "export default" in w._esm and "KvmlabStepper" in w._esm
    assert "kvmlab-stepper" in w._css


def test_sphinx_extension_sets_static_mode(monkeypatch):
    from kvmlab.widgets import sphinx as ext

    monkeypatch.delenv("KVMLAB_STATIC", raising=False)

    class App:
        def __init__(self):
            self.hooks = []

        def connect(self, ev, fn, priority=500):
            self.hooks.append((ev, fn))

        def add_config_value(self, name, default, rebuild):
            self.config_values = {name: default}

    class Cfg:
        nb_mime_priority_overrides = [("html", "image/png", 5)]

    app = App()
    ext.setup(app)
    import os
    assert os.environ["KVMLAB_STATIC"] == "1"
    cfg = Cfg()
    app.hooks[0][1](app, cfg)
    assert ("html", "text/html", 0) in cfg.nb_mime_priority_overrides
    assert ("html", "image/png", 5) in cfg.nb_mime_priority_overrides
    monkeypatch.delenv("KVMLAB_STATIC")


def test_summary_and_compare():
    r1 = kvmlab.check("apf_wake", "unlock_alloc")
    r2 = kvmlab.check("apf_wake", "recheck")
    s = summary(r1)
    text = str(s)
    assert "no_lost_wakeup: violated" in text and f"{r1.states} states" in text
    assert "no_sleep_in_atomic: holds" in text
    h = s._repr_html_()
    assert "<svg" in h and "no_duplicate_token" in h and "violated" in h
    c = compare({"unlock_alloc": r1, "recheck": r2})
    assert "unlock_alloc" in str(c) and "holds" in str(c) and "violated" in str(c)
    rows = re.findall(r"<tr>(.*?)</tr>", c._repr_html_(), re.S)
    assert len(rows) == 1 + len(r1.properties) + 4  # header, one per property, states/transitions/seconds/search
    for row in rows[1:1 + len(r1.properties)]:
        prop = re.search(r"<code>(.*?)</code>", row).group(1)
        cells = re.findall(r'class="kv-(\w+)"', row)
        assert cells == ["holds" if r.holds(prop) else "violated" for r in (r1, r2)], prop
    assert f"<td>{r1.states:,}</td><td>{r2.states:,}</td>" in rows[-4]
    inc = kvmlab.check("apf_wake", "recheck", max_states=50)
    assert "INCOMPLETE" in str(summary(inc)) and "unknown" in str(summary(inc))


def test_progress():
    import io
    buf = io.StringIO()
    p = Progress(every=0.0, stream=buf)
    seen = []

    def spy(states, transitions):
        seen.append((states, transitions))
        p(states, transitions)

    r = kvmlab.check("apf_wake", "unlock_alloc", params={"waiters": 2, "wakers": 2}, progress=spy,
                     reduction=False)
    p.done()
    assert p.calls == len(seen) >= 2
    # counts only grow, never past the final ones, and each call printed one line over the last
    assert seen == sorted(seen) and seen[-1][0] <= r.states and seen[-1][1] <= r.transitions
    lines = buf.getvalue().split("\r")[1:]
    assert len(lines) == len(seen)
    assert lines[-1].startswith(f"exploring: {seen[-1][0]:,} states, {seen[-1][1]:,} transitions, ")
    assert buf.getvalue().endswith("\n")
    quiet = io.StringIO()
    q = Progress(every=3600, stream=quiet)
    q.last = q.t0  # nothing printed within the hour
    q(1, 1)
    assert q.calls == 1 and quiet.getvalue() == ""


def test_make_system_accepts_classes_and_variants():
    cls = kvmlab.model("lost_update")
    v = cls.variant("atomic").derive("mine", "copy")
    sys = make_system(cls, v)
    assert make_system(sys) is sys
    g = explore(sys)
    assert g.keys == oracle.explore(sys).keys  # the same states, in the same BFS order
    assert make_system("lost_update", "atomic").variant.name == "atomic"


MYST_PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# Toy

```{code-cell} ipython3
from kvmlab.widgets import Stepper, summary
import kvmlab
from kvmlab import diagrams
Stepper("lost_update", "plain", goal_property="no_lost_update")
```

```{code-cell} ipython3
Stepper("apf_wake", "unlock_alloc", goal_property="no_lost_wakeup")
```

```{code-cell} ipython3
summary(kvmlab.check("lost_update", "plain"))
```

```{code-cell} ipython3
diagrams.state_graph("lost_update", "plain")
```
"""


@pytest.mark.slow
def test_static_book_build(tmp_path):
    """A toy Sphinx + myst-nb build: steppers come out as self-contained HTML, no widget manager."""
    pytest.importorskip("myst_nb")
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "extensions = ['myst_nb', 'kvmlab.widgets.sphinx']\n"
        "nb_execution_mode = 'force'\nnb_execution_raise_on_error = True\n"
        "nb_ipywidgets_js = {}\nhtml_theme = 'basic'\n")
    (src / "index.md").write_text(MYST_PAGE)
    out = tmp_path / "html"
    p = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(out)],
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    page = (out / "index.html").read_text()
    assert page.count('id="kvmlab-stepper-js"') == 1
    assert page.count("data-kvmlab-stepper=") == 2
    assert "widget-state" not in page and "widget-view" not in page
    assert "require" not in page.lower().replace("required", "")
    for bad in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert bad not in page
    assert page.count("<svg") >= 2  # the summary's timeline and the state graph, inline
    assert len(page.encode()) < 1_500_000


# -- data format 2: goals the player can detect, par, loops, C indentation -------------------------

def test_format_version_and_goal_fields():
    d = export_graph("apf_wake", "unlock_alloc", goal_property="no_lost_wakeup")
    assert d["v"] == 2
    assert d["goal_kind"] == "stuck" and d["fairness"] in ("none", "weak", "strong")
    assert d["par"]["steps"] == len(d["counterexamples"]["no_lost_wakeup"]["schedule"])
    fixed = export_graph("apf_wake", "recheck", goal_property="no_lost_wakeup")
    assert fixed["goal_kind"] is None and fixed["par"] is None and fixed["counterexamples"] == {}


def test_a_goal_without_a_property_is_refused_when_something_breaks():
    with pytest.raises(KvmlabError, match="names no goal_property.*no_lost_update"):
        export_graph("lost_update", "plain", goal="Lose an update.")
    # the model's own goal text for the variant is left out when it names no property (free play)
    d = Stepper("lost_update", "plain").data
    assert d["goal"] is None and d["goal_property"] is None
    assert export_graph("lost_update", "plain", goal_property="no_lost_update")["goal"] == \
        kvmlab.model("lost_update").goals["plain"]
    # nothing breaks: a goal text alone is fine (the player says no schedule breaks anything)
    d = export_graph("apf_wake", "recheck", goal="Try to leave the waiter asleep.")
    assert d["goal"] and d["goal_property"] is None
    # free play (no goal) is fine too
    assert export_graph("lost_update", "plain", goal="")["goal"] == ""


def _all_goal_paths(d, prop):
    """Every schedule of an acyclic graph that breaks prop (brute force, for small graphs)."""
    S = d["strings"]
    out = []

    def walk(s, tids):
        m = d["states"][s][2]
        bad_here = any(S[b[0]] == prop for b in d["bad"].get(str(s), []))
        if bad_here:
            out.append(tids)
            return
        for k in range(0, len(m), 5):
            tid, target, sp = m[k], m[k + 3], m[k + 4]
            if sp >= 0 and any(S[x[0]] == prop for x in d["splats"][sp]):
                out.append(tids + [tid])
            else:
                walk(target, tids + [tid])

    walk(0, [])
    return out


@pytest.mark.parametrize("model,variant,params,prop", [
    ("lost_update", "plain", {}, "no_lost_update"),
    ("lost_update", "plain", {"cpus": 3}, "no_lost_update"),
    ("apf_wake", "original", {}, "no_sleep_in_atomic"),
])
def test_par_is_the_fewest_switches_of_any_solution(model, variant, params, prop):
    d = export_graph(model, variant, params=params, goal_property=prop)
    paths = _all_goal_paths(d, prop)
    assert paths
    best = min(sum(1 for a, b in zip(p, p[1:]) if a != b) for p in paths)
    assert d["par"]["switches"] == best
    assert d["par"]["steps"] == min(len(p) for p in paths)


def test_terminates_goal_marks_the_fair_loops():
    d = export_graph("tdp_root_put", "no_invalid_check", params={"readers": 0, "writer": 0},
                     goal_property="terminates")
    c = d["counterexamples"]["terminates"]
    assert d["goal_kind"] == "lasso" and c["loop_start"] is not None
    assert _state_after(d, c["schedule"][:c["loop_start"]]) in d["loops"]
    assert _state_after(d, c["schedule"]) == _state_after(d, c["schedule"][:c["loop_start"]])


class _St:
    def __init__(self, fn, *c):
        self.fn, self.c = fn, list(c)


def test_c_indents_follow_the_graph_and_the_braces():
    from kvmlab.export import c_indents
    steps = [_St("f", "raw_spin_lock(&b->lock);"), _St("f", "if (e) {"), _St("f", "hlist_del(&e->link);"),
             _St("f", "return false;"), _St("f", "n->token = token;"),
             _St("f", "if (unlikely(x))"), _St("f", "panic(\"no\");"), _St("f", "done();"),
             _St("g", "if ((a ||", "    b) &&"), _St("g", "    c) {"), _St("g", "x();")]
    # the explored runs jump from "if (e) {" (step 1) to step 4 and from "if (unlikely(x))" over panic
    ind = c_indents(steps, {1: {2, 4}, 5: {6, 7}})
    assert ind == [[0], [0], [1], [1], [0], [0], [1], [0], [0, 0], [0], [1]]
    # with no jump seen, a brace block ends after its return; an unbraced if at a step's end indents nothing
    ind = c_indents(steps, {})
    assert ind[2:5] == [[1], [1], [0]] and ind[6] == [0]


def test_exported_listings_never_indent_a_line_below_zero_and_keep_step_shape():
    for m, v, p in [("apf_wake", "unlock_alloc", {}), ("fast_pf", "clear_plain", {}),
                    ("tdp_root_put", "v3", {"readers": 1, "writer": 1})]:
        d = export_graph(m, v, params=p, goal="")
        for th in d["threads"]:
            for st in th["code"]:
                assert len(st[3]) == len(st[1]) and min(st[3]) >= 0


def test_a_goal_of_several_properties():
    d = export_graph("apf_wake", "unlock_alloc", goal="Break it.",
                     goal_property=["no_lost_wakeup", "no_duplicate_token"])
    cex = d["counterexamples"]
    assert d["goal_property"] == "no_lost_wakeup"
    assert d["goal_properties"] == ["no_lost_wakeup", "no_duplicate_token"]
    assert d["par"]["steps"] == min(len(cex[p]["schedule"]) for p in d["goal_properties"])
    one = [export_graph("apf_wake", "unlock_alloc", goal_property=p)["par"]["switches"]
           for p in d["goal_properties"]]
    assert d["par"]["switches"] == min(one)
    with pytest.raises(KvmlabError, match="no_such"):
        export_graph("apf_wake", "unlock_alloc", goal_property=["no_lost_wakeup", "no_such"])
    with pytest.raises(KvmlabError, match="at least one"):
        export_graph("apf_wake", "unlock_alloc", goal_property=[])
