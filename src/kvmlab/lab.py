"""Grading a learner's variant with the explorer: ``grade(model, variant, ...)``.

::

    from kvmlab.lab import grade
    mine = kvmlab.model("lost_update").variant("plain").derive("mine", "my fix", programs={"worker": MyInc})
    report = grade("lost_update", mine, params=[{"cpus": 2, "loops": 1}, {"cpus": 3, "loops": 1}])
    report.passed      # True when every run is complete and clean
    report             # in a notebook: a table, and the counterexample timeline when not yet

A wrong variant is never an exception: it is a "not yet" verdict with the
shortest counterexample. A learner's program that raises a Python exception
is an "error" verdict naming the CPU, the step (its C line) and the
interleaving that reached it. Bad arguments (unknown model, config or
param names) still raise :class:`kvmlab.KvmlabError`: they are the author's.
"""

from __future__ import annotations

import html
import itertools
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

from .engine import Blocked, Explorer, KvmlabError, Result, System, Variant, Violation
from .engine.model import Model

__all__ = ["GradeReport", "LearnerError", "Run", "grade"]

PASS, NOT_YET, INCOMPLETE, ERROR = "pass", "not yet", "incomplete", "error"


class _Crash(Exception):
    """A learner's step raised: the state before it, the thread, the path there, the exception."""

    def __init__(self, key, tid, exc, path):
        super().__init__(str(exc))
        self.key, self.tid, self.exc, self.path = key, tid, exc, path


def _find_crash(sys: System, max_states: int) -> _Crash | None:
    """Breadth-first search for the first step that raises a Python exception (shortest path)."""
    prev = {sys.initial: None}
    q = deque([sys.initial])
    while q and len(prev) <= max_states:
        key = q.popleft()
        for tid in range(sys.nthreads):
            if key[2 + tid] is None:
                continue
            try:
                outs = sys.expand(key, tid)
            except Blocked:
                continue
            except Exception as e:
                path, k = [], key
                while prev[k] is not None:
                    k, m = prev[k]
                    path.append(m)
                return _Crash(key, tid, e, path[::-1])
            for mv, w in outs:
                nk = w.key()
                if nk not in prev:
                    prev[nk] = (key, mv)
                    if not any(ev.fatal for ev in w.events):
                        q.append(nk)
    return None


@dataclass
class LearnerError:
    """Where a learner's program raised."""

    cpu: str
    step: str
    c_line: str
    function: str
    exception: str
    message: str
    schedule: list[str] | None
    where: str
    traceback: str

    def __str__(self) -> str:
        sched = "" if self.schedule is None else f" after schedule [{','.join(self.schedule)}]"
        return (f"{self.cpu} raised {self.exception}: {self.message}\n"
                f"    in step '{self.step}' ({self.c_line}) of {self.function}(){sched}\n"
                f"    {self.where}")


@dataclass
class Run:
    """One check of the learner's variant in one configuration."""

    config: dict
    params: dict
    verdict: str
    result: Result | None = None
    failed: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    error: LearnerError | None = None
    system: System | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def settings(self) -> str:
        parts = [f"{k}={'y' if v else 'n'}" for k, v in self.config.items()]
        parts += [f"{k}={v}" for k, v in self.params.items()]
        return " ".join(parts) or "defaults"

    def first_violation(self) -> Violation | None:
        if self.result is None:
            return None
        for v in self.result.violations:
            if v.property in self.failed:
                return v
        return None


