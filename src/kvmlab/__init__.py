"""kvmlab: KVM concurrency bugs as runnable models, an exhaustive explorer and a stepper.

The Python API mirrors the CLI::

    import kvmlab
    r = kvmlab.check("apf_wake", variant="unlock_alloc", params={"waiters": 1})
    r.ok, r.states, r.violation("no_lost_wakeup").schedule
    sys = kvmlab.load("apf_wake", variant="recheck")
    tr = kvmlab.replay("apf_wake", variant="recheck", schedule=[0, 1, 1])
"""

from __future__ import annotations

from ._version import __version__ as __version__
from .api import check, list_models, load, model, replay
from .engine import KvmlabError, Result, Violation

__all__ = ["KvmlabError", "Result", "Violation", "check", "explore", "list_models", "load", "model", "replay"]


def explore(model, variant=None, **kw):
    """A control panel (ipywidgets): variant, configs and params that re-run the explorer on change."""
    from .widgets.panel import explore as _explore
    return _explore(model, variant, **kw)
