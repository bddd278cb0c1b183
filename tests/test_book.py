"""The book platform: configuration, table of contents, front matter, chapter 0's claims.

Unmarked tests are quick and need no build. Tests marked ``book`` need the built book in
``_build/html`` (``make book``) or run a small build themselves; ``make test`` runs them
after the build with ``KVMLAB_REQUIRE_BOOK=1``, which turns a missing book into a failure.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import kvmlab

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("KVMLAB_BOOK_HTML", ROOT / "_build" / "html"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = ["ch1-raw-spinlocks", "ch2-apf-handshake", "ch3-rcu-watching", "ch4-zone-device",
            "ch5-fast-page-faults", "ch6-tdp-root-refcount"]
GLOSSARY_TERMS = [
    "atomic context", "ABA problem", "async page fault", "cmpxchg", "counterexample", "dirty logging",
    "extended quiescent state", "fairness", "get_user_pages", "grace period", "hlist", "HLT",
    "interleaving", "invariant", "IPI", "lasso", "lockdep", "might_sleep", "mmu_notifier", "pfn",
    "preemption", "PREEMPT_RT", "raw_spinlock_t", "RCU", "RCU watching", "refcount_t",
    "sound reduction", "SPTE", "spinlock_t", "state space", "struct page", "swait queue", "TDP MMU",
    "TLB", "token", "wait type", "ZONE_DEVICE",
]


def _need_book():
    if (HTML / "book" / "intro.html").is_file():
        return
    msg = f"{HTML} has no built book: run `make book`"
    if os.environ.get("KVMLAB_REQUIRE_BOOK"):
        pytest.fail(msg)
    pytest.skip(msg)


# -- configuration ---------------------------------------------------------------------------

def test_config_executes_every_page_and_fails_on_errors():
    ex = CONFIG["execute"]
    assert ex["execute_notebooks"] == "cache"
    assert ex["allow_errors"] is False
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert CONFIG["copyright"] and "2023" not in str(CONFIG["copyright"])


def test_config_is_offline():
    sx = CONFIG["sphinx"]["config"]
    assert sx["nb_ipywidgets_js"] == {}, "no require.js / widget manager from a CDN"
    assert "sphinx_thebe" not in sx["extensions"], "sphinx-thebe doubles THEBE_JS_URL and links unpkg"
    assert sx["html_context"]["default_mode"] in ("light", "dark", "auto")
    assert CONFIG["launch_buttons"]["thebe"] is False


def test_config_launch_buttons_and_placeholder_repository():
    lb = CONFIG["launch_buttons"]
    assert lb["binderhub_url"] and lb["jupyterhub_url"] and lb["colab_url"]
    assert CONFIG["repository"]["url"] == "https://github.com/kvmlab/kvm-concurrency-book"
    assert "graphviz" in (ROOT / "apt.txt").read_text().split()
    assert "pip install" in (ROOT / "postBuild").read_text()


def test_requirements_pin_jupyter_book_v1():
    reqs = (ROOT / "requirements.txt").read_text()
    m = re.search(r"^jupyter-book==(\d+)\.", reqs, re.M)
    assert m and m.group(1) == "1"
    for line in reqs.splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"unpinned requirement: {line}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and re.search(r"^make test$", ci, re.M)


# -- table of contents -----------------------------------------------------------------------

def _toc_entries():
    yield "file", TOC["root"]
    for part in TOC["parts"]:
        for ch in part["chapters"]:
            yield ("glob", ch["glob"]) if "glob" in ch else ("file", ch["file"])


def _exists(docname: str) -> bool:
    return any((ROOT / f"{docname}{ext}").is_file() for ext in (".md", ".ipynb"))


def test_toc_parts_and_files():
    assert [p["caption"] for p in TOC["parts"]] == ["Foundations", "Chapters", "Labs", "Teaching", "Reference"]
    for kind, entry in _toc_entries():
        if kind == "file":
            assert _exists(entry), f"_toc.yml lists {entry}, which does not exist"


def test_toc_globs_pick_chapters_and_labs_in_order():
    chapters = sorted(p.stem for p in (ROOT / "book").glob("ch[1-9]-*.md"))
    for name in chapters:  # a chapter that exists must be one of the six planned ones
        assert name in CHAPTERS, f"book/{name}.md matches the chapter glob but is not a planned chapter"
    labs = sorted(p.stem for p in (ROOT / "notebooks").glob("lab[0-9]-*.ipynb"))
    assert labs and labs[0] == "lab0-lost-update"


def test_glossary_defines_required_terms_in_order():
    text = (ROOT / "book" / "glossary.md").read_text()
    body = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    terms = [ln for ln in body.splitlines() if ln and not ln.startswith((" ", ":"))]
    for t in GLOSSARY_TERMS:
        assert t in terms, f"glossary lacks {t!r}"
    assert terms == sorted(terms, key=str.lower), "keep glossary entries in alphabetical order"


def test_reference_page_names_every_public_api():
    text = (ROOT / "book" / "reference.md").read_text()
    for name in ("check", "load", "replay", "list_models", "model", "KvmlabError"):
        assert f"kvmlab.{name}" in text
    from kvmlab.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for cmd in sub.choices:
        assert f"kvmlab {cmd}" in text, f"CLI command {cmd} is not documented"


# -- chapter 0's claims, through the public API ---------------------------------------------------

def test_ch0_plain_loses_updates_and_fixes_do_not():
    plain = kvmlab.check("lost_update", "plain")
    assert plain.complete and plain.violation("no_lost_update") is not None
    assert plain.violation("no_lost_update").schedule == ["0", "1", "0", "1"]
    for v in ("atomic", "spinlock"):
        for cfg in ({"PREEMPT_RT": False}, {"PREEMPT_RT": True}):
            r = kvmlab.check("lost_update", v, config=cfg)
            assert r.ok, (v, cfg, r.violations)


def test_ch0_exercise_four_of_six_interleavings_lose():
    finals = {}
    for order in set(itertools.permutations([0, 0, 1, 1])):
        tr = kvmlab.replay("lost_update", "plain", schedule=list(order))
        finals[order] = tr.steps[-1]["state"]["shared"]["counter"]
    assert len(finals) == 6
    assert sorted(o for o, c in finals.items() if c == "2") == [(0, 0, 1, 1), (1, 1, 0, 0)]
    assert sum(c == "1" for c in finals.values()) == 4


def test_ch0_exercise_three_cpus_can_end_at_one():
    tr = kvmlab.replay("lost_update", "plain", params={"cpus": 3}, schedule=[0, 1, 2, 0, 1, 2])
    assert tr.steps[-1]["state"]["shared"]["counter"] == "1"


def _ch0_variants():
    from kvmlab.engine import line
    from kvmlab.models.lost_update import LockedInc, PlainInc

    class CmpxchgInc(PlainInc):
        @line("if (cmpxchg(&counter, old, old + 1) != old) goto retry;")
        def store(self, w, t):
            if w.cmpxchg("counter", t.tmp, t.tmp + 1) != t.tmp:
                return "load"
            t.i += 1
            if t.i < self.loops:
                return "load"

    class CheckThenStore(PlainInc):
        @line("if (counter != old) goto retry;", before="store")
        def check(self, w, t):
            if w["counter"] != t.tmp:
                return "load"

    class IrqOffLocked(LockedInc):
        @line("local_irq_disable();", before="lock")
        def irq_off(self, w, t):
            w.local_irq_disable()

        @line("spin_unlock(&lock);")
        def unlock(self, w, t):
            w.spin_unlock("lock")

        @line("local_irq_enable();", after="unlock")
        def irq_on(self, w, t):
            w.local_irq_enable()
            if t.i < self.loops:
                return "irq_off"

    m = kvmlab.model("lost_update")
    return {
        "cmpxchg": m.variant("plain").derive("cmpxchg", "", programs={"worker": CmpxchgInc}, buggy=False),
        "check_then_store": m.variant("plain").derive("cts", "", programs={"worker": CheckThenStore}),
        "irqoff": m.variant("spinlock").derive("irqoff", "", programs={"worker": IrqOffLocked}),
    }


def test_ch0_exercise_cmpxchg_correct_check_then_store_not():
    v = _ch0_variants()
    for cpus in (2, 3):
        assert kvmlab.check("lost_update", v["cmpxchg"], params={"cpus": cpus}).ok
        bad = kvmlab.check("lost_update", v["check_then_store"], params={"cpus": cpus})
        assert bad.complete and bad.violation("no_lost_update") is not None
    cx = kvmlab.check("lost_update", v["check_then_store"]).violation("no_lost_update")
    assert cx.schedule == ["0", "0", "1", "1", "0", "1"]


def test_ch0_splat_only_with_preempt_rt():
    v = _ch0_variants()["irqoff"]
    assert kvmlab.check("lost_update", v, config={"PREEMPT_RT": False}).ok
    rt = kvmlab.check("lost_update", v, config={"PREEMPT_RT": True}).violation("no_sleep_in_atomic")
    assert rt is not None and rt.schedule == ["0", "0"]
    assert rt.splat.startswith("BUG: sleeping function called from invalid context")
    assert "irqs_disabled(): 1" in rt.splat


# -- the build ------------------------------------------------------------------------------

def _jupyter_book() -> str:
    exe = Path(sys.executable).parent / "jupyter-book"
    return str(exe) if exe.exists() else (shutil.which("jupyter-book") or "jupyter-book")


@pytest.mark.book
def test_a_failing_cell_fails_the_build(tmp_path):
    """The book's own execution settings, on a one-page book whose cell raises."""
    cfg = dict(CONFIG)
    cfg["execute"] = {**CONFIG["execute"], "cache": str(tmp_path / "cache")}
    cfg["sphinx"] = {**CONFIG["sphinx"], "config": {**CONFIG["sphinx"]["config"], "html_static_path": []}}
    cfg["sphinx"]["config"].pop("html_css_files", None)
    cfg["exclude_patterns"] = ["_build"]
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    header = (ROOT / "book" / "reference.md").read_text().split("---\n", 2)[1]
    (tmp_path / "page.md").write_text(
        f"---\n{header}---\n# Page\n\n```{{code-cell}} ipython3\nraise RuntimeError('cell failed on purpose')\n```\n")
    p = subprocess.run([_jupyter_book(), "build", str(tmp_path), "-W", "--keep-going"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0, p.stdout[-2000:]
    assert "cell failed on purpose" in p.stdout + p.stderr


@pytest.mark.book
def test_notebook_twins_are_in_step():
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "pair_notebooks.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_notebook_twins_have_no_myst_markup():
    """The twins open in plain Jupyter/Colab: no MyST role, directive or target in markdown."""
    import nbformat

    myst = re.compile(r"\{[A-Za-z][\w:+.-]*\}`"          # roles: {term}`x`, {doc}`x`, {glue:text}`x`
                      r"|^\s*(?:`{3,}|:{3,})\s*\{"          # directives: ```{note}, :::{tab-item}
                      r"|^\s*:(?:label|class|header-rows|name):"  # directive options
                      r"|^\s*\([^\s()]+\)=\s*$", re.M)       # targets: (label)=
    twins = sorted((ROOT / "book").glob("*.ipynb"))
    assert twins
    for path in twins:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                m = myst.search(cell.source)
                assert not m, f"{path.name} cell {i}: MyST markup left: {m.group(0)!r}"


def test_twin_conversion_keeps_code_and_converts_markup():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import pair_notebooks as pn
    finally:
        sys.path.pop(0)
    page = ROOT / "book" / "ch1-raw-spinlocks.md"
    conv = pn.Converter(pn.Book(), page)
    src = ("(a-label)=\n## Title\n\nSee {term}`PREEMPT_RT`, {doc}`lock-types` and `` {term}`x` ``.\n\n"
           "```{exercise}\n:label: ex-a\n\nDo it.\n```\n\n````{solution} ex-a\n:class: dropdown\n\n"
           "```python\nprint({1: 2})\n```\n````\n\n    {doc}`indented code`\n")
    out = conv.cell(src)
    assert "(a-label)=" not in out
    assert "**PREEMPT_RT**" in out and "*Lock types*" in out and "`` {term}`x` ``" in out
    assert "**Exercise 1.1**" in out
    assert "<details><summary><strong>Solution to Exercise 1.1</strong></summary>\n\n" in out
    assert "```python\nprint({1: 2})\n```" in out and "    {doc}`indented code`" in out
    # code cells of every twin are the page's code cells, unchanged
    import jupytext
    import nbformat

    for md in sorted((ROOT / "book").glob("*.md")):
        twin = md.with_suffix(".ipynb")
        if not twin.exists():
            continue
        code = [c.source for c in jupytext.read(md).cells if c.cell_type == "code"]
        tcode = [c.source for c in nbformat.read(twin, as_version=4).cells if c.cell_type == "code"]
        assert tcode[1:] == code, twin.name  # [0] is the kvmlab set-up cell


@pytest.mark.book
def test_built_pages_reference_nothing_outside():
    _need_book()
    pages = sorted(HTML.rglob("*.html"))
    assert pages
    ext = re.compile(r"""<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=["'](?:https?:)?//"""
                     r"""|<link\b[^>]*rel=["'](?:stylesheet|preload|modulepreload|icon)["'][^>]*href=["'](?:https?:)?//""")
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        m = ext.search(html)
        assert not m, f"{page.relative_to(HTML)} loads {m.group(0)!r}"


@pytest.mark.book
def test_every_toc_page_is_built_and_small():
    _need_book()
    docs = [TOC["root"], "book/ch0-reading-interleavings", "book/glossary", "book/lock-types",
            "book/reference", "book/bibliography", "notebooks/lab0-lost-update"]
    docs += [f"book/{c}" for c in CHAPTERS if (ROOT / "book" / f"{c}.md").exists()]
    for d in docs:
        page = HTML / f"{d}.html"
        assert page.is_file(), f"{d} was not built"
        assert page.stat().st_size <= 1_500_000, f"{d}.html is {page.stat().st_size} bytes (target 1.5 MB)"


@pytest.mark.book
def test_chapter_launch_buttons_open_notebooks():
    _need_book()
    html = (HTML / "book" / "ch0-reading-interleavings.html").read_text()
    links = re.findall(r'href="(https://(?:mybinder\.org|colab\.research\.google\.com|[^"]*/hub/user-redirect)[^"]*)"',
                       html)
    assert len(links) >= 3, links
    assert all("book/ch0-reading-interleavings.ipynb" in u or "book%2Fch0-reading-interleavings.ipynb" in u
               for u in links), links
