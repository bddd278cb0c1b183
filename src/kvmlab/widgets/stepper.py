"""The stepper: the reader plays the scheduler over a model's full state graph.

Python explores the configuration once (:mod:`kvmlab.export`); one JavaScript
player does the rest in the browser, so the stepper works in the static book
with no kernel. The player is four files in ``static/`` (:data:`PLAYER_PARTS`:
the pure core, the URL state, the view, mounting), joined into one inline
script by :func:`player_js`. Two representations:

* ``text/html``: self-contained (CSS and JS inlined, the graph in a
  ``<script type="application/json">``). The player's script is inlined only
  with the first stepper a process displays; later ones reuse it (every
  stepper carries a tiny bootstrap that mounts it). This is what the static
  book shows; no require.js, no widget manager, nothing from the network.
* in a live kernel (JupyterLab, Notebook 7, Colab, VS Code), the same HTML
  with the player inlined in every output (each output stands alone), no
  URL-hash writing (the page URL belongs to the front end) and a visible
  line, in place of ``<noscript>``, that says to run the cell when the front
  end does not run the output's scripts (an untrusted notebook). HTML rather
  than the anywidget by default: tested in JupyterLab 4.6 with ipywidgets 8.1
  and anywidget 0.11, a widget output shows only "Loading widget..." once the
  page is reloaded or the saved notebook reopened (with or without the
  kernel), where the HTML keeps working with no kernel at all. The anywidget
  (:meth:`Stepper.widget`, :mod:`.live`) runs the same player; it is what a
  stepper displays when ``KVMLAB_LIVE=widget`` is set, with the HTML as the
  fallback for front ends without a widget manager.

The static build is recognised by ``KVMLAB_STATIC=1`` in the environment
(the Sphinx extension :mod:`kvmlab.widgets.sphinx` sets it for the kernels it
starts) or when no IPython kernel is running.
"""

from __future__ import annotations

import html
import json
import os
import re
from functools import cache
from importlib import resources
from typing import Any

from ..api import make_system
from ..diagrams.theme import static_mode
from ..engine import KvmlabError
from ..engine.graph import explore
from ..export import graph_json

_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]+")
_used_ids: dict[str, int] = {}
_assets_emitted = False


PLAYER_PARTS = ("core.js", "url.js", "view.js", "mount.js")


@cache
def asset(name: str) -> str:
    """Text of a file in ``kvmlab/widgets/static``; ``stepper.js`` is the whole player."""
    if name == "stepper.js":
        return player_js()
    return resources.files("kvmlab.widgets").joinpath("static", name).read_text(encoding="utf-8")


def player_js() -> str:
    """The player's parts (:data:`PLAYER_PARTS`) as one script, in order."""
    return "\n".join(asset(p) for p in PLAYER_PARTS)


def assets_html() -> str:
    """The player's CSS and JS as inline tags (guarded: defining twice is harmless)."""
    css = asset("stepper.css")
    js = asset("stepper.js").replace("</", "<\\/")
    return (f'<style id="kvmlab-stepper-css">{css}</style>\n'
            f'<script id="kvmlab-stepper-js">{js}</script>\n')


def reset_page() -> None:
    """Forget that the player's script was emitted (the next stepper inlines it again)."""
    global _assets_emitted
    _assets_emitted = False
    _used_ids.clear()


def _json_for_script(data: Any) -> str:
    s = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # nothing in a JSON script block may close the tag or open a comment: "<" only occurs in strings
    return s.replace("<", "\\u003c")


def _default_id(model: str, variant: str, config: dict, params: dict, defaults: tuple[dict, dict]) -> str:
    base = f"{model}-{variant}"
    extra = [f"{k}{'y' if v else 'n'}" for k, v in sorted(config.items()) if defaults[0].get(k) != v]
    extra += [f"{k}{v}" for k, v in sorted(params.items()) if defaults[1].get(k) != v]
    if extra:
        base += "-" + "-".join(extra)
    return _SAFE_ID.sub("_", base)