class GradeReport:
    """The verdict of :func:`grade`: ``.passed``, ``.runs``; prints and displays."""

    def __init__(self, model: str, variant: str, runs: list[Run], must_hold: list[str] | None):
        self.model = model
        self.variant = variant
        self.runs = runs
        self.must_hold = must_hold

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.passed for r in self.runs)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def first_failure(self) -> Run | None:
        return next((r for r in self.runs if not r.passed), None)

    @property
    def counterexample(self) -> Violation | None:
        f = self.first_failure
        return f.first_violation() if f else None

    def timeline(self):
        """The first failure's shortest counterexample as a diagram (None if there is none)."""
        f = self.first_failure
        v = f.first_violation() if f else None
        if v is None:
            return None
        from .diagrams import timeline
        return timeline(v, f.system, title=f"shortest counterexample for {v.property}")

    def headline(self) -> str:
        if self.passed:
            return (f"PASSED: {self.variant} holds "
                    f"{'every property' if not self.must_hold else ', '.join(self.must_hold)} in "
                    f"{len(self.runs)} configuration{'s' if len(self.runs) != 1 else ''}")
        f = self.first_failure
        if f.verdict == ERROR:
            return f"ERROR: your code raised an exception ({f.settings()})"
        if f.verdict == INCOMPLETE:
            return f"NOT YET: the search did not finish ({f.result.stopped_by}; {f.settings()})"
        return f"NOT YET: {', '.join(f.failed)} violated ({f.settings()})"

    def __str__(self) -> str:
        lines = [f"grade {self.model} / {self.variant}: {self.headline()}"]
        for r in self.runs:
            extra = ""
            if r.result is not None:
                extra = f"  ({r.result.states} states, {r.result.seconds:.2f} s)"
            why = ""
            if r.failed:
                why = "  violated: " + ", ".join(r.failed)
            if r.other:
                why += "  (also, not graded: " + ", ".join(r.other) + ")"
            lines.append(f"  [{r.verdict:^10}] {r.settings()}{extra}{why}")
        f = self.first_failure
        if f is not None and f.error is not None:
            lines.append(str(f.error))
        v = self.counterexample
        if v is not None:
            lines.append(f"shortest counterexample for {v.property}: {v.message}")
            for st in v.trace:
                ch = f"  [{', '.join(st['choices'])}]" if st.get("choices") else ""
                lines.append(f"  {st['n']:>3}. {st['label']}: {st['c']}{ch}")
            if v.splat:
                lines.append(v.splat)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        e = html.escape
        ok = self.passed
        cls = "kv-pass" if ok else "kv-notyet"
        rows = []
        for r in self.runs:
            counts = "" if r.result is None else f"{r.result.states:,} states · {r.result.seconds:.2f} s"
            why = ", ".join(r.failed)
            if r.other:
                why += (" " if why else "") + f"(not graded: {', '.join(r.other)})"
            if r.verdict == INCOMPLETE and r.result is not None:
                why = f"search stopped: {r.result.stopped_by}"
            icon = {PASS: "✓", NOT_YET: "✗", INCOMPLETE: "?", ERROR: "⚠"}[r.verdict]
            rows.append(f"<tr><td>{e(r.settings())}</td><td><strong>{icon} {e(r.verdict)}</strong></td>"
                        f"<td>{e(counts)}</td><td>{e(why)}</td></tr>")
        out = [_CSS, f'<div class="kvmlab-grade {cls}" role="status">',
               f'<div class="kv-headline"><strong>{"✓" if ok else "✗"} {e(self.headline())}</strong></div>',
               '<table class="kv-table"><thead><tr><th>configuration</th><th>verdict</th><th>search</th>'
               f'<th>details</th></tr></thead><tbody>{"".join(rows)}</tbody></table>']
        f = self.first_failure
        if f is not None and f.error is not None:
            out.append(f'<pre class="kv-error">{e(str(f.error))}</pre>')
        v = self.counterexample
        if v is not None:
            out.append(f"<p>Shortest counterexample for <code>{e(v.property)}</code> ({len(v.schedule)} steps): "
                       f"{e(v.message)}</p>")
            try:
                out.append(self.timeline()._repr_html_())
            except Exception:
                items = "".join(f"<li>{e(st['label'])}: <code>{e(st['c'])}</code></li>" for st in v.trace)
                out.append(f"<ol>{items}</ol>")
            if v.splat:
                out.append(f'<pre class="kv-splat">{e(v.splat)}</pre>')
        out.append("</div>")
        return "".join(out)


_CSS = """<style>
.kvmlab-grade{border:2px solid;border-radius:6px;padding:.5rem .75rem;margin:.5rem 0}
.kvmlab-grade.kv-pass{border-color:#1a7f37}.kvmlab-grade.kv-notyet{border-color:#cf222e}
.kvmlab-grade .kv-table{border-collapse:collapse;margin:.4rem 0;font-size:.9rem}
.kvmlab-grade .kv-table th,.kvmlab-grade .kv-table td{border:1px solid rgba(128,128,128,.45);padding:.15rem .45rem;
text-align:left}
.kvmlab-grade pre{white-space:pre-wrap;font-size:.8rem;max-height:18rem;overflow:auto}
</style>"""


