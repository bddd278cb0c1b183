"""Hostile learner programs for every lab: each gets the right verdict and a message naming the cause.

The answers are in ``tests/hostile/labN_<case>.py``; the first line says what to expect:
``pass``, ``fail <property>`` (or a phrase of the message), ``error <phrase>`` (the learner's code
raised or never returned) or ``submission <phrase>`` (the answer cannot be loaded: exit 2).
Each goes through ``kvmlab.labs.grade_source`` and through ``kvmlab grade`` in every format.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from kvmlab import cli, labs
from kvmlab.report_formats import FORMATS, render

HERE = Path(__file__).parent / "hostile"
CASES = sorted(HERE.glob("lab*.py"))
STEP = 1.0  # seconds: the step time limit in these tests (a `while True:` step is stopped then)


def expectation(path: Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    kind, _, what = first[len("# expect: "):].partition(" ")
    return kind, what


def lab_of(path: Path) -> str:
    return path.name.split("_")[0]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_grade_gives_the_right_verdict(path):
    kind, what = expectation(path)
    src = path.read_text()
    if kind == "submission":
        with pytest.raises(labs.SubmissionError, match=what):
            labs.grade_source(lab_of(path), src, step_timeout=STEP)
        return
    rep = labs.grade_source(lab_of(path), src, step_timeout=STEP)
    msg = rep.message()
    if kind == "pass":
        assert rep.passed, msg
        assert msg.startswith("PASS: no violation in ") and "fairness" in msg  # the bounds are printed
        return
    assert not rep.passed and msg.startswith("FAIL"), msg
    if kind == "fail":
        failed = {p for r in rep.runs for p in r.failed}
        assert what in failed or what in msg, msg
        if rep.failed_property:
            assert rep.counterexample is not None and rep.counterexample.schedule
        if what == "terminates":
            lasso = next(v for r in rep.runs if r.result for v in r.result.violations if v.property == what)
            assert lasso.loop_start is not None and "forever" in lasso.message  # shown as a lasso
    else:  # error
        f = rep.first_failure
        assert f.verdict == "error" and f.error is not None, msg
        assert what in msg, msg
        assert f.error.step != "?" and f.error.c_line  # names the step and its C line
        assert f.error.schedule is not None


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_kvmlab_grade_in_every_format(path, capsys, tmp_path):
    """``kvmlab grade`` grades once (JSON); every other format is rendered from that JSON, as the
    command does, and each is checked."""
    kind, what = expectation(path)
    out = tmp_path / "out.json"
    code = cli.main(["grade", lab_of(path), str(path), "--format", "json", "--step-timeout", str(STEP),
                     "-o", str(out)])
    d = json.loads(out.read_text())
    assert code == {"pass": 0, "fail": 1, "error": 1, "submission": 2}[kind], d["message"]
    assert d["passed"] is (kind == "pass")
    if kind == "fail" and what.isidentifier():
        assert any(what in r["failed"] for r in d["runs"])
    if kind in ("error", "submission"):
        assert what in d["message"] or what in (d["error"] or "")
    for fmt in FORMATS:
        text = render(d, fmt)
        if fmt == "gradescope":
            g = json.loads(text)
            assert set(g) >= {"score", "max_score", "tests"}
            assert all({"name", "score", "max_score", "output", "visibility"} <= set(t) for t in g["tests"])
            assert (g["score"] == g["max_score"]) is (kind == "pass")
            if kind == "fail" and what.isidentifier():
                assert any(t["score"] == 0 and t["name"].endswith(": " + what) for t in g["tests"])
        elif fmt == "junit":
            root = ET.fromstring(text)
            assert root.tag == "testsuite" and (root.get("failures") == "0") is (kind == "pass")
        elif fmt == "text":
            assert ("PASS" in text) is (kind == "pass")
            if kind != "pass":
                assert what in text


@pytest.mark.parametrize("lab_id", sorted(labs.LABS))
def test_reference_passes_and_starter_fails(lab_id):
    lab = labs.get(lab_id)
    ref = labs.grade_file(lab_id, labs.reference_path(lab_id))
    assert ref.passed, str(ref)
    start = labs.grade_source(lab_id, lab.starter)
    assert not start.passed and start.failed_property, str(start)
    assert start.stepper_data() is not None or start.counterexample is not None


def test_timeout_kills_the_whole_submission(tmp_path, capsys):
    sub = tmp_path / "spin.py"
    sub.write_text("while True:\n    pass\n")
    code = cli.main(["grade", "lab0", str(sub), "--timeout", "3", "--format", "json", "-o", str(tmp_path / "r")])
    d = json.loads((tmp_path / "r").read_text())
    assert code == 1 and not d["passed"] and "time limit (3 s)" in d["message"]


def test_bad_lab_and_missing_file_are_bad_input(capsys, tmp_path):
    assert cli.main(["grade", "lab9", str(tmp_path / "x.py")]) == 2
    assert cli.main(["grade", "lab0", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert cli.main(["grade", "lab0", str(empty)]) == 2


def test_notebook_answer_cells_are_graded(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["answer"]}, "source": labs.get("lab0").starter},
                    {"cell_type": "code", "metadata": {}, "source": "raise SystemExit"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "sub.ipynb"
    p.write_text(json.dumps(nb))
    rep = labs.grade_file("lab0", p)
    assert not rep.passed and rep.failed_property == "no_lost_update"
