"""Fixtures shared by the unit and browser tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def evil_model():
    """A model whose every text is markup: a page must show it as text and never run it."""
    from kvmlab.engine import Model, Program, Variant, line
    from kvmlab.kernel import KernelWorld

    class Evil(Program):
        fn = "evil<script>window.pwned=1</script>"

        @line("x = '</script><img src=x onerror=window.pwned=2>';")
        def only(self, w, t):
            w["x"] = "<b>bold?</b><!--"

    class EvilModel(Model):
        name = "evil"
        title = "<i>not italic</i>"
        variants = [Variant("v", "<i>x</i>", programs={"p": Evil})]
        properties = {"ok": "</script>"}
        world = KernelWorld

        def setup(self, w, variant, config, params):
            w.declare("x", "")
            w.spawn(variant.programs["p"]("p0", cpu=0, title="<script>window.pwned=3</script>"))

    return EvilModel


ROOT_DIR = Path(__file__).resolve().parents[1]


def notebook_lab_variant(lab_id: str):
    """The variant a lab notebook's answer cells (as handed out) make, built by the lab registry."""
    from kvmlab import labs

    lab = labs.get(lab_id)
    src = labs.answer_cells(ROOT_DIR / lab.notebook)
    return lab.build(labs.namespace_of(lab_id, src))
