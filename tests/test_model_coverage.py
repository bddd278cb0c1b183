"""tools/model_coverage.py: branch coverage of model steps over the chapters' configurations."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import model_coverage as mc  # noqa: E402

CHAPTERS = {"zone_device": "ch4-zone-device.md", "fast_pf": "ch5-fast-page-faults.md",
            "tdp_root_put": "ch6-tdp-root-refcount.md"}


def _fn(rep, name):
    for f in rep["files"].values():
        if name in f["functions"]:
            return f["functions"][name]
    return None


def test_one_loop_leaves_the_loop_back_branch_untaken():
    # lost_update with loops=1: PlainInc.store never jumps back to load; with loops=2 it does
    rep = mc.measure("lost_update", [("plain", {"loops": 1}, {})])
    store = _fn(rep, "PlainInc.store")
    assert store is not None and store["step"]
    assert store["branches"] == 2 and store["covered"] == 1
    [miss] = store["missing"]
    assert miss["line"] == "if t.i < self.loops:" and miss["to"] != "exit"
    assert "PlainInc.store" in rep["logic_gaps"]
    rep2 = mc.measure("lost_update", [("plain", {"loops": 2}, {})])
    assert _fn(rep2, "PlainInc.store")["covered"] == 2
    assert "PlainInc.store" not in rep2["logic_gaps"]


def test_a_step_no_configuration_runs_is_reported_uncovered():
    # with only the plain mmap() user, the vCPU's steps never run: every branch of get_pgmap is missing
    rep = mc.measure("zone_device", [("refcounted", {"user": "mmap"}, {})])
    g = _fn(rep, "FaultPath.get_pgmap")
    assert g is not None and g["covered"] == 0 and g["branches"] == 4
    inv = _fn(rep, "Teardown.inv_start")   # the teardown's "no KVM notifier" branch is taken
    assert inv is not None and inv["covered"] >= 1


@pytest.mark.parametrize("model", sorted(CHAPTERS))
def test_every_untaken_logic_branch_is_named_in_the_tool_and_the_chapter(model):
    rep = mc.measure(model)
    assert all(r["complete"] for r in rep["runs"])
    assert set(rep["logic_gaps"]) == set(mc.NOT_COVERED[model]), (
        "reach the new gaps with a configuration or name them in NOT_COVERED and the chapter")
    with open(os.path.join(ROOT, "book", CHAPTERS[model]), encoding="utf-8") as f:
        text = f.read()
    for name in mc.NOT_COVERED[model]:
        assert f"`{name}`" in text, f"{CHAPTERS[model]} does not name {name} as not covered"


def test_cli_bad_model_exits_2_without_traceback():
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "model_coverage.py"), "no_such_model"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "unknown model" in p.stderr and "Traceback" not in p.stderr


def test_cli_json_report():
    import json
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "model_coverage.py"), "lost_update", "--json"],
                       capture_output=True, text=True, env=env, check=True)
    d = json.loads(p.stdout)
    assert d["models"][0]["model"] == "lost_update" and 0 < d["covered"] <= d["branches"]
