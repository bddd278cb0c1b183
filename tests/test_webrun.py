"""The Python side of the runnable labs: the wheel the book serves, webrun's JSON, the lab box's HTML."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile

import pytest

from kvmlab.widgets import labpage, webrun


def test_wheel_is_complete_and_reproducible(tmp_path):
    a = labpage.build_wheel(tmp_path / "a")
    b = labpage.build_wheel(tmp_path / "b")
    assert a.name.startswith("kvmlab-") and a.name.endswith("-py3-none-any.whl")
    assert a.read_bytes() == b.read_bytes(), "two builds of the same source differ"
    with zipfile.ZipFile(a) as zf:
        names = set(zf.namelist())
        for need in ("kvmlab/__init__.py", "kvmlab/widgets/webrun.py", "kvmlab/widgets/static/stepper.js",
                     "kvmlab/engine/__init__.py"):
            assert need in names, need
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/WHEEL"))
        assert "Tag: py3-none-any" in zf.read(f"{dist}/WHEEL").decode()
        record = zf.read(f"{dist}/RECORD").decode().splitlines()
        assert len(record) == len(names)
        for row in record:
            name, digest, size = row.rsplit(",", 2)
            if name.endswith("RECORD"):
                continue
            data = zf.read(name)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={want}" and int(size) == len(data), name


def test_wheel_unchanged_keeps_its_file(tmp_path):
    p = labpage.build_wheel(tmp_path)
    before = p.stat().st_mtime_ns
    assert labpage.build_wheel(tmp_path) == p
    assert p.stat().st_mtime_ns == before, "an unchanged wheel was rewritten (defeats HTTP caching)"
    assert not list(tmp_path.glob("*.tmp"))


def test_explore_gives_the_players_graph():
    d = json.loads(webrun.explore(json.dumps({"model": "lost_update", "variant": "plain",
                                              "params": {"cpus": 2, "loops": 1}})))
    assert d["model"] == "lost_update" and d["params"] == {"cpus": 2, "loops": 1}
    assert d["states"] and "no_lost_update" in d["counterexamples"]


@pytest.mark.parametrize("request_text, words", [
    ('{"model": "nope"}', "unknown model"),
    ('{"variant": "plain"}', "model"),
    ('{"model": "lost_update", "params": {"cpus": "many"}}', "cpus"),
    ("not json", "JSONDecodeError"),
])
def test_explore_bad_request_is_a_clear_error(request_text, words):
    d = json.loads(webrun.explore(request_text))
    assert set(d) == {"error"} and words in d["error"], d


def test_selftest_runs_chapter0():
    d = json.loads(webrun.selftest())
    assert d["states"] > 0 and d["violated"] == ["no_lost_update"]


def test_script_json_cannot_close_its_tag():
    s = labpage._json_for_script({"starter": "x = '</script><script>alert(1)</script>'"})
    assert "</script" not in s and json.loads(s)["starter"].startswith("x = '</script>")


labs = pytest.importorskip("kvmlab.labs")


def _all():
    seq = labs.LABS.values() if isinstance(labs.LABS, dict) else labs.LABS
    return [labs.get(x) if isinstance(x, str) else x for x in seq]


def test_every_lab_notebook_maps_to_a_page():
    docs = labpage.lab_docs()
    assert sorted(docs.values()) == sorted(lab.id for lab in _all())
    for doc in docs:
        assert doc.startswith("notebooks/") and not doc.endswith(".ipynb")


def test_box_html_embeds_the_starter_not_the_solution():
    lab = _all()[0]
    html = labpage.box_html(lab.id, "../_kvmlab/", timeout=20, runtime=True, wheel="kvmlab.whl")
    data = html.split('class="kvmlab-lab-data">', 1)[1].split("</script>", 1)[0]
    d = json.loads(data)
    assert d["id"] == lab.id and d["starter"] == lab.starter and d["timeout"] == 20
    assert "solution" not in d
    missing = labpage.box_html(lab.id, "../_kvmlab/", timeout=20, runtime=False, wheel="kvmlab.whl")
    assert "make web" in missing and "<script" not in missing


def test_grade_unknown_lab_is_a_clear_error():
    d = json.loads(webrun.grade("lab99", "x = 1"))
    assert d["report"]["passed"] is False and "lab99" in d["report"]["message"]


def test_grade_starter_fails_with_a_stepper():
    lab = _all()[0]
    d = json.loads(webrun.grade(lab.id, lab.starter))
    rep = d["report"]
    assert rep["passed"] is False and rep["property"], rep
    assert d["stepper"] and d["stepper"]["goal_property"] == rep["property"]
    assert d["words"], "the violated property has no description"


def test_grade_keeps_what_the_code_printed():
    lab = _all()[0]
    d = json.loads(webrun.grade(lab.id, 'print("hello from the answer")\n' + lab.starter))
    assert "hello from the answer" in d["output"]


# -- a chapter exercise's "try it here" box (the kvmlab-try directive) ---------------------
CAS = '''class MyInc(Program):
    fn = "worker"
    locals = {"old": 0, "i": 0}

    @line("old = counter;")
    def load(self, w, t):
        t.old = w["counter"]

    @line("if (cmpxchg(&counter, old, old + 1) != old) goto retry;")
    def cas(self, w, t):
        if w.cmpxchg("counter", t.old, t.old + 1) != t.old:
            return "load"
        t.i += 1
        if t.i < self.loops:
            return "load"
'''
WRONG = CAS.replace('if w.cmpxchg("counter", t.old, t.old + 1) != t.old:\n            return "load"\n',
                    'w["counter"] = t.old + 1\n')
SPEC = {"model": "lost_update", "variant": "plain", "program": "worker", "name": "MyInc",
        "params": [{"cpus": "2"}, {"cpus": "3"}], "configs": None}


def test_try_variant_judges_the_learners_variant():
    assert WRONG != CAS
    ok = json.loads(webrun.try_variant(json.dumps(SPEC), CAS))
    assert ok["report"]["passed"] is True and ok["stepper"] is None, ok["report"]
    bad = json.loads(webrun.try_variant(json.dumps(SPEC), WRONG))
    assert bad["report"]["passed"] is False and bad["report"]["property"] == "no_lost_update"
    assert bad["stepper"]["model"] == "lost_update" and bad["words"]


@pytest.mark.parametrize("spec, source, words", [
    (SPEC, "class MyInc(:\n", "SyntaxError"),
    (SPEC, "x = 1\n", "must define the class MyInc"),
    (SPEC, "raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ({"model": "lost_update"}, CAS, "bad exercise spec"),
    ({**SPEC, "program": "nope"}, CAS, "not a program of lost_update/plain"),
    ({**SPEC, "params": [{"cpus": "99"}]}, CAS, "cpus"),
])
def test_try_variant_errors_are_clear(spec, source, words):
    d = json.loads(webrun.try_variant(json.dumps(spec), source))
    assert d["report"]["passed"] is False and words in d["report"]["message"], d["report"]


def build_try_site(tmp_path, body: str, web_dir=None):
    """Build a one-page Sphinx site using the kvmlab-try directive; returns (outdir, warnings)."""
    import io

    from sphinx.application import Sphinx
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text("extensions = ['kvmlab.widgets.labpage']\n"
                                 f"kvmlab_web_dir = {str(web_dir or tmp_path / 'none')!r}\n")
    (src / "index.rst").write_text("Try\n===\n\n" + body)
    warnings = io.StringIO()
    app = Sphinx(str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
                 status=None, warning=warnings, freshenv=True)
    app.build()
    return tmp_path / "out", warnings.getvalue()


TRY_RST = (".. kvmlab-try:: lost_update\n   :variant: plain\n   :program: worker\n   :name: MyInc\n"
           "   :params: cpus=2; cpus=3\n\n" + "".join(f"   {ln}\n" if ln else "\n" for ln in WRONG.splitlines()))


def test_try_directive_writes_a_box(tmp_path):
    web = tmp_path / "web"  # a stand-in runtime: the box only checks that the files exist
    (web / "pyodide").mkdir(parents=True)
    (web / "pyodide" / "pyodide.asm.wasm").write_bytes(b"\0asm")
    (web / "editor.js").write_text("// editor")
    out, warnings = build_try_site(tmp_path, TRY_RST, web)
    assert "kvmlab-try: " not in warnings, warnings
    page = (out / "index.html").read_text()
    data = json.loads(page.split('class="kvmlab-lab-data">', 1)[1].split("</script>", 1)[0])
    assert data["kind"] == "try" and data["spec"]["params"] == [{"cpus": "2"}, {"cpus": "3"}]
    assert data["starter"].strip() == WRONG.strip()
    assert (out / "_kvmlab" / "labpage.js").is_file() and (out / "_kvmlab" / "editor.js").is_file()
    assert list((out / "_kvmlab").glob("kvmlab-*.whl"))


def test_try_directive_without_runtime_says_so(tmp_path):
    out, warnings = build_try_site(tmp_path, TRY_RST)
    assert "make web" in (out / "index.html").read_text()


def test_try_directive_bad_options_are_build_errors(tmp_path):
    out, warnings = build_try_site(tmp_path, TRY_RST.replace(":params: cpus=2; cpus=3", ":params: cpus=99"))
    assert "kvmlab-try: " in warnings and "cpus" in warnings
    assert 'class="kvmlab-lab' not in (out / "index.html").read_text()
