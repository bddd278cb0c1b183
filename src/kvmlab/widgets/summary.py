"""Displays of check results: ``summary(result)``, ``compare({label: result})``, ``Progress``."""

from __future__ import annotations

import html
import sys
import time

from ..engine import Result


def _verdict(result: Result, prop: str) -> tuple[str, str]:
    v = result.violation(prop)
    if v is not None:
        return "violated", v.message
    if result.complete:
        return "holds", f"in all {result.states} states"
    return "unknown", f"search incomplete ({result.stopped_by})"


def _props(result: Result) -> list[str]:
    props = list(result.properties)
    for v in result.violations:
        if v.property not in props:
            props.append(v.property)
    return props


_ICON = {"violated": "✗", "holds": "✓", "unknown": "?"}


class Summary:
    """Explorer summary: verdict per property, counts, time, counterexample timeline."""

    def __init__(self, result: Result, *, timeline: bool = True, system=None, prop: str | None = None):
        self.result = result
        self.timeline = timeline
        self.system = system
        self.prop = prop

    def _cex(self):
        r = self.result
        if self.prop:
            return r.violation(self.prop)
        return r.violations[0] if r.violations else None

    def __str__(self) -> str:
        r = self.result
        lines = [f"{r.model} / {r.variant}  config {_kv(r.config)}  params {_kv(r.params)}",
                 f"{'complete' if r.complete else 'INCOMPLETE (' + str(r.stopped_by) + ')'}: "
                 f"{r.states} states, {r.transitions} transitions, depth {r.depth}, {r.seconds:.2f} s"]
        for p in _props(r):
            verdict, why = _verdict(r, p)
            lines.append(f"  {_ICON[verdict]} {p}: {verdict} — {why}")
        cex = self._cex()
        if cex is not None:
            lines.append(f"shortest counterexample for {cex.property} ({len(cex.schedule)} steps): "
                         + ",".join(cex.schedule))
            for st in cex.trace:
                lines.append(f"  {st['n']:>3}. {st['label']}: {st['c']}"
                             + (f"  [{', '.join(st['choices'])}]" if st.get("choices") else ""))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        r = self.result
        e = html.escape
        status = ("complete" if r.complete else f"incomplete: {e(str(r.stopped_by))}")
        rows = []
        for p in _props(r):
            verdict, why = _verdict(r, p)
            rows.append(f'<tr class="kv-{verdict}"><td><code>{e(p)}</code></td>'
                        f'<td><strong>{_ICON[verdict]} {verdict}</strong></td><td>{e(why)}</td></tr>')
        out = [_style(), '<div class="kvmlab-out kvmlab-summary">',
               f'<div class="kv-head"><strong>{e(r.model)}</strong> / variant <strong>{e(r.variant)}</strong>'
               f' · config {e(_kv(r.config))} · params {e(_kv(r.params))}</div>',
               f'<div class="kv-counts">{r.states:,} states · {r.transitions:,} transitions · depth {r.depth}'
               f' · {r.seconds:.2f} s · {status}</div>',
               '<table class="kv-table"><thead><tr><th>property</th><th>verdict</th><th>details</th></tr>'
               f'</thead><tbody>{"".join(rows)}</tbody></table>']
        cex = self._cex()
        if cex is not None:
            out.append(f'<div class="kv-cex">Shortest counterexample for <code>{e(cex.property)}</code>: '
                       f'{len(cex.schedule)} steps, schedule <code>{e(",".join(cex.schedule))}</code></div>')
            if self.timeline:
                out.append(_timeline_html(cex, r, self.system))
            if cex.splat:
                out.append(f'<pre class="kv-splat">{e(cex.splat)}</pre>')
        out.append("</div>")
        return "".join(out)


def _timeline_html(cex, result, system) -> str:
    try:
        from ..diagrams import timeline
        return timeline(cex, system if system is not None else result)._repr_html_()
    except Exception as ex:  # graphviz missing or the model cannot be reloaded: a plain list
        items = "".join(f"<li>{html.escape(st['label'])}: <code>{html.escape(st['c'])}</code></li>"
                        for st in cex.trace)
        return f'<ol class="kv-steps" title="{html.escape(str(ex))}">{items}</ol>'


def _style() -> str:
    from ..diagrams import theme
    return theme.style_tag()


def _kv(d: dict) -> str:
    if not d:
        return "-"
    return " ".join(f"{k}={('y' if v else 'n') if isinstance(v, bool) else v}" for k, v in d.items())


def summary(result: Result, *, timeline: bool = True, system=None, prop: str | None = None) -> Summary:
    """Display of a check result (verdict per property, counts, counterexample timeline)."""
    return Summary(result, timeline=timeline, system=system, prop=prop)


class Compare:
    """Side-by-side table of several results (e.g. PREEMPT_RT=n vs y)."""

    def __init__(self, results: dict[str, Result]):
        self.results = dict(results)

    def _props(self) -> list[str]:
        props: list[str] = []
        for r in self.results.values():
            for p in _props(r):
                if p not in props:
                    props.append(p)
        return props

    def __str__(self) -> str:
        labels = list(self.results)
        w = max([len(p) for p in self._props()] + [8])
        lines = [" " * (w + 2) + "  ".join(f"{lb:<22}" for lb in labels)]
        for p in self._props():
            cells = []
            for r in self.results.values():
                verdict, _ = _verdict(r, p)
                cells.append(f"{_ICON[verdict]} {verdict:<20}")
            lines.append(f"{p:<{w}}  " + "  ".join(cells))
        lines.append(f"{'states':<{w}}  " + "  ".join(f"{r.states:<22}" for r in self.results.values()))
        lines.append(f"{'seconds':<{w}}  " + "  ".join(f"{r.seconds:<22.2f}" for r in self.results.values()))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f"<th>{e(lb)}</th>" for lb in self.results)
        rows = []
        for p in self._props():
            cells = []
            for r in self.results.values():
                verdict, why = _verdict(r, p)
                cells.append(f'<td class="kv-{verdict}" title="{e(why)}"><strong>{_ICON[verdict]} {verdict}</strong>'
                             f'<br><small>{e(why)}</small></td>')
            rows.append(f"<tr><td><code>{e(p)}</code></td>{''.join(cells)}</tr>")
        for name, f in (("states", lambda r: f"{r.states:,}"), ("transitions", lambda r: f"{r.transitions:,}"),
                        ("seconds", lambda r: f"{r.seconds:.2f}"),
                        ("search", lambda r: "complete" if r.complete else f"incomplete ({r.stopped_by})")):
            rows.append(f"<tr><td>{name}</td>" + "".join(f"<td>{e(f(r))}</td>" for r in self.results.values())
                        + "</tr>")
        return (_style() + '<div class="kvmlab-out kvmlab-summary"><table class="kv-table"><thead>'
                '<tr><th>property</th>'
                f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def compare(results: dict[str, Result]) -> Compare:
    """Side-by-side table: ``compare({"PREEMPT_RT=n": r1, "PREEMPT_RT=y": r2})``."""
    return Compare(results)


class Progress:
    """Text progress for long checks: ``kvmlab.check(..., progress=Progress())``.

    Prints at most every ``every`` seconds to ``stream`` (stderr), one line,
    overwritten in place on a terminal or notebook.
    """

    def __init__(self, every: float = 0.5, stream=None, label: str = "exploring"):
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.calls = 0

    def __call__(self, states: int, transitions: int) -> None:
        self.calls += 1
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        self.stream.write(f"\r{self.label}: {states:,} states, {transitions:,} transitions, "
                          f"{now - self.t0:.1f} s")
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
