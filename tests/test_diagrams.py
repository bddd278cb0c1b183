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
    # every step of the counterexample is a node with its number and C line
    for st in v.trace:
        assert f"{st['n']}. {st['c']}" in text
    # b->lock passes from the waker's unlock to the waiter's lock, and back
    assert d.source.count('label="b->lock"') == 2
    page = d._repr_html_()
    assert page.count("<svg") == 1 and "kvmlab-diagram" in page


def test_timeline_marks_the_splat_step():
    r = kvmlab.check("apf_wake", "original")
    v = r.violation("no_sleep_in_atomic")
    d = diagrams.timeline(r)  # a Result draws its first counterexample
    assert "BUG: sleeping function called from invalid context" in d.svg
    assert "GFP_ATOMIC" in d.svg
    assert d.source.count("fillcolor=\"#ffd7d5\"") >= 2  # the splat step and the verdict
    assert len(v.schedule) == len([ln for ln in d.source.splitlines() if ln.startswith("c") and "label=\"" in ln
                                   and "shape=point" not in ln])


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
