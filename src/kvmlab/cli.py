"""The ``kvmlab`` command: list, check, replay, grade, bench.

Exit codes: 0 all properties hold over the complete space, a PASS (or success);
1 a violation, a FAIL; 2 bad input (unknown model, lab, config or param, a bad
bound, an illegal schedule, a submission that cannot be loaded); 3 the search
stopped at a bound; 4 the tool itself failed (out of memory, an I/O error);
130 interrupted (after printing the partial result).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from . import api
from .engine.errors import KvmlabError, ModelError, ToolError
from .engine.explorer import FAIRNESS, STEP_TIMEOUT
from .report_formats import FORMATS

EXIT_OK, EXIT_VIOLATION, EXIT_INPUT, EXIT_BOUND, EXIT_TOOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a clear message, like KvmlabError
        self.print_usage(sys.stderr)
        print(f"kvmlab: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _kv(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for it in items or []:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise KvmlabError(f"--{what} {it!r}: expected NAME=VALUE")
        out[k.strip()] = v.strip()
    return out


def _schedule(s: str) -> list[str]:
    items = [x.strip() for x in s.split(",") if x.strip()]
    if not items:
        raise KvmlabError("--schedule is empty: give thread ids like 0,1,1 (1:fail picks a choice)")
    return items


def cmd_list(a) -> int:
    data = api.list_models()
    if a.json:
        print(json.dumps(data, indent=2))
        return 0
    for m in data:
        print(f"{m['name']}: {m['title']}")
        print(f"  source: {m['source']}")
        for v in m["variants"]:
            commit = f" [{v['commit']}]" if v["commit"] else ""
            print(f"  variant {v['name']}{commit}: {v['desc']}")
        for k, c in m["configs"].items():
            print(f"  config {k} (default {'y' if c['default'] else 'n'}): {c['help']}")
        for k, p in m["params"].items():
            rng = " | ".join(p["choices"]) if "choices" in p else f"{p['min']}..{p['max']}"
            print(f"  param {k} (default {p['default']}, {rng}): {p['help']}")
        for k, d in m["properties"].items():
            print(f"  property {k}: {d}")
        print(f"  progress: every thread finishes (terminates), judged under {m['fairness']} fairness")
        print()
    return 0


def _print_result(r) -> None:
    cfg = " ".join(f"{k}={'y' if v else 'n'}" for k, v in r.config.items())
    prm = " ".join(f"{k}={v}" for k, v in r.params.items())
    print(f"{r.model} --variant {r.variant}  {cfg}  {prm}".rstrip())
    status = ("complete" if r.complete else "INCOMPLETE (interrupted by Ctrl-C)" if r.interrupted
              else f"INCOMPLETE (stopped at {r.stopped_by})")
    print(f"  {r.states} states, {r.transitions} transitions, depth {r.depth}, "
          f"{r.seconds:.3f} s, search {status}")
    prog = (f"progress (terminates) judged under {r.fairness} fairness" if r.progress
            else "progress NOT judged (--no-progress)")
    red = "off" if not r.reduction else "local steps" if r.reduction == "local" else "on"
    print(f"  {prog}; reduction {red}")
    if not r.violations:
        if r.complete:
            print(f"  all properties hold within these bounds: {', '.join(r.properties)}")
        return
    for v in r.violations:
        print(f"\n  VIOLATED {v.property}: {v.message}")
        print(f"  shortest counterexample ({len(v.schedule)} steps): --schedule {','.join(v.schedule)}")
        for i, st in enumerate(v.trace):
            mark = "  loop:" if v.loop_start is not None and i == v.loop_start else ""
            if mark:
                print(mark)
            ch = f" [{'+'.join(st['choices'])}]" if st["choices"] else ""
            print(f"    {st['n']:>3}. {st['label']:<6} {st['fn']}: {st['c']}{ch}")
        if v.splat:
            print("\n" + "\n".join("    | " + ln for ln in v.splat.splitlines()))


def cmd_check(a) -> int:
    r = api.check(a.model, a.variant, config=_kv(a.config, "config"), params=_kv(a.param, "param"),
                  max_states=a.max_states, max_seconds=a.max_seconds, reduction=not a.no_reduction,
                  fairness=a.fairness, liveness=not a.no_progress, step_timeout=a.step_timeout)
    if a.json:
        print(json.dumps(r.to_json(), indent=2))
    else:
        _print_result(r)
    if r.interrupted:
        print("kvmlab: interrupted: the result above is partial", file=sys.stderr)
        return EXIT_INTERRUPTED
    return r.exit_code


def cmd_replay(a) -> int:
    tr = api.replay(a.model, a.variant, schedule=_schedule(a.schedule), config=_kv(a.config, "config"),
                    params=_kv(a.param, "param"))
    if a.json:
        print(json.dumps(tr.to_json(), indent=2))
        return 0
    for st in tr.steps:
        ch = f" [{'+'.join(st['choices'])}]" if st["choices"] else ""
        print(f"{st['n']:>3}. {st['label']:<6} {st['fn']}: {st['c']}{ch}")
        for sp in st["splats"]:
            print("\n".join("     | " + ln for ln in sp["text"].splitlines()))
    if tr.steps:
        print("\nstate after the last step:")
        state = tr.steps[-1]["state"]
        for k, v in state["shared"].items():
            print(f"  {k}: {v}")
        for th in state["threads"]:
            where = "done" if th["done"] else f"{th['fn']}: {th['line']}"
            print(f"  {th['label']} ({th['name']}): {where}")
    return 0


def cmd_bench(a) -> int:
    from .bench import run_bench
    if a.spin_dir is not None and not os.path.isdir(a.spin_dir):
        raise KvmlabError(f"--spin-dir {a.spin_dir[:200]!r}: no such folder")
    return run_bench(json_out=a.json, quick=a.quick, spin_dir=a.spin_dir)


def _grade_json(a) -> dict:
    """Grade in this process; the report's JSON form (a submission that cannot load is a FAIL too)."""
    from . import labs
    from .report_formats import submission_error
    lab = labs.get(a.lab)
    try:
        if a.reference:
            path = labs.reference_path(lab.id)
        elif a.submission is None:
            raise KvmlabError("give a SUBMISSION (.py or .ipynb) or --reference")
        else:
            path = a.submission
        report = labs.grade_file(lab.id, path, step_timeout=a.step_timeout)
    except labs.SubmissionError as e:
        d = submission_error(lab.id, str(e))
        d["_exit"] = EXIT_INPUT
        return d
    d = report.to_json()
    d["_exit"] = EXIT_OK if report.passed else EXIT_VIOLATION
    return d


