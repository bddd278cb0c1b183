"""A control panel for classroom notebooks: ``kvmlab.explore(model)``.

ipywidgets controls for the model's variant, each kernel config switch and each parameter
(within its bounds). Every change re-runs the explorer and redraws the verdict (with the
counterexample timeline) and the stepper; a progress bar counts states during long checks.
It needs a live kernel with ipywidgets; the static book shows plain steppers instead.
"""

from __future__ import annotations

import html
import time
from typing import Any

from ..engine import KvmlabError

STEPPER_STATES = 20_000  # above this the panel shows the verdict without a stepper


class Panel:
    """The controls and outputs; ``widget`` is the ipywidgets box to display."""

    def __init__(self, model, variant: str | None = None, *, config: dict | None = None,
                 params: dict | None = None, max_states: int = 2_000_000, stepper: bool = True):
        import ipywidgets as W

        from .. import api
        from ..engine import Variant
        self.cls = api.model(model) if isinstance(model, str) else model
        cls = self.cls
        # the model's variants, plus one given as a Variant (a learner's code, a drill's mutant)
        self.known = {v.name: v for v in cls.variants}
        if isinstance(variant, Variant):
            self.known = {variant.name: variant, **self.known}
            variant = variant.name
        self.max_states = max_states
        self.show_stepper = stepper
        style = {"description_width": "initial"}
        if variant is not None and variant not in self.known:
            cls.variant(variant)  # the model's own clear error
        self.variant = W.Dropdown(options=[(f"{v.name}{' (buggy)' if v.buggy else ''}", v.name)
                                           for v in self.known.values()],
                                  value=variant or cls.variants[0].name, description="variant", style=style)
        self.configs: dict[str, Any] = {}
        for k, c in cls.configs.items():
            val = (config or {}).get(k, c.default)
            self.configs[k] = W.Checkbox(value=bool(val), description=k, tooltip=c.help, indent=False)
        self.params: dict[str, Any] = {}
        for k, p in cls.params.items():
            val = (params or {}).get(k, p.default)
            if p.choices is not None:
                self.params[k] = W.Dropdown(options=list(p.choices), value=p.parse(k, val), description=k,
                                            tooltip=p.help, style=style)
            else:
                self.params[k] = W.IntSlider(value=p.parse(k, val), min=p.lo, max=p.hi, description=k,
                                             tooltip=p.help, style=style, continuous_update=False)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="40%"))
        self.status = W.HTML(value="")
        self.verdict = W.Output()
        self.stepper = W.Output()
        for w in [self.variant, *self.configs.values(), *self.params.values()]:
            w.observe(self._changed, names="value")
        controls = W.VBox([self.variant, *self.configs.values(), *self.params.values()])
        self.widget = W.VBox([W.HTML(f"<strong>{html.escape(cls.name)}</strong>: {html.escape(cls.title)}"),
                              controls, W.HBox([self.progress, self.status]), self.verdict, self.stepper])
        self.widget.add_class("kvmlab-panel")
        self.result = None
        self.run()

    # -- state ---------------------------------------------------------------------------------
    def settings(self) -> tuple[str, dict, dict]:
        return (self.variant.value, {k: w.value for k, w in self.configs.items()},
                {k: w.value for k, w in self.params.items()})

    def _changed(self, _change) -> None:
        self.run()

    def _tick(self, states: int, transitions: int) -> None:
        now = time.perf_counter()
        if now - self._last < 0.2:
            return
        self._last = now
        self.progress.max = max(self.progress.max, states * 2)
        self.progress.value = states
        self.status.value = f"exploring: {states:,} states, {transitions:,} transitions, {now - self._t0:.1f} s"

    def run(self) -> None:
        """Re-run the explorer with the current settings and redraw everything."""
        from .. import api
        from .summary import summary
        variant, config, params = self.settings()
        self._t0 = self._last = time.perf_counter()
        self.progress.value, self.progress.max = 0, 1
        self.progress.bar_style = "info"
        self.status.value = "exploring..."
        try:
            system = api.load(self.cls, self.known[variant], config, params)
            from ..engine import Explorer
            r = Explorer(system, max_states=self.max_states, progress=self._tick).run()
        except KvmlabError as e:
            self.result = None
            self.progress.bar_style = "danger"
            self.status.value = f"<span class='kvmlab-panel-verdict'>error: {html.escape(str(e))}</span>"
            self.verdict.clear_output()
            self.stepper.clear_output()
            return
        self.result = r
        self.progress.max = max(r.states, 1)
        self.progress.value = r.states
        self.progress.bar_style = "success" if r.ok else ("warning" if not r.complete else "danger")
        self.verdict.clear_output(wait=True)
        with self.verdict:
            from IPython.display import display
            display(summary(r, system=system))
        self.stepper.clear_output(wait=True)
        if self.show_stepper:
            self._draw_stepper(variant, config, params, r)
        # last: once the headline shows the new verdict, everything below it is redrawn
        self.status.value = f"<span class='kvmlab-panel-verdict'>{html.escape(self.headline())}</span>"

    def _draw_stepper(self, variant, config, params, r) -> None:
        from .stepper import Stepper
        with self.stepper:
            from IPython.display import HTML, display
            first = min(r.violations, key=lambda v: len(v.schedule)) if r.violations else None
            try:
                st = Stepper(self.cls, self.known[variant], config=config, params=params,
                             goal_property=first.property if first else None, max_states=STEPPER_STATES)
            except KvmlabError as e:
                display(HTML(f"<p>No stepper for this configuration: {html.escape(str(e))}</p>"))
                return
            display(HTML(st.to_html(assets=True, live=True)))

    def headline(self) -> str:
        """One line: the verdict with the bounds it depends on."""
        r = self.result
        if r is None:
            return ""
        bounds = ", ".join([f"{k}={'y' if v else 'n'}" for k, v in r.config.items()]
                           + [f"{k}={v}" for k, v in r.params.items()]) or "defaults"
        if r.violations:
            return (f"{r.variant}: breaks {', '.join(v.property for v in r.violations)} "
                    f"({r.states:,} states; {bounds}; fairness {r.fairness})")
        if not r.complete:
            return f"{r.variant}: no verdict, the search stopped at {r.stopped_by} ({r.states:,} states; {bounds})"
        return f"{r.variant}: all properties hold ({r.states:,} states; {bounds}; fairness {r.fairness})"

    def static_html(self) -> str:
        """What the static book shows in place of the widgets: the verdict for these settings."""
        return (f"<p><em>In a live notebook this is a control panel (variant, kernel configs, parameters) "
                f"that re-runs the explorer on every change. Here: {html.escape(self.headline())}.</em></p>")

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        from ..diagrams.theme import static_mode
        display(HTML(self.static_html()) if static_mode() else self.widget)


def explore(model, variant: str | None = None, **kw) -> Panel:
    """Controls for ``model`` (variant, configs, params) that re-run the explorer on every change."""
    return Panel(model, variant, **kw)


class _GraphStepper:
    """A stepper for an already exported graph (``GradeReport.stepper_data()``)."""

    def __init__(self, data: dict, id: str):
        from .stepper import Stepper
        self._st = Stepper.__new__(Stepper)
        self._st.data, self._st.id, self._st._widget = data, id, None
        self._st.system = self._st.graph = None

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self._st._repr_mimebundle_(include, exclude)

    def to_html(self, **kw) -> str:
        return self._st.to_html(**kw)


class _Note:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"


def grade_stepper(report, id: str | None = None):
    """The stepper on a lab report's first failing configuration, set to the grader's counterexample."""
    if report.passed:
        return _Note("Your code passed: there is no counterexample to step through.")
    data = report.stepper_data()
    if data is None:
        return _Note("No stepper for this report (the code did not run, or the configuration is too large).")
    return _GraphStepper(data, id or f"grade-{data.get('model', 'lab')}")
