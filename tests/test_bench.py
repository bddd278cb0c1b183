"""The SPIN comparison harness runs both sides on the same configuration and they agree.

Functional only (no timing assertions: speed goals live in `kvmlab bench`).
"""

from __future__ import annotations

import shutil

import pytest

from kvmlab import bench

pytestmark = pytest.mark.skipif(not (shutil.which("spin") and shutil.which("gcc") and bench.find_spin_dir()),
                                reason="needs Debian spin and gcc (tools/sysdeps.sh installs them)")


@pytest.mark.parametrize("pml,variant,flags", bench.SPIN_PAIRS)
def test_spin_and_kvmlab_agree_on_1_1_1(pml, variant, flags):
    spin = bench.run_spin(bench.find_spin_dir(), pml, 1, 1, 1, flags)
    local = bench.run_ours(variant, 1, 1, 1, "local")
    full = bench.run_ours(variant, 1, 1, 1, "full")
    assert local["complete"] and full["complete"]
    # the Promela models check the handshake (no process blocked forever, no duplicate, no leak),
    # not PREEMPT_RT's might_sleep report, which `original` also breaks here
    shared = set(bench.SPIN_PROPERTIES)
    assert (spin["errors"] > 0) == bool(shared & set(local["violated"])) == bool(shared & set(full["violated"]))
    assert (spin["errors"] > 0) == (variant == "unlock_alloc")
    assert full["states"] < local["states"]
    if variant == "recheck":  # same granularity; SPIN also keeps returned-but-not-removed processes
        assert local["states"] < spin["states"] < local["states"] * 1.3