def _grade_child(a) -> dict:
    """Grade in a child process killed after ``--timeout`` seconds (the student's code may never return)."""
    from . import labs
    from .report_formats import submission_error
    lab = labs.get(a.lab)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "kvmlab.cli", "grade", lab.id]
        cmd += ["--reference"] if a.reference else [os.path.abspath(a.submission)] if a.submission else []
        cmd += ["--format", "json", "-o", out]
        if a.step_timeout is not None:
            cmd += ["--step-timeout", str(a.step_timeout)]
        try:
            p = subprocess.run(cmd, timeout=a.timeout, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            d = submission_error(lab.id, f"the submission did not finish within the time limit ({a.timeout:g} s)")
            d["_exit"] = EXIT_VIOLATION
            return d
        if p.returncode not in (EXIT_OK, EXIT_VIOLATION, EXIT_INPUT) or not os.path.exists(out):
            raise ToolError(f"the grading process failed (exit {p.returncode}): "
                            f"{(p.stderr or p.stdout).strip().splitlines()[-1:] or ''}")
        with open(out, encoding="utf-8") as f:
            d = json.load(f)
        d["_exit"] = p.returncode
        return d


def cmd_grade(a) -> int:
    from .engine.watchdog import check_limit
    from .report_formats import render
    if a.timeout is not None:
        a.timeout = check_limit(a.timeout, "--timeout")
    if a.submission is not None and not a.reference and not os.path.exists(a.submission):
        raise KvmlabError(f"{a.submission[:200]}: no such file")
    d = _grade_child(a) if a.timeout is not None else _grade_json(a)
    code = d.pop("_exit")
    text = render(d, a.format)
    if a.output:
        try:
            with open(a.output, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as e:
            raise ToolError(f"cannot write {a.output}: {e.strerror or e}") from None
        if a.format != "json":
            print(d.get("message", "").splitlines()[0] if d.get("message") else "")
    else:
        print(text)
    return code


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kvmlab", description="KVM concurrency bugs: models, explorer, replay.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    s = sub.add_parser("list", help="models, variants, configs, params, properties")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    def common(s):
        s.add_argument("model")
        s.add_argument("--variant", default=None)
        s.add_argument("--config", action="append", metavar="K=V", help="e.g. PREEMPT_RT=y")
        s.add_argument("--param", action="append", metavar="K=N", help="e.g. waiters=2")
        s.add_argument("--json", action="store_true")

    s = sub.add_parser("check", help="explore every interleaving")
    common(s)
    s.add_argument("--max-states", type=int, default=2_000_000)
    s.add_argument("--max-seconds", type=float, default=None)
    s.add_argument("--no-reduction", action="store_true", help="explore without sound reductions")
    s.add_argument("--fairness", choices=FAIRNESS, default=None,
                   help="assumption for the 'terminates' property (default: the model's)")
    s.add_argument("--no-progress", action="store_true",
                   help="do not judge 'terminates' (then the search may use its reductions)")
    s.add_argument("--step-timeout", type=float, default=STEP_TIMEOUT, metavar="S",
                   help=f"a step that runs longer is reported as not returning (default {STEP_TIMEOUT:g})")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("replay", help="replay one schedule step by step")
    common(s)
    s.add_argument("--schedule", required=True, help="thread ids, e.g. 0,1,1 (1:fail picks a choice)")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("grade", help="grade a lab submission with the lab's sealed settings")
    s.add_argument("lab", help="lab0 .. lab6")
    s.add_argument("submission", nargs="?", help="the student's notebook (cells tagged 'answer') or .py file")
    s.add_argument("--reference", action="store_true", help="grade the lab's reference solution")
    s.add_argument("--format", choices=FORMATS, default="text")
    s.add_argument("-o", "--output", metavar="FILE", help="write the report there (e.g. results.json)")
    s.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="hard wall-clock limit for the whole submission (graded in a child process)")
    s.add_argument("--step-timeout", type=float, default=STEP_TIMEOUT, metavar="S",
                   help=f"a step that runs longer fails as not returning (default {STEP_TIMEOUT:g})")
    s.set_defaults(func=cmd_grade)

    s = sub.add_parser("bench", help="time every model's default check and compare with SPIN")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quick", action="store_true", help="small configurations only")
    s.add_argument("--spin-dir", default=None,
                   help="folder of the SPIN models (default: $KVMLAB_SPIN_DIR, else benchmarks/spin)")
    s.set_defaults(func=cmd_bench)
    try:  # the instructor kit's subcommands, when present
        from .cli_teach import add_parsers
    except ImportError:
        pass
    else:
        add_parsers(sub)
    return p


def _err(msg: str) -> None:
    try:
        print(msg, file=sys.stderr)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    try:
        code = a.func(a)
        sys.stdout.flush()
        return code
    except ModelError as e:
        _err(f"kvmlab: model error: {e}")
        return EXIT_INPUT
    except KvmlabError as e:
        _err(f"kvmlab: error: {e}")
        return EXIT_INPUT
    except KeyboardInterrupt:
        _err("kvmlab: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        try:  # nobody reads the rest: silence the interpreter's own complaint at exit
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return EXIT_OK
    except ToolError as e:
        _err(f"kvmlab: failed: {e}")
        return EXIT_TOOL
    except MemoryError:
        _err("kvmlab: failed: out of memory (try smaller params, or --max-states)")
        return EXIT_TOOL
    except OSError as e:
        _err(f"kvmlab: failed: {e.strerror or e} ({getattr(e, 'filename', None) or 'output'})")
        return EXIT_TOOL
    except Exception as e:  # a bug in kvmlab itself: one line, its own exit code
        if os.environ.get("KVMLAB_DEBUG"):
            raise
        _err(f"kvmlab: internal error: {type(e).__name__}: {e} (set KVMLAB_DEBUG=1 for the traceback)")
        return EXIT_TOOL


def entry() -> None:
    """Console entry point: exit with main()'s code, even if stdout is closed or full at exit."""
    code = main()
    try:
        sys.stdout.flush()
    except OSError:
        _err("kvmlab: failed: cannot write the output")
        code = EXIT_TOOL
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
