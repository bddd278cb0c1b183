"""Timeline, state graph and lock nesting diagrams (Graphviz SVG)."""

from __future__ import annotations

import html
import re
import shutil

import pytest

import kvmlab
from kvmlab import KvmlabError, diagrams
from kvmlab.engine import Trace

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")


def _text(svg: str) -> str:
    """The SVG's text content, unescaped (Graphviz writes '-' as &#45;)."""
    return html.unescape(" | ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg)))


def _boxes(d) -> dict[str, str]:
    """Node name -> its label with wrapped lines joined by a space (from the dot source)."""
    out = {}
    for m in re.finditer(r'^(\w+) \[label="((?:[^"\\]|\\.)*)"', d.source, re.M):
        out[m.group(1)] = re.sub(r"\\[nl]", " ", m.group(2)).replace('\\"', '"').strip()
    return out


def _no_external(svg: str) -> None:
    assert svg.lstrip().startswith("<svg")
    assert "url(" not in svg and "@import" not in svg and "@font-face" not in svg
    assert "<!DOCTYPE" not in svg and "<image" not in svg
    for m in re.finditer(r'(?:href|src)="([^"]*)"', svg):
        assert not m.group(1).startswith(("http", "//")), m.group(0)
    rest = re.sub(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"', "", svg)
    assert "http" not in rest


def test_timeline_columns_lines_and_handoffs():
    r = kvmlab.check("apf_wake", "unlock_alloc")
    v = r.violation("no_lost_wakeup")
    d = diagrams.timeline(v, r)
    svg = d.svg
    _no_external(svg)
    assert "CPU0" in svg and "CPU1" in svg
    assert "waiter, token 1" in svg and "waker, token 1" in svg
    text = _text(svg)
    assert "raw_spin_lock(&b->lock);" in text
    assert "n = kzalloc(sizeof(*n), GFP_KERNEL);" in text
    assert "no_lost_wakeup" in text and "asleep in schedule()" in text
    # every step of the counterexample is a node with its number and C line (wrapped at spaces only)
    boxes = _boxes(d)
    for r, st in enumerate(v.trace, start=1):
        box = boxes[f"c{r}_{st['thread']}"]
        assert " ".join(box.split()).startswith(" ".join(f"{st['n']}. {st['c']}".split())), (box, st["c"])
        assert f'id="step{r}", class="kvs_step"' in d.source
    # b->lock passes from the waker's unlock to the waiter's lock, and back
    assert d.source.count('label="b->lock"') == 2
    page = d._repr_html_()
    assert page.count("<svg") == 1 and "kvmlab-diagram" in page


def test_timeline_marks_the_splat_step():
    r = kvmlab.check("apf_wake", "original")
    v = r.violation("no_sleep_in_atomic")
    d = diagrams.timeline(r)  # a Result draws its first counterexample
    assert "BUG: sleeping function called from invalid context" in " ".join(_boxes(d).values())
    assert "GFP_ATOMIC" in d.svg
    assert d.source.count("fillcolor=\"#ffd7d5\"") >= 2  # the splat step and the verdict
    assert len(v.schedule) == d.source.count('class="kvs_step"')


def test_timeline_wakeup_arrow_and_other_inputs():
    sys = kvmlab.load("apf_wake", "recheck")
    tr = Trace(sys)
    # the waiter queues itself and sleeps; then the waker finds it and wakes it
    for tid in (0, 1, 0):
        while tr.can_move(tid) is None:
            tr.step(tid)
    assert sys.all_done(tr.key)
    d = diagrams.timeline(tr)
    assert 'label="wake-up"' in d.source
    assert "swake_up_one(&n->wq);" in _text(d.svg)
    # a bare schedule with a system, and a violation without one (plain columns)
    d2 = diagrams.timeline(["0", "1", "0", "1"], kvmlab.load("lost_update", "plain"))
    assert "CPU0" in d2.svg and "counter++;" in d2.svg
    v = kvmlab.check("lost_update", "plain").violations[0]
    d3 = diagrams.timeline(v)
    assert "no_lost_update" in d3.svg and "CPU1" in d3.svg
    with pytest.raises(KvmlabError):
        diagrams.timeline(kvmlab.check("lost_update", "atomic"))


def test_state_graph_marks_bad_states_and_path():
    d = diagrams.state_graph("lost_update", "plain")
    r = kvmlab.check("lost_update", "plain", reduction=False)
    src = d.source
    nodes = [ln for ln in src.splitlines() if re.match(r"s\d+ \[", ln)]
    assert len(nodes) == r.states
    assert sum("doubleoctagon" in ln for ln in nodes) == 1
    red_edges = [ln for ln in src.splitlines() if "->" in ln and "#cf222e" in ln]
    assert len(red_edges) == len(r.violations[0].schedule)
    _no_external(d.svg)
    with pytest.raises(KvmlabError, match="more than 100 states"):
        diagrams.state_graph("apf_wake", "unlock_alloc", max_states=100)
    with pytest.raises(KvmlabError):
        diagrams.state_graph("lost_update", "atomic", prop="no_lost_update")


def test_lock_nesting():
    d = diagrams.lock_nesting("apf_wake", "original")  # PREEMPT_RT=y by default
    assert "raw_spinlock_t (spins)" in d.svg
    assert "may sleep" in d.svg and "GFP_ATOMIC" in d.svg
    d2 = diagrams.lock_nesting("apf_wake", "recheck")
    assert "may sleep" not in d2.source
    assert "no lock is taken while another is held" in d2.svg
    d3 = diagrams.lock_nesting("lost_update", "spinlock", config={"PREEMPT_RT": True})
    assert "spinlock_t (sleeps)" in d3.svg
    _no_external(d.svg)


def test_timeline_with_the_wrong_system_says_so():
    v = kvmlab.check("apf_wake", "unlock_alloc").violation("no_lost_wakeup")
    with pytest.raises(KvmlabError, match="does not replay"):
        diagrams.timeline(v, kvmlab.load("lost_update", "plain"))


# -- shared state lane, links to the stepper, readable size ------------------------------------------

def test_timeline_shared_state_lane_shows_values_where_they_change():
    sys = kvmlab.load("lost_update", "plain")
    v = kvmlab.check("lost_update", "plain").violation("no_lost_update")
    d = diagrams.timeline(v, sys)
    boxes = _boxes(d)
    assert "counter = 0" in boxes["hs"]  # the initial value in the lane's header
    trace = diagrams._replay(sys, v.schedule)
    before = {k: str(x) for k, x in sys.model.describe_state(sys.load(sys.initial)).items()}
    for r, st in enumerate(trace, start=1):
        after = st["state"]["shared"]
        changed = {k: x for k, x in after.items() if before.get(k) != x}
        if changed:
            for k, x in changed.items():
                assert f"{k} = {x}" in boxes[f"v{r}"], (r, boxes.get(f"v{r}"))
        else:
            assert f"v{r}" not in boxes or not boxes[f"v{r}"], r
        before = after
    # the first store makes counter 1; the second store writes 1 again: no change in that row
    assert any("counter = 1" in boxes.get(f"v{r}", "") for r in range(1, len(trace) + 1))


def test_svg_has_no_graphviz_ids_as_tooltips_and_keeps_its_natural_size():
    d = diagrams.timeline(kvmlab.check("apf_wake", "unlock_alloc").violation("no_lost_wakeup"),
                          kvmlab.load("apf_wake", "unlock_alloc"))
    svg = d.svg
    assert "<title>" not in svg and "%3" not in svg
    assert re.search(r'xlink:title="step 1, CPU\d: \w+\(\)"', svg)
    assert svg.startswith('<svg class="kvmlab-svg" width="')
    sizes = {float(x) for x in re.findall(r'font-size="([\d.]+)"', svg)}
    assert min(sizes) >= 9.0  # pt: 12 px and more at the natural size
    page = d._repr_html_()
    assert ".kvmlab-diagram svg{max-width:none" in page and "svg{max-width:100%" not in page
    assert "filter:invert" not in page  # dark mode comes from the palette, not an inverted picture


def test_timeline_and_state_graph_link_to_the_stepper_of_the_same_configuration():
    import json

    from kvmlab.widgets import Stepper
    sys = kvmlab.load("apf_wake", "unlock_alloc", params={"waiters": 1})
    r = kvmlab.check("apf_wake", "unlock_alloc", params={"waiters": 1})
    v = r.violation("no_lost_wakeup")
    d = diagrams.timeline(v, sys)
    meta = json.loads(d.link)
    st = Stepper("apf_wake", "unlock_alloc", params={"waiters": 1}).data
    assert meta["kind"] == "timeline"
    assert meta["system"] == {"model": st["model"], "variant": st["variant"], "config": st["config"],
                              "params": st["params"]}
    assert meta["moves"] == [str(m) for m in v.schedule]
    page = d._repr_html_()
    assert "data-kvmlab-link=" in page and "KvmlabDiagrams" in page
    g = diagrams.state_graph("lost_update", "plain")
    gm = json.loads(g.link)
    st0 = Stepper("lost_update", "plain").data
    assert gm["kind"] == "states" and gm["system"]["model"] == st0["model"] == "lost_update"
    # the state graph numbers states as the stepper's graph does (click -> shortest path to that state)
    assert g.source.count('class="kvs_state"') == len(st0["states"])
    # without a system there is nothing to link
    assert diagrams.timeline(v).link is None
    assert "data-kvmlab-link" not in diagrams.timeline(v)._repr_html_()


def test_every_colour_the_diagrams_draw_follows_the_theme():
    from kvmlab.diagrams import theme
    from kvmlab.models import zone_device as zd
    sys = kvmlab.load("zone_device", "refcounted")
    svgs = [diagrams.timeline(kvmlab.check("apf_wake", "original")).svg,
            diagrams.timeline(kvmlab.check("apf_wake", "unlock_alloc").violation("no_lost_wakeup"),
                              kvmlab.load("apf_wake", "unlock_alloc")).svg,
            diagrams.state_graph("lost_update", "plain").svg,
            diagrams.lock_nesting("apf_wake", "original").svg,
            diagrams.Diagram(zd.references_dot(sys.load(sys.initial), "before")).svg]
    for svg in svgs:
        for attr, colour in re.findall(r'\b(fill|stroke)="([^"]+)"', svg):
            if colour in ("none", "transparent"):
                continue
            assert colour.lower() in theme.SVG_COLOURS, f"{attr}={colour} has no dark-mode mapping"


def _contrast(a: str, b: str) -> float:
    def lum(h):
        rgb = [int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_palette_text_contrast_at_least_4_5(mode):
    from kvmlab.diagrams import theme
    p = theme.LIGHT if mode == "light" else theme.DARK
    page = "#ffffff" if mode == "light" else "#14181e"  # pydata's page background
    for bg in (page, p["surface"], p["head-bg"], p["code-bg"]):
        for fg in ("fg", "muted", "bad", "ok", "info", "warn"):
            assert _contrast(p[fg], bg) >= 4.5, (mode, fg, p[fg], bg)
    for bg in ("bad-bg", "ok-bg", "info-bg", "warn-bg"):
        assert _contrast(p["fg"], p[bg]) >= 4.5, (mode, bg)


def test_theme_block_in_the_book_stylesheet_is_current(tmp_path, capsys):
    from pathlib import Path

    from kvmlab.diagrams import theme
    css = Path(__file__).resolve().parents[1] / "book" / "_static" / "kvmbook.css"
    assert theme.main(["--check", str(css)]) == 0, "run: python -m kvmlab.diagrams.theme --write " + str(css)
    stale = tmp_path / "x.css"
    stale.write_text("body{}\n")
    assert theme.main(["--check", str(stale)]) == 1
    assert theme.main(["--write", str(stale)]) == 0 and theme.main(["--check", str(stale)]) == 0
    assert stale.read_text().startswith("body{}")
    assert theme.main(["--bogus"]) == 2
    assert theme.main(["--check", str(tmp_path / "missing.css")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_outputs_carry_the_theme_only_outside_the_static_book(monkeypatch):
    from kvmlab.widgets import summary
    r = kvmlab.check("lost_update", "plain")
    monkeypatch.setenv("KVMLAB_STATIC", "1")
    assert "<style" not in summary(r, timeline=False)._repr_html_()
    monkeypatch.delenv("KVMLAB_STATIC")
    page = summary(r)._repr_html_()
    assert page.count('<style class="kvmlab-theme">') == 2  # the table's and the timeline's
    assert 'class="kvmlab-out kvmlab-summary"' in page and "--kv-bad:" in page


def test_storyboard_one_scale():
    from kvmlab.models import zone_device as zd
    sys = kvmlab.load("zone_device", "refcounted")
    w = sys.load(sys.initial)
    sb = diagrams.storyboard([("before", zd.references_dot(w)), ("again", diagrams.Diagram(zd.references_dot(w)))])
    page = sb._repr_html_()
    assert page.count("<figure") == 2 and "svg{max-width:none" in page
    sizes = re.findall(r'<svg class="kvmlab-svg" width="([\d.]+)pt"', page)
    assert len(sizes) == 2 and sizes[0] == sizes[1]
    with pytest.raises(KvmlabError, match="pairs"):
        diagrams.storyboard(["nope"])
    with pytest.raises(KvmlabError, match="not int"):
        diagrams.storyboard([("x", 3)])
