"""A grade report (``GradeReport.to_json()``) as text, JSON, Gradescope ``results.json`` or JUnit XML.

Every format works from the JSON form, so a grade run in a child process (``kvmlab grade --timeout``)
formats the same way as one run in-process. Gradescope and JUnit get one test per configuration and
property, so a submission that breaks one property in one configuration keeps the other points.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

FORMATS = ("text", "json", "gradescope", "junit")


def _tests(d: dict) -> list[dict]:
    """One test per (configuration, property), plus one for a failure outside the runs."""
    out = []
    for r in d.get("runs", []):
        for prop in r.get("properties", []):
            if r["verdict"] == "error":
                ok, why = False, r.get("error") or "your code raised"
            elif r["verdict"] == "incomplete":
                ok, why = False, f"the search did not finish ({r.get('stopped_by')})"
            else:
                ok = prop not in r.get("failed", [])
                why = "" if ok else f"{prop} violated"
                cx = d.get("counterexample")
                if not ok and cx and cx.get("property") == prop and cx.get("settings") == r["settings"]:
                    steps = "\n".join(f"{s['n']:>3}. {s['cpu']}: {s['c']}" for s in cx["steps"])
                    loop = "" if cx.get("loop_start") is None else \
                        f"\n(from step {cx['loop_start'] + 1} on the steps repeat forever)"
                    why = f"{prop} violated: {cx['message']}\nshortest counterexample:\n{steps}{loop}"
            out.append({"name": f"{r['settings']}: {prop}", "ok": ok, "output": why or "holds",
                        "classname": r["settings"]})
    if d.get("problem"):
        out.append({"name": "decisions", "ok": False, "output": d["problem"], "classname": "extra"})
    return out


def gradescope(d: dict) -> dict:
    """Gradescope's autograder ``results.json``: the whole verdict, then one test per configuration and property."""
    tests = _tests(d)
    if not tests:  # the submission could not be graded at all
        return {"score": 0, "max_score": 1, "output": d.get("message", ""), "stdout_visibility": "visible",
                "tests": [{"name": "submission", "score": 0, "max_score": 1, "output": d.get("message", ""),
                           "visibility": "visible", "status": "failed"}]}
    # partial credit per configuration and property, but the whole verdict weighs as much as all of
    # them: an answer that breaks anything scores at most half
    n = len(tests)
    whole = {"name": "every property in every configuration (the lab's verdict)", "score": n if d["passed"] else 0,
             "max_score": n, "output": d.get("message", ""), "visibility": "visible",
             "status": "passed" if d["passed"] else "failed"}
    parts = [{"name": t["name"], "score": 1 if t["ok"] else 0, "max_score": 1, "output": t["output"],
              "visibility": "visible", "status": "passed" if t["ok"] else "failed"} for t in tests]
    return {
        "score": whole["score"] + sum(p["score"] for p in parts),
        "max_score": 2 * n,
        "output": d.get("message", ""),
        "stdout_visibility": "visible",
        "tests": [whole, *parts],
    }


def junit(d: dict) -> str:
    """JUnit XML: a testsuite per lab, a testcase per configuration and property."""
    tests = _tests(d) or [{"name": "submission", "ok": False, "output": d.get("message", ""),
                           "classname": "submission"}]
    suite = ET.Element("testsuite", name=f"kvmlab {d.get('lab') or d.get('model')}", tests=str(len(tests)),
                       failures=str(sum(1 for t in tests if not t["ok"])), errors="0")
    for t in tests:
        case = ET.SubElement(suite, "testcase", name=t["name"], classname=f"{d.get('lab')}.{t['classname']}")
        if not t["ok"]:
            f = ET.SubElement(case, "failure", message=t["output"].splitlines()[0] if t["output"] else "failed")
            f.text = t["output"]
    out = ET.SubElement(suite, "system-out")
    out.text = d.get("message", "")
    return ET.tostring(suite, encoding="unicode")


def text(d: dict) -> str:
    lines = [f"grade {d.get('lab')}: {d.get('message', '')}"]
    for r in d.get("runs", []):
        extra = f"  ({r['states']} states, {r['assumption']})"
        why = ("  violated: " + ", ".join(r["failed"])) if r.get("failed") else ""
        lines.append(f"  [{r['verdict']:^10}] {r['settings']}{extra}{why}")
    cx = d.get("counterexample")
    if cx:
        lines.append(f"shortest counterexample for {cx['property']} ({cx['settings']}): {cx['message']}")
        for i, s in enumerate(cx["steps"]):
            if cx.get("loop_start") is not None and i == cx["loop_start"]:
                lines.append("  -- from here the steps repeat forever --")
            ch = f"  [{', '.join(s['choices'])}]" if s.get("choices") else ""
            lines.append(f"  {s['n']:>3}. {s['cpu']}: {s['c']}{ch}")
        if cx.get("splat"):
            lines.append(cx["splat"])
    return "\n".join(lines)


def render(d: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(d, indent=2)
    if fmt == "gradescope":
        return json.dumps(gradescope(d), indent=2)
    if fmt == "junit":
        return junit(d)
    return text(d)


def submission_error(lab: str, message: str) -> dict:
    """The JSON form of a submission that could not be graded (syntax error, missing class, ...)."""
    return {"lab": lab, "passed": False, "property": None, "states": 0, "message": f"FAIL: {message}",
            "bounds": "", "runs": [], "counterexample": None, "error": message, "problem": None,
            "unreached_steps": []}
