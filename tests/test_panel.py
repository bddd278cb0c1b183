"""kvmlab.explore(): the control panel re-runs the explorer when a control changes (no front end)."""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")


def test_variant_switch_changes_the_verdict():
    import kvmlab
    p = kvmlab.explore("lost_update")
    assert p.variant.value == "plain"
    assert "breaks no_lost_update" in p.headline() and "cpus=2" in p.headline()
    p.variant.value = "spinlock"
    assert "all properties hold" in p.headline()
    assert p.result.ok


def test_params_and_configs_are_bounded_controls():
    import kvmlab
    p = kvmlab.explore("apf_wake", "recheck", stepper=False)
    assert set(p.configs) == {"PREEMPT_RT", "PROVE_RAW_LOCK_NESTING"}
    w = p.params["waiters"]
    assert (w.min, w.max) == (1, 4)
    p.configs["PREEMPT_RT"].value = False
    assert "PREEMPT_RT=n" in p.headline()
    p.params["waiters"].value = 2
    assert "waiters=2" in p.headline()


def test_bad_settings_are_a_clear_error():
    import kvmlab
    with pytest.raises(kvmlab.KvmlabError, match="between"):
        kvmlab.explore("lost_update", params={"cpus": 9})


def test_static_book_shows_the_verdict_not_widgets(monkeypatch):
    import IPython.display

    import kvmlab

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    p = kvmlab.explore("lost_update", stepper=False)
    monkeypatch.setenv("KVMLAB_STATIC", "1")
    shown.clear()  # the panel's own outputs (the summary) went through display() too
    p._ipython_display_()
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.HTML)
    assert "control panel" in shown[0].data and "breaks no_lost_update" in shown[0].data
    monkeypatch.delenv("KVMLAB_STATIC")
    p._ipython_display_()
    assert shown[1] is p.widget
