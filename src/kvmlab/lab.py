"""Grading a learner's variant with the explorer: ``grade(model, variant, ...)``.

::

    from kvmlab.lab import grade
    mine = kvmlab.model("lost_update").variant("plain").derive("mine", "my fix", programs={"worker": MyInc})
    report = grade("lost_update", mine, params=[{"cpus": 2, "loops": 1}, {"cpus": 3, "loops": 1}])
    report.passed      # True when every run is complete and clean
    report             # in a notebook: a table, and the counterexample timeline when not yet

The labs of the book are graded through :mod:`kvmlab.labs`, whose settings
are sealed; this module is the machinery under it, open for exploring.

A wrong variant is never an exception: it is a FAIL verdict with the
shortest counterexample. Progress (``terminates``: every thread finishes) is
judged in every run unless a run says otherwise, so code that never finishes
fails. A learner's step that raises, or does not return within the step time
limit, is an error verdict naming the CPU, the step (its C line) and the
interleaving that reached it. Bad arguments (unknown model, config, param or
property names) raise :class:`kvmlab.KvmlabError`: they are the caller's.
"""

from __future__ import annotations

import html
import itertools
import traceback
from dataclasses import dataclass, field

from .engine import Explorer, KvmlabError, Result, System, Variant, Violation
from .engine.errors import ConfigError, StepCrash
from .engine.explorer import PROGRESS, STEP_TIMEOUT
from .engine.model import Model
from .engine.watchdog import check_limit

__all__ = ["GradeReport", "LearnerError", "Run", "RunSpec", "grade", "known_properties"]

PASS, FAIL, INCOMPLETE, ERROR = "pass", "fail", "incomplete", "error"


@dataclass
class LearnerError:
    """Where a learner's program raised (or never returned)."""

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
        sched = "" if self.schedule is None else (f" after schedule [{','.join(self.schedule)}]"
                                                  if self.schedule else " as its first step")
        if self.exception == "StepTimeout":
            head = f"{self.cpu}: step '{self.step}' ({self.c_line}) did not return ({self.message})"
        else:
            head = (f"{self.cpu} raised {self.exception}: {self.message}\n"
                    f"    in step '{self.step}' ({self.c_line}) of {self.function}()")
        return f"{head}{sched}" + (f"\n    {self.where}" if self.where else "")

    @classmethod
    def from_crash(cls, c: StepCrash) -> LearnerError:
        return cls(c.label, c.step, c.c_line, c.function, c.exception, str(c.cause), list(c.schedule), c.where,
                   c.learner_traceback)

    @classmethod
    def from_setup(cls, e: BaseException) -> LearnerError:
        tb = traceback.extract_tb(e.__traceback__)
        mine = [fr for fr in tb if "/kvmlab/" not in fr.filename.replace("\\", "/")]
        fr = (mine or tb)[-1] if tb else None
        where = f"at {fr.filename}, line {fr.lineno}: {fr.line}" if fr else ""
        text = "".join(traceback.format_exception_only(type(e), e)).strip()
        return cls("(setup)", "(setup)", "", "setup", type(e).__name__, str(e), None, where,
                   "".join(traceback.format_list(mine or tb)) + text)


@dataclass(frozen=True)
class RunSpec:
    """One sealed configuration of a lab: config switches, params, whether progress is judged."""

    config: dict
    params: dict
    progress: bool = True
    note: str = ""


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
    progress: bool = True
    fairness: str = "none"
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def settings(self) -> str:
        parts = [f"{k}={'y' if v else 'n'}" for k, v in self.config.items()]
        parts += [f"{k}={v}" for k, v in self.params.items()]
        return " ".join(parts) or "defaults"

    def assumption(self) -> str:
        return (f"progress under {self.fairness} fairness" if self.progress
                else "safety only, progress not judged" + (f" ({self.note})" if self.note else ""))

    def first_violation(self) -> Violation | None:
        if self.result is None:
            return None
        for v in self.result.violations:
            if v.property in self.failed:
                return v
        return None