def _as_list(x) -> list:
    if x is None:
        return [None]
    if isinstance(x, dict):
        return [x]
    return list(x)


def _model_cls(model) -> type[Model]:
    from .api import model as get_model
    if isinstance(model, str):
        return get_model(model)
    if isinstance(model, type) and issubclass(model, Model):
        return model
    raise KvmlabError(f"grade: model must be a name or a Model class, not {model!r}")


def _learner_error(sys: System, crash: _Crash) -> LearnerError:
    exc = crash.exc
    prog = sys.programs[crash.tid]
    t = sys.load(crash.key).thread(crash.tid)
    st = prog.steps[t["_pc"]]
    tb = traceback.extract_tb(exc.__traceback__)
    mine = [fr for fr in tb if "/kvmlab/" not in fr.filename.replace("\\", "/")]
    fr = (mine or tb)[-1] if tb else None
    where = f"at {fr.filename}, line {fr.lineno}: {fr.line}" if fr else ""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return LearnerError(prog.label, st.name, st.text, st.fn, type(exc).__name__, str(exc), crash.path, where,
                        "".join(traceback.format_list(mine or tb)) + text)


def grade(model, variant: str | Variant, *, params: dict | list[dict] | None = None,
          configs: dict | list[dict] | None = None, must_hold: list[str] | str | None = None,
          max_states: int = 200_000, max_seconds: float | None = 120.0) -> GradeReport:
    """Check ``variant`` in every combination of ``configs`` x ``params``.

    ``must_hold``: the properties that grade (default: all; others found are
    listed but do not fail the grade). Returns a :class:`GradeReport`.
    """
    cls = _model_cls(model)
    if isinstance(variant, str):
        variant = cls.variant(variant)
    if not isinstance(variant, Variant):
        raise KvmlabError(f"grade: variant must be a Variant or a variant name, not {variant!r}")
    if isinstance(must_hold, str):
        must_hold = [must_hold]
    runs: list[Run] = []
    for cfg, prm in itertools.product(_as_list(configs), _as_list(params)):
        try:
            sys = System(cls, variant, cfg, prm)
        except KvmlabError as e:
            msg = str(e)
            if "unknown config" in msg or "unknown param" in msg or msg.startswith("param ") \
                    or msg.startswith("config "):
                raise
            runs.append(Run(dict(cfg or {}), dict(prm or {}), ERROR, error=_setup_error(e)))
            continue
        except Exception as e:  # the learner's Program class failed while the model set up
            runs.append(Run(dict(cfg or {}), dict(prm or {}), ERROR, error=_setup_error(e)))
            continue
        config = {k: sys.config[k] for k in (cfg or {})}
        t0 = time.perf_counter()
        try:
            res = Explorer(sys, max_states=max_states, max_seconds=max_seconds).run()
        except Exception as e:  # a learner's step raised (or a property check tripped over its data)
            crash = _find_crash(sys, max_states)
            if crash is not None:
                err = _learner_error(sys, crash)
            else:
                err = _setup_error(e)
                err.cpu, err.function = "(property check)", "the model's checks"
                err.step, err.c_line = "(checking properties)", f"after {time.perf_counter() - t0:.1f} s of search"
            runs.append(Run(config, dict(sys.params), ERROR, error=err, system=sys))
            continue
        props = [v.property for v in res.violations]
        if must_hold is None:
            failed, other = props, []
        else:
            failed = [p for p in props if p in must_hold]
            other = [p for p in props if p not in must_hold]
        if failed:
            verdict = NOT_YET
        elif not res.complete:
            verdict = INCOMPLETE
        else:
            verdict = PASS
        runs.append(Run(config, dict(sys.params), verdict, res, failed, other, system=sys))
    return GradeReport(cls.name, variant.name, runs, must_hold)


def _setup_error(e: BaseException) -> LearnerError:
    tb = traceback.extract_tb(e.__traceback__)
    mine = [fr for fr in tb if "/kvmlab/" not in fr.filename.replace("\\", "/")]
    fr = (mine or tb)[-1] if tb else None
    where = f"at {fr.filename}, line {fr.lineno}: {fr.line}" if fr else ""
    text = "".join(traceback.format_exception_only(type(e), e)).strip()
    return LearnerError("(setup)", "(setup)", "", "setup", type(e).__name__, str(e), None, where,
                        "".join(traceback.format_list(mine or tb)) + text)