class Stepper:
    """Interactive stepper for ``model``/``variant`` in one configuration.

    ``goal`` is the reader's goal text (default: the model's ``goals`` entry
    for the variant, if the stepper can detect it; ``""`` for none);
    ``goal_property`` the property (or a list: any of them) whose breaking is
    the goal, and whose shortest counterexample "show me" plays. A goal text
    given here needs one when some schedule breaks a property
    (:class:`KvmlabError` otherwise).
    ``id`` names the stepper in the page URL (``#stepper-<id>=0,1,1:fail``);
    by default it is derived from model, variant and non-default settings.
    """

    def __init__(self, model, variant=None, *, config: dict | None = None, params: dict | None = None,
                 goal: str | None = None, goal_property: str | list[str] | None = None, title: str | None = None,
                 max_states: int = 20000, id: str | None = None):
        self.system = make_system(model, variant, config, params)
        sys = self.system
        mcls = type(sys.model)
        if id is None:
            defaults = ({k: c.default for k, c in mcls.configs.items()},
                        {k: p.default for k, p in mcls.params.items()})
            id = _default_id(mcls.name, sys.variant.name, sys.config, sys.params, defaults)
            n = _used_ids.get(id, 0) + 1
            _used_ids[id] = n
            if n > 1:
                id = f"{id}-{n}"
        elif _SAFE_ID.search(id):
            raise KvmlabError(f"stepper id {id!r}: use letters, digits, '-' and '_' only")
        self.id = id
        self.graph = explore(sys, max_states)
        self.data = graph_json(self.graph, goal=goal, goal_property=goal_property, title=title,
                               stepper_id=id)
        self._widget = None

    # -- facts, for tests and captions ------------------------------------------
    @property
    def states(self) -> int:
        return len(self.data["states"])

    def puzzle(self) -> dict[str, Any]:
        """What the puzzle index (:mod:`.sphinx`) lists about this stepper."""
        d = self.data
        return {"id": self.id, "title": d["title"], "goal": d["goal"] or None, "goal_property": d["goal_property"],
                "goal_properties": d["goal_properties"],
                "goal_kind": d["goal_kind"], "par": d["par"], "states": len(d["states"]),
                "cpus": len(d["threads"]), "breaks": sorted(d["counterexamples"])}

    def to_json(self) -> str:
        return json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)

    def __repr__(self) -> str:
        d = self.data
        return (f"<Stepper {d['model']}/{d['variant']}: {len(d['states'])} states, "
                f"{len(d['threads'])} threads, id {self.id}>")

    # -- static HTML --------------------------------------------------------------
    def to_html(self, assets: bool | None = None, live: bool = False) -> str:
        """Self-contained HTML. ``assets``: inline the player's CSS/JS (default: first time only).

        ``live``: for a notebook output (see the module docstring): the player
        leaves the page URL alone, and a line visible until the player starts
        says what to do if it does not (run the cell, or trust the notebook).
        """
        global _assets_emitted
        if assets is None:
            assets = not _assets_emitted
        _assets_emitted = _assets_emitted or assets
        d = self.data
        summary = (f"Interactive stepper for {d['model']} ({d['variant']}): "
                   f"{len(d['threads'])} CPUs, {len(d['states'])} states.")
        if live:
            # the player's build() replaces this line; it stays only where the output's scripts do not run
            note = (f'<p class="ks-placeholder">{html.escape(summary)} It starts when this cell runs '
                    'in a notebook whose outputs may run scripts: run the cell (or trust the notebook).</p>')
            attrs = ' data-kvmlab-live="1"'
        else:
            note = f'<noscript><p>{html.escape(summary)} It needs JavaScript.</p></noscript>'
            attrs = ""
        parts = []
        if assets:
            parts.append(assets_html())
        puzzle = html.escape(json.dumps(self.puzzle(), separators=(",", ":"), ensure_ascii=False), quote=True)
        parts.append(
            f'<div class="kvmlab-stepper" id="kvmlab-stepper-{self.id}" data-kvmlab-stepper="{self.id}"{attrs}'
            f' data-kvmlab-puzzle="{puzzle}">'
            f'<script type="application/json" class="kvmlab-stepper-data">{_json_for_script(d)}</script>'
            f'{note}</div>\n'
            '<script>(function(){var K=window.KvmlabStepper;if(K)K.mountAll();})();</script>\n')
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    # -- live notebooks -----------------------------------------------------------
    def widget(self):
        """The anywidget running the same player (needs anywidget)."""
        if self._widget is None:
            from .live import StepperWidget
            self._widget = StepperWidget(graph=self.to_json())
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self)}
        if not _in_kernel():
            bundle["text/html"] = self.to_html()
            return bundle
        if live_face() == "widget":
            try:
                w = self.widget()
                wb = w._repr_mimebundle_(include=include, exclude=exclude)
                if isinstance(wb, tuple):
                    wb = wb[0]
                bundle.update({k: v for k, v in (wb or {}).items() if k != "text/plain"})
            except ImportError:
                pass
        # every live output inlines the player: outputs are shown, cleared and reloaded one by one;
        # with the widget, a front end without the widget manager falls back to this HTML
        bundle["text/html"] = self.to_html(assets=True, live=True)
        return bundle


def live_face() -> str:
    """What a stepper displays in a live kernel: ``"html"`` (default) or ``"widget"`` (``KVMLAB_LIVE``)."""
    return "widget" if os.environ.get("KVMLAB_LIVE", "").strip().lower() in ("widget", "anywidget") else "html"


def _in_kernel() -> bool:
    """True in a live IPython kernel that is not building the static book."""
    if static_mode():
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None