def known_properties(cls: type[Model]) -> dict[str, str]:
    """Every property a check of ``cls`` can report, with its description."""
    from .kernel import KERNEL_PROPERTIES
    out = dict(KERNEL_PROPERTIES)
    out[cls.stuck_property] = out.get(cls.stuck_property, "no thread waits forever")
    out.update(cls.properties)
    out.setdefault(PROGRESS, "every thread finishes (no endless loop or livelock)")
    return out


class GradeReport:
    """The verdict of :func:`grade`: ``.passed``, ``.runs``; prints, displays, exports."""

    def __init__(self, model: str, variant: str, runs: list[Run], must_hold: list[str] | None, *,
                 lab: str | None = None, descriptions: dict[str, str] | None = None,
                 unreached: list[str] | None = None, problem: str | None = None):
        self.model = model
        self.variant = variant
        self.runs = runs
        self.must_hold = must_hold
        self.lab = lab
        self.descriptions = descriptions or {}
        self.unreached = unreached or []  # learner steps that never ran in any configuration (a note)
        self.problem = problem  # a failure found outside the runs (e.g. a wrong return type)

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.passed for r in self.runs) and self.problem is None

    def __bool__(self) -> bool:
        return self.passed

    @property
    def first_failure(self) -> Run | None:
        return next((r for r in self.runs if not r.passed), None)

    @property
    def counterexample(self) -> Violation | None:
        f = self.first_failure
        return f.first_violation() if f else None

    @property
    def states(self) -> int:
        return sum(r.result.states for r in self.runs if r.result is not None)

    @property
    def failed_property(self) -> str | None:
        f = self.first_failure
        if f is not None and f.failed:
            return f.failed[0]
        return None

    def bounds(self) -> str:
        """The configurations and assumptions a PASS holds within, in words."""
        if not self.runs:
            return "no configuration"
        groups: dict[str, list[str]] = {}
        for r in self.runs:
            groups.setdefault(r.assumption(), []).append(r.settings())
        return "; ".join(f"{' | '.join(v)} ({k})" for k, v in groups.items())

    def timeline(self):
        """The first failure's shortest counterexample as a diagram (None if there is none)."""
        f = self.first_failure
        v = f.first_violation() if f else None
        if v is None:
            return None
        from .diagrams import timeline
        return timeline(v, f.system, title=f"shortest counterexample for {v.property}")

    def headline(self) -> str:
        n = len(self.runs)
        if self.passed:
            return (f"PASS: no violation in {self.states:,} states, in {n} configuration"
                    f"{'s' if n != 1 else ''}: {self.bounds()}")
        if not self.runs:
            return "FAIL: nothing was checked (no configuration)"
        if self.problem is not None:
            return f"FAIL: {self.problem}"
        f = self.first_failure
        if f.verdict == ERROR:
            e = f.error
            if e is not None and e.exception == "StepTimeout":
                return f"FAIL: step '{e.step}' ({e.c_line}) did not return ({f.settings()})"
            return f"FAIL: your code raised {e.exception if e else 'an exception'} ({f.settings()})"
        if f.verdict == INCOMPLETE:
            return f"FAIL: the search did not finish ({f.result.stopped_by}; {f.settings()})"
        prop = f.failed[0]
        desc = self.descriptions.get(prop, "")
        return f"FAIL: {prop} violated{f' ({desc})' if desc else ''} ({f.settings()})"

    def message(self) -> str:
        """The headline plus, for a failure, what went wrong in one or two lines."""
        head = self.headline()
        f = self.first_failure
        if self.passed or f is None:
            if self.unreached:
                head += (f"\nNote: your step{'s' if len(self.unreached) > 1 else ''} "
                         f"{', '.join(self.unreached)} never ran in these configurations.")
            return head
        if f.error is not None:
            return f"{head}\n{f.error}"
        v = f.first_violation()
        if v is not None:
            return f"{head}\n{v.message} (shortest counterexample: {len(v.schedule)} steps)"
        return head

    def __str__(self) -> str:
        title = f"grade {self.lab} ({self.model} / {self.variant})" if self.lab else \
            f"grade {self.model} / {self.variant}"
        lines = [f"{title}: {self.headline()}"]
        for r in self.runs:
            extra = ""
            if r.result is not None:
                extra = f"  ({r.result.states} states, {r.result.seconds:.2f} s, {r.assumption()})"
            why = ""
            if r.failed:
                why = "  violated: " + ", ".join(r.failed)
            if r.other:
                why += "  (also, not graded: " + ", ".join(r.other) + ")"
            lines.append(f"  [{r.verdict:^10}] {r.settings()}{extra}{why}")
        if self.unreached:
            lines.append("  note: never ran in these configurations: " + ", ".join(self.unreached))
        f = self.first_failure
        if f is not None and f.error is not None:
            lines.append(str(f.error))
        v = self.counterexample
        if v is not None:
            lines.append(f"shortest counterexample for {v.property}: {v.message}")
            for i, st in enumerate(v.trace):
                if v.loop_start is not None and i == v.loop_start:
                    lines.append("  -- from here the steps repeat forever --")
                ch = f"  [{', '.join(st['choices'])}]" if st.get("choices") else ""
                lines.append(f"  {st['n']:>3}. {st['label']}: {st['c']}{ch}")
            if v.splat:
                lines.append(v.splat)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def to_json(self) -> dict:
        """The verdict as JSON-ready data (what ``kvmlab grade --format json`` prints)."""
        v = self.counterexample
        f = self.first_failure
        return {
            "lab": self.lab, "model": self.model, "variant": self.variant,
            "passed": self.passed, "property": self.failed_property,
            "states": self.states, "message": self.message(), "bounds": self.bounds(),
            "unreached_steps": list(self.unreached),
            "runs": [{"settings": r.settings(), "config": r.config, "params": r.params, "verdict": r.verdict,
                      "properties": self._graded(r),
                      "states": r.result.states if r.result else 0,
                      "seconds": round(r.result.seconds, 4) if r.result else 0.0,
                      "assumption": r.assumption(), "failed": list(r.failed), "other": list(r.other),
                      "stopped_by": r.result.stopped_by if r.result else None,
                      "error": str(r.error) if r.error else None} for r in self.runs],
            "counterexample": None if v is None else {
                "property": v.property, "message": v.message, "schedule": list(v.schedule),
                "loop_start": v.loop_start, "splat": v.splat, "settings": f.settings(),
                "steps": [{"n": st["n"], "cpu": st["label"], "fn": st["fn"], "c": st["c"],
                           "choices": st.get("choices", [])} for st in v.trace]},
            "error": str(f.error) if f is not None and f.error is not None else None,
            "problem": self.problem,
        }

    def _graded(self, r: Run) -> list[str]:
        """The properties that grade run ``r``."""
        if self.must_hold is not None:
            return [p for p in self.must_hold if r.progress or p != PROGRESS]
        if r.result is not None:
            return list(r.result.properties) + [p for p in r.failed if p not in r.result.properties]
        return [p for p in self.descriptions if r.progress or p != PROGRESS]

    def stepper_data(self, max_states: int = 20000) -> dict | None:
        """The stepper's graph JSON for the first failing configuration, its goal the violated property."""
        f = self.first_failure
        v = self.counterexample
        if f is None or v is None or f.system is None:
            return None
        from .export import export_graph
        try:
            return export_graph(f.system, max_states=max_states, goal_property=v.property,
                                goal=f"The grader's counterexample: {v.property} ({f.settings()}).")
        except KvmlabError:
            return None

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
            icon = {PASS: "✓", FAIL: "✗", INCOMPLETE: "?", ERROR: "⚠"}[r.verdict]
            rows.append(f"<tr><td>{e(r.settings())}</td><td>{e(r.assumption())}</td>"
                        f"<td><strong>{icon} {e(r.verdict)}</strong></td>"
                        f"<td>{e(counts)}</td><td>{e(why)}</td></tr>")
        from .diagrams import theme
        out = [theme.style_tag(), f'<div class="kvmlab-grade {cls}" role="status">',
               f'<div class="kv-headline"><strong>{"✓" if ok else "✗"} {e(self.headline())}</strong></div>',
               '<table class="kv-table"><thead><tr><th>configuration</th><th>judged</th><th>verdict</th>'
               f'<th>search</th><th>details</th></tr></thead><tbody>{"".join(rows)}</tbody></table>']
        if self.unreached:
            out.append(f'<pre class="kv-error">{e(self.message())}</pre>')
        f = self.first_failure
        if f is not None and f.error is not None:
            out.append(f'<pre class="kv-error">{e(str(f.error))}</pre>')
        v = self.counterexample
        if v is not None:
            loop = (f" From step {v.loop_start + 1} on, the steps repeat forever."
                    if v.loop_start is not None else "")
            out.append(f"<p>Shortest counterexample for <code>{e(v.property)}</code> ({len(v.schedule)} steps): "
                       f"{e(v.message)}{e(loop)}</p>")
            try:
                out.append(self.timeline()._repr_html_())
            except Exception:  # no Graphviz here: the steps as a list
                items = "".join(f"<li>{e(st['label'])}: <code>{e(st['c'])}</code></li>" for st in v.trace)
                out.append(f"<ol>{items}</ol>")
            if v.splat:
                out.append(f'<pre class="kv-splat">{e(v.splat)}</pre>')
        out.append("</div>")
        return "".join(out)


