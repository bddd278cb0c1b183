"""The puzzle index: a toy book whose index lists its steppers, and follows a changed page."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from kvmlab.widgets.sphinx import difficulty, index_html

HEAD = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

PAGE_A = HEAD + """# Chapter A

## Lose an update

```{code-cell} ipython3
from kvmlab.widgets import Stepper
Stepper("lost_update", "plain", goal="Lose an update.", goal_property="no_lost_update")
```

## Try the atomic one

```{code-cell} ipython3
Stepper("lost_update", "atomic", goal="Lose an update.", goal_property="no_lost_update")
```
"""

PAGE_B = HEAD + """# Chapter B

## Sleep forever

```{code-cell} ipython3
from kvmlab.widgets import Stepper
Stepper("apf_wake", "unlock_alloc", goal="Leave the waiter asleep.", goal_property="no_lost_wakeup")
```
"""

PAGE_B2 = HEAD + """# Chapter B

No stepper here any more.

```{code-cell} ipython3
1 + 1
```
"""


def test_hidden_steppers_are_not_listed():
    from docutils import nodes

    from kvmlab.widgets.sphinx import puzzles_in
    sec = nodes.section()
    sec += nodes.title(text="S")
    one = '<div class="kvmlab-stepper" data-kvmlab-puzzle="{&quot;id&quot;:&quot;a&quot;}"><br></div>'
    two = '<div class="answer" hidden><p>x</p><div data-kvmlab-puzzle="{&quot;id&quot;:&quot;b&quot;}"></div></div>'
    esc = '<script>var s = "<div data-kvmlab-puzzle=\\"{}\\">";</script>'
    sec += nodes.raw("", one + two + esc + one.replace("&quot;a&quot;", "&quot;c&quot;"), format="html")
    doc = nodes.document(None, None)
    doc += sec
    assert [(p["id"], p["section"]) for p in puzzles_in(doc)] == [("a", "S"), ("c", "S")]


def test_difficulty_labels():
    assert difficulty({"par": {"steps": 4, "switches": 2}}) == ("easy: 2 switches, 4 steps", 2)
    assert difficulty({"par": None, "goal_property": "x", "states": 9})[0].startswith("unbreakable: 9 states")
    assert difficulty({"par": None, "goal_property": None, "goal": None, "states": 9}) == ("free play", 99)
    assert difficulty({"par": None, "goal_property": None, "goal": "Watch it.", "breaks": [], "states": 9})[0] \
        == "walk-through: nothing breaks in 9 states"
    h = index_html([("a", "Chapter <A>", [{"id": "s1", "title": "t<", "goal": "g", "goal_property": "p",
                                           "par": {"steps": 3, "switches": 1}, "states": 5, "section": "S"}])],
                   lambda doc: f"{doc}.html")
    assert 'href="a.html#kvmlab-stepper-s1"' in h and "Chapter &lt;A&gt;" in h and "t&lt;" in h
    assert 'data-solved-key="kvmlab-solved:a:s1"' in h and "warm-up" in h


@pytest.mark.slow
def test_index_lists_every_stepper_and_follows_changes(tmp_path):
    pytest.importorskip("myst_nb")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "extensions = ['myst_nb', 'kvmlab.widgets.sphinx']\n"
        "nb_execution_mode = 'cache'\nnb_execution_raise_on_error = True\n"
        f"nb_execution_cache_path = {str(tmp_path / 'cache')!r}\n"
        "nb_ipywidgets_js = {}\nhtml_theme = 'basic'\nkvmlab_puzzle_pages = ['puzzles']\n")
    (src / "index.md").write_text("# Toy\n\n```{toctree}\na\nb\npuzzles\n```\n")
    (src / "a.md").write_text(PAGE_A)
    (src / "b.md").write_text(PAGE_B)
    (src / "puzzles.md").write_text('# Puzzles\n\n<div class="kvmlab-puzzles"><p>made at build time</p></div>\n')
    out = tmp_path / "html"

    def build():
        p = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(out)],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        return (out / "puzzles.html").read_text()

    page = build()
    assert 'data-count="3"' in page
    assert 'href="a.html#kvmlab-stepper-lost_update-plain"' in page
    assert 'href="b.html#kvmlab-stepper-apf_wake-unlock_alloc"' in page
    assert re.search(r'kp-section">Lose an update</div>', page), "each stepper is listed with its section"
    assert "unbreakable" in page  # the atomic counter: no schedule loses an update
    assert "made at build time" not in page
    # a chapter loses its stepper: the index follows on an incremental build
    (src / "b.md").write_text(PAGE_B2)
    page = build()
    assert 'data-count="2"' in page and "apf_wake-unlock_alloc" not in page
