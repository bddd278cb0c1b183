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