def _as_list(x, what: str) -> list:
    if x is None:
        return [None]
    if isinstance(x, dict):
        return [x]
    if isinstance(x, list | tuple) and all(isinstance(i, dict) or i is None for i in x):
        return list(x)
    raise KvmlabError(f"grade: {what} must be a dict or a list of dicts, not {x!r:.60}")


def _model_cls(model) -> type[Model]:
    from .api import model as get_model
    if isinstance(model, str):
        return get_model(model)
    if isinstance(model, type) and issubclass(model, Model):
        return model
    raise KvmlabError(f"grade: model must be a name or a Model class, not {model!r:.60}")


def _must_hold(cls: type[Model], must_hold) -> list[str] | None:
    if must_hold is None:
        return None
    if isinstance(must_hold, str):
        must_hold = [must_hold]
    if not isinstance(must_hold, list | tuple | set | frozenset) or not all(isinstance(p, str) for p in must_hold):
        raise KvmlabError(f"grade: must_hold must be property names, not {must_hold!r:.60}")
    known = known_properties(cls)
    unknown = sorted(set(must_hold) - set(known))
    if unknown:
        raise KvmlabError(f"grade: unknown propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
                          f"(known for {cls.name}: {', '.join(sorted(known))})")
    if not must_hold:
        raise KvmlabError("grade: must_hold is empty: nothing would be graded")
    return list(must_hold)


