"""The stepper's JavaScript core under node's built-in test runner (``node --test tests/js/``).

The graphs come from the real export, so the core is tested on the data the book embeds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kvmlab.export import export_graph

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node") or "/usr/bin/node"

FIXTURES = {
    "lu": ("lost_update", "plain", {}, "no_lost_update"),
    "apf": ("apf_wake", "unlock_alloc", {}, "no_lost_wakeup"),
    "fixed": ("apf_wake", "recheck", {}, "no_lost_wakeup"),
    "loop": ("tdp_root_put", "no_invalid_check", {"readers": 0, "writer": 0}, "terminates"),
}


def test_js_core_under_node(tmp_path):
    if not Path(NODE).exists():
        pytest.skip("node is not installed (Debian: apt-get install nodejs)")
    for name, (model, variant, params, goal) in FIXTURES.items():
        d = export_graph(model, variant, params=params, goal_property=goal, stepper_id=name)
        (tmp_path / f"{name}.json").write_text(json.dumps(d), encoding="utf-8")
    p = subprocess.run([NODE, "--test", str(ROOT / "tests" / "js")], capture_output=True, text=True,
                       timeout=120, env={"KVMLAB_JS_FIXTURES": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]
    assert "# fail 0" in p.stdout and "# pass 0" not in p.stdout
