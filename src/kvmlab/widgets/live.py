"""The stepper as an anywidget for live notebooks: the same JavaScript player.

A stepper displays it in place of the live HTML only with ``KVMLAB_LIVE=widget`` (see
:mod:`.stepper` for why); ``Stepper.widget()`` returns it, e.g. for ipywidgets layouts.
"""

from __future__ import annotations

import anywidget
import traitlets

from .stepper import asset

_ESM = asset("stepper.js") + """
export default {
  render({ model, el }) {
    const K = globalThis.KvmlabStepper;
    const box = document.createElement("div");
    el.appendChild(box);
    // in a notebook the page URL belongs to the front end: no hash writing
    const player = K.mount(box, JSON.parse(model.get("graph")), { hash: false, scroll: false });
    // the view is removed (cell re-run or cleared): stop a "show me" animation
    return () => { if (player) player.stop(); };
  }
};
"""


class StepperWidget(anywidget.AnyWidget):
    """anywidget front end of :class:`kvmlab.widgets.Stepper`; ``graph`` is the exported JSON."""

    _esm = _ESM
    _css = asset("stepper.css")
    graph = traitlets.Unicode("{}").tag(sync=True)