def grade(model, variant: str | Variant, *, params: dict | list[dict] | None = None,
          configs: dict | list[dict] | None = None, must_hold: list[str] | str | None = None,
          max_states: int = 200_000, max_seconds: float | None = 120.0, progress: bool = True,
          fairness: str | None = None, step_timeout: float | None = STEP_TIMEOUT,
          runs: list[RunSpec] | None = None, learner_classes: tuple = (), lab: str | None = None) -> GradeReport:
    """Check ``variant`` in every combination of ``configs`` x ``params`` (or in ``runs``).

    ``must_hold``: the properties that grade (default: all, ``terminates``
    included when ``progress``; others found are listed but do not fail the
    grade). ``learner_classes``: the learner's Program classes; a step they
    define that never runs in any configuration fails the grade. Returns a
    :class:`GradeReport`.
    """
    cls = _model_cls(model)
    if isinstance(variant, str):
        variant = cls.variant(variant)
    if not isinstance(variant, Variant):
        raise KvmlabError(f"grade: variant must be a Variant or a variant name, not {variant!r:.60}")
    must_hold = _must_hold(cls, must_hold)
    check_limit(max_seconds, "max_seconds")
    if runs is None:
        runs = [RunSpec(dict(c or {}), dict(p or {}), progress)
                for c, p in itertools.product(_as_list(configs, "configs"), _as_list(params, "params"))]
    if not runs:
        raise KvmlabError("grade: no configuration to check")
    out: list[Run] = []
    reached: dict[tuple[type, int], bool] = {}
    full_runs = 0
    stalled: LearnerError | None = None
    for spec in runs:
        try:
            sys = System(cls, variant, spec.config, spec.params)
        except ConfigError:
            raise
        except Exception as e:  # the learner's Program class failed while the model set up
            out.append(Run(dict(spec.config), dict(spec.params), ERROR, error=LearnerError.from_setup(e),
                           progress=spec.progress, note=spec.note))
            continue
        config = {k: sys.config[k] for k in spec.config}
        ex = Explorer(sys, max_states=max_states, max_seconds=max_seconds, fairness=fairness,
                      liveness=spec.progress, step_timeout=step_timeout)
        if stalled is not None:  # a step already never returned: it would not here either
            out.append(Run(config, dict(sys.params), ERROR, error=stalled, system=sys, progress=spec.progress,
                           fairness=ex.fairness, note="not run: a step did not return in an earlier configuration"))
            continue
        try:
            res = ex.run()
        except StepCrash as c:
            err = LearnerError.from_crash(c)
            if c.timeout:
                stalled = err
            out.append(Run(config, dict(sys.params), ERROR, error=err, system=sys,
                           progress=spec.progress, fairness=ex.fairness, note=spec.note))
            continue
        except KvmlabError as e:  # the learner's code broke a rule of the model outside a step
            out.append(Run(config, dict(sys.params), ERROR, error=LearnerError.from_setup(e), system=sys,
                           progress=spec.progress, fairness=ex.fairness, note=spec.note))
            continue
        if spec.progress and res.complete:
            full_runs += 1
            for tid, prog in enumerate(sys.programs):
                for k in res.reached.get(tid, ()):
                    reached[type(prog), k] = True
        props = [v.property for v in res.violations]
        if must_hold is None:
            failed, other = props, []
        else:
            failed = [p for p in props if p in must_hold]
            other = [p for p in props if p not in must_hold]
        verdict = FAIL if failed else (INCOMPLETE if not res.complete else PASS)
        out.append(Run(config, dict(sys.params), verdict, res, failed, other, system=sys,
                       progress=spec.progress, fairness=ex.fairness, note=spec.note))
    unreached = _unreached(learner_classes, reached) if full_runs else []
    return GradeReport(cls.name, variant.name, out, must_hold, lab=lab, descriptions=known_properties(cls),
                       unreached=unreached)


def _unreached(learner_classes, reached) -> list[str]:
    """Steps written in the learner's own classes whose line no explored state ever reached."""
    out = []
    for lc in learner_classes:
        if not (isinstance(lc, type) and getattr(lc, "_order", None)):
            continue
        own = [n for n, v in vars(lc).items() if getattr(v, "_kvmlab_line", None) is not None]
        for name in own:
            if name not in lc._order:
                continue
            k = lc._order.index(name)
            hit = any(r for (c, pc), r in reached.items() if pc == k and issubclass(c, lc))
            used = any(issubclass(c, lc) for c, _ in reached)
            if used and not hit:
                out.append(f"{lc.__name__}.{name}")
    return out

