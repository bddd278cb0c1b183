"""Every notebook in notebooks/ runs top to bottom; lab 0's starter fails and its solution passes.

Notebook execution uses nbclient with the ``python3`` kernel of the running interpreter.
The lab 0 checks run the notebook's code cells in this process, with the cell tagged
``starter`` either as committed or replaced by the reference solution from
``solutions/lab0_lost_update.py``, and look at the ``report`` the ``grade`` cell makes.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LAB0 = ROOT / "notebooks" / "lab0-lost-update.ipynb"


def _solution():
    spec = importlib.util.spec_from_file_location("lab0_solution", ROOT / "solutions" / "lab0_lost_update.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # inspect.getsource() needs it
    spec.loader.exec_module(mod)
    return mod


def _run_cells(nb, starter_source: str | None = None) -> dict:
    """Execute a notebook's code cells here; optionally replace the cell tagged 'starter'."""
    ns: dict = {"__name__": "__lab__"}
    seen_starter = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = cell.source
        if "starter" in cell.metadata.get("tags", []):
            seen_starter = True
            if starter_source is not None:
                src = starter_source
        exec(compile(src, f"<{LAB0.name} cell>", "exec"), ns)  # noqa: S102 - our own notebook
    assert seen_starter, "no code cell tagged 'starter'"
    return ns


def test_there_are_notebooks():
    assert LAB0 in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors


def test_lab0_notebook_is_clean():
    nb = nbformat.read(LAB0, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), "commit lab notebooks without outputs"
            assert "solutions" not in cell.source, "a lab notebook must not import its solution"


def test_lab0_starter_grades_not_yet():
    ns = _run_cells(nbformat.read(LAB0, as_version=4))
    report = ns["report"]
    assert report.passed is False


def test_lab0_reference_solution_passes_in_the_notebook():
    sol = _solution()
    ns = _run_cells(nbformat.read(LAB0, as_version=4), starter_source=inspect.getsource(sol.MyInc))
    assert ns["report"].passed is True


@pytest.mark.parametrize("name", ["spinlock", "atomic", "cmpxchg"])
def test_lab0_every_reference_solution_passes(name):
    import kvmlab
    from kvmlab.lab import grade

    prog = _solution().SOLUTIONS[name]
    v = kvmlab.model("lost_update").variant("plain").derive(name, name, programs={"worker": prog}, buggy=False)
    report = grade("lost_update", v, params={"cpus": 2, "loops": 2},
                   configs=[{"PREEMPT_RT": False}, {"PREEMPT_RT": True}])
    assert report.passed is True


def test_lab0_hint3_wrong_loop_target_fails():
    """Hint 3's warning: looping back to the load (not the lock) leaves the second increment unlocked."""
    import kvmlab
    from kvmlab.engine import line
    from kvmlab.lab import grade

    class LoopToLoad(_solution().MyInc):
        @line("spin_unlock(&lock);")
        def unlock(self, w, t):
            w.spin_unlock("lock")
            if t.i < self.loops:
                return "load"

    v = kvmlab.model("lost_update").variant("plain").derive("loop_to_load", "", programs={"worker": LoopToLoad})
    report = grade("lost_update", v, params={"cpus": 2, "loops": 2},
                   configs=[{"PREEMPT_RT": False}, {"PREEMPT_RT": True}])
    assert report.passed is False
