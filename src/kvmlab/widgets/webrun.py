"""What the runnable lab pages call in the browser (Pyodide, in a Web Worker).

Each function takes and returns plain JSON text, so the worker passes
strings only. The same functions run natively (tests, the benchmark), so the
browser and the command line grade with the same code: ``kvmlab.labs``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from typing import Any

MAX_OUTPUT = 20000  # characters of the learner's print() output kept in a result


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def _as_dict(x: Any) -> Any:
    return json.loads(x) if isinstance(x, str) else x


def _property_words(lab, prop: str | None) -> str | None:
    if not prop:
        return None
    try:
        from .. import api
        return dict(api.model(lab.model).properties).get(prop) or None
    except Exception:
        return None


def info() -> str:
    """Versions of Python and kvmlab, and the lab ids."""
    from .._version import __version__
    try:
        from .. import labs
        ids = [lab.id for lab in _all_labs(labs)]
    except ImportError:
        ids = []
    return _dumps({"python": sys.version.split()[0], "kvmlab": __version__, "labs": ids})


def _all_labs(labs) -> list:
    seq = labs.LABS.values() if isinstance(labs.LABS, dict) else labs.LABS
    return [labs.get(x) if isinstance(x, str) else x for x in seq]


def lab_page_data(lab_id: str) -> dict[str, Any]:
    """What a lab page embeds: id, title, starter, names, bounds (never the solution)."""
    from .. import labs
    lab = labs.get(lab_id)
    bounds = getattr(lab, "bounds", None)
    if callable(bounds):
        bounds = bounds()
    if isinstance(bounds, str):
        bounds = [bounds]
    return {"id": lab.id, "title": lab.title, "model": lab.model, "starter": lab.starter,
            "names": list(lab.names), "bounds": list(bounds) if bounds else None}


def grade(lab_id: str, source: str) -> str:
    """Grade ``source`` (the answer cell) with ``kvmlab.labs.grade_source``; JSON text.

    Keys: ``report`` (``GradeReport.to_json()``), ``stepper`` (the player's
    graph for the first failing configuration, or null), ``words`` (the
    violated property in words), ``output`` (what the code printed),
    ``seconds`` (grading time here).
    """
    from .. import labs
    out = io.StringIO()
    t0 = time.perf_counter()
    try:
        lab = labs.get(lab_id)
    except Exception as e:  # unknown lab id: a clear error, never a traceback
        return _dumps({"report": {"lab": lab_id, "passed": False, "property": None, "states": 0,
                                  "message": f"unknown lab {lab_id!r}", "error": str(e)},
                       "stepper": None, "words": None, "output": "", "seconds": 0.0})
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            report = labs.grade_source(lab_id, source)
        except Exception as e:  # SubmissionError (syntax, missing names, a crash at import) and the like
            from ..engine import KvmlabError
            msg = str(e) if isinstance(e, KvmlabError) else f"{type(e).__name__}: {e}"
            return _dumps({"report": {"lab": lab.id, "passed": False, "property": None, "states": 0,
                                      "message": f"ERROR: {msg}", "error": msg, "counterexample": None},
                           "stepper": None, "words": None, "output": out.getvalue()[:MAX_OUTPUT],
                           "seconds": time.perf_counter() - t0})
        rep = _as_dict(report.to_json())
        try:
            stepper = report.stepper_data()
        except Exception as e:  # the verdict stands; only the picture is missing
            stepper = None
            rep.setdefault("notes", []).append(f"no stepper: {e}")
    seconds = time.perf_counter() - t0
    text = out.getvalue()
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + f"\n... ({len(text) - MAX_OUTPUT} more characters)"
    return _dumps({"report": rep, "stepper": _as_dict(stepper) if stepper is not None else None,
                   "words": _property_words(lab, rep.get("property")), "output": text,
                   "seconds": seconds})


def explore(request: str) -> str:
    """A stepper graph for ``{"model", "variant", "config", "params", "max_states"}``; JSON text.

    Bad settings give ``{"error": message}``.
    """
    from ..engine import KvmlabError
    from ..export import export_graph
    try:
        req = json.loads(request)
        data = export_graph(req["model"], req.get("variant"), req.get("config") or None,
                            req.get("params") or None, max_states=int(req.get("max_states") or 20000),
                            **{k: req[k] for k in ("goal", "goal_property", "title", "stepper_id") if k in req})
    except (KvmlabError, KeyError, ValueError, TypeError) as e:
        return _dumps({"error": f"{type(e).__name__}: {e}" if not isinstance(e, KvmlabError) else str(e)})
    return _dumps(data)


def selftest() -> str:
    """A check of chapter 0's model: proves the runtime works (states, verdict, seconds)."""
    from .. import api
    t0 = time.perf_counter()
    r = api.check("lost_update", "plain")
    return _dumps({"states": r.states, "violated": [v.property for v in r.violations],
                   "seconds": time.perf_counter() - t0})


