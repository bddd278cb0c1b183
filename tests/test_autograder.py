"""The Gradescope bundle: its run_autograder grades the reference solution and the starter.

The bundle's scripts run in a temporary folder laid out as Gradescope lays out /autograder
(source/, submission/, results/), given by KVMLAB_AUTOGRADER_ROOT.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
labs = pytest.importorskip("kvmlab.labs", reason="the lab registry (kvmlab.labs) is not merged yet")


def _layout(tmp: Path, lab: str) -> Path:
    from kvmlab import autograder
    ag = tmp / "autograder"
    autograder.write_bundle(lab, ag / "source")
    (ag / "submission").mkdir()
    (ag / "results").mkdir()
    env = {**os.environ, "KVMLAB_AUTOGRADER_ROOT": str(ag), "PYTHONPATH": ""}
    r = subprocess.run(["bash", str(ag / "source" / "setup.sh")], env=env, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    return ag


def _run(ag: Path) -> dict:
    env = {**os.environ, "KVMLAB_AUTOGRADER_ROOT": str(ag), "PYTHONPATH": ""}
    out = ag / "results" / "results.json"
    if out.exists():
        out.unlink()
    r = subprocess.run([str(ag / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                       check=False, timeout=900)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    # Gradescope's schema: a score, and tests with name, score, max_score, output, visibility
    assert isinstance(data.get("score"), (int, float))
    for t in data.get("tests", []):
        assert {"name", "score", "max_score", "output"} <= set(t), t
        assert t.get("visibility", "visible") in ("visible", "hidden", "after_due_date", "after_published")
    return data


def _max(data: dict) -> float:
    return data.get("max_score", sum(t["max_score"] for t in data["tests"]))


def _clear(ag: Path) -> None:
    for p in (ag / "submission").iterdir():
        p.unlink()


@pytest.mark.parametrize("lab_id", ["lab0", "lab1"])
def test_bundle_grades_reference_and_starter(tmp_path, lab_id):
    lab = labs.get(lab_id)
    ag = _layout(tmp_path, lab_id)
    src = ag / "source"
    assert (src / "setup.sh").stat().st_mode & 0o111 and (src / "run_autograder").stat().st_mode & 0o111
    assert "kvmlab==" in (src / "requirements.txt").read_text()
    assert f"grade {lab_id}" in (src / "run_autograder").read_text()

    # the reference solution, as a .py file
    shutil.copy(ROOT / lab.solution, ag / "submission" / Path(lab.solution).name)
    good = _run(ag)
    assert good["score"] == _max(good) > 0, good

    # the notebook as handed out: the starter
    _clear(ag)
    shutil.copy(ROOT / lab.notebook, ag / "submission" / Path(lab.notebook).name)
    bad = _run(ag)
    assert bad["score"] < _max(bad), bad
    failed = [t for t in bad["tests"] if t["score"] < t["max_score"]]
    assert failed, "the starter must fail a graded test"
    # graded, not refused: the failure names a property and its counterexample
    assert any("violated" in t["output"] and "counterexample" in t["output"] for t in failed), failed
    assert "tagged" not in bad["output"], bad["output"]


def test_no_submission_is_a_clear_zero(tmp_path):
    ag = _layout(tmp_path, "lab0")
    data = _run(ag)
    assert data["score"] == 0 and "No submission found" in data["output"]


def test_broken_notebook_is_a_zero_with_the_reason(tmp_path):
    lab = labs.get("lab0")
    ag = _layout(tmp_path, "lab0")
    nb = nbformat.read(ROOT / lab.notebook, as_version=4)
    for c in nb.cells:
        if "answer" in c.metadata.get("tags", []):
            c.source = "class MyInc(:\n    pass\n"
    nbformat.write(nb, ag / "submission" / Path(lab.notebook).name)
    data = _run(ag)
    assert data["score"] == 0
    assert "Traceback" not in json.dumps(data)


def test_cli_writes_bundle_and_zip_and_refuses_bad_input(tmp_path):
    out = tmp_path / "lab2-bundle"
    cmd = [sys.executable, "-m", "kvmlab.cli_teach", "autograder", "lab2", "-o", str(out), "--zip"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(tmp_path / "lab2-bundle.zip") as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "requirements.txt", "kvmlab/__init__.py"} <= names
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111
    r = subprocess.run(cmd[:-1], capture_output=True, text=True, check=False)  # not empty, no --force
    assert r.returncode == 2 and "not empty" in r.stderr
    r = subprocess.run([sys.executable, "-m", "kvmlab.cli_teach", "autograder", "lab9", "-o", str(tmp_path / "x")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
