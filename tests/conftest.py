"""Fixtures shared by the unit and browser tests."""

from __future__ import annotations

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