TRY_PREAMBLE = "import kvmlab\nfrom kvmlab.engine import DONE, Program, line\n"


def _report_dict(report) -> dict[str, Any]:
    """``GradeReport.to_json()``, or the same keys from its fields (older reports)."""
    if hasattr(report, "to_json"):
        return _as_dict(report.to_json())
    v = report.counterexample
    f = report.first_failure
    return {"passed": report.passed, "property": v.property if v else None,
            "states": sum(r.result.states for r in report.runs if r.result is not None),
            "message": report.headline(), "bounds": "; ".join(r.settings() for r in report.runs),
            "counterexample": ({"property": v.property, "message": v.message, "schedule": list(v.schedule)}
                               if v else None),
            "error": str(f.error) if f is not None and f.error is not None else None}


def _stepper_for(report) -> dict | None:
    if hasattr(report, "stepper_data"):
        return _as_dict(report.stepper_data())
    f = report.first_failure
    v = report.counterexample
    if f is None or v is None or f.system is None:
        return None
    from ..engine.graph import explore as explore_graph
    from ..export import graph_json
    return graph_json(explore_graph(f.system, 20000), goal_property=v.property)


def try_variant(spec: str, source: str) -> str:
    """Check the learner's ``source`` as a new variant (a chapter exercise's "try it here"); JSON text.

    ``spec``: ``{"model", "variant" (the base), "program" (the role it replaces), "name" (the
    class the source defines), "params": [dict, ...], "configs": [dict, ...] or null}``.
    Same result keys as :func:`grade`.
    """
    from .. import api
    from ..lab import grade as lab_grade
    out = io.StringIO()
    t0 = time.perf_counter()

    def fail(msg: str) -> str:
        return _dumps({"report": {"passed": False, "property": None, "states": 0, "message": f"ERROR: {msg}",
                                  "error": msg, "counterexample": None},
                       "stepper": None, "words": None, "output": out.getvalue(),
                       "seconds": time.perf_counter() - t0})

    try:
        sp = json.loads(spec)
        model, base, role, name = sp["model"], sp["variant"], sp["program"], sp["name"]
    except (ValueError, KeyError, TypeError) as e:
        return fail(f"bad exercise spec ({type(e).__name__}: {e})")
    ns: dict[str, Any] = {"__name__": "__answer__"}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            exec(compile(TRY_PREAMBLE, "<preamble>", "exec"), ns)
            exec(compile(source, "<your code>", "exec"), ns)
        except SyntaxError as e:
            return fail(f"SyntaxError: {e.msg} (line {e.lineno})")
        except Exception as e:
            return fail(f"{type(e).__name__}: {e}")
        cls = ns.get(name)
        if not isinstance(cls, type):
            return fail(f"your code must define the class {name}")
        try:
            v = api.model(model).variant(base)
            if role not in v.programs:
                return fail(f"program {role!r}: not a program of {model}/{base} (known: {', '.join(v.programs)})")
            mine = v.derive("mine", f"your {name}", programs={role: cls}, buggy=False)
            report = lab_grade(model, mine, params=sp.get("params") or None, configs=sp.get("configs") or None)
            rep = _report_dict(report)
            stepper = None if rep.get("passed") else _stepper_for(report)
        except Exception as e:  # a bad spec or a learner error the grader did not catch
            return fail(f"{type(e).__name__}: {e}")
    words = None
    if rep.get("property"):
        words = dict(api.model(model).properties).get(rep["property"]) or None
    return _dumps({"report": rep, "stepper": stepper, "words": words, "output": out.getvalue()[:MAX_OUTPUT],
                   "seconds": time.perf_counter() - t0})
