"""The ``kvmlab`` command: list, check, replay, bench.

Exit codes: 0 all properties hold over the complete space (or success);
1 a violation; 2 bad input; 3 the search stopped at a bound.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import api
from .engine.errors import KvmlabError, ModelError


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
        print()
    return 0


def _print_result(r) -> None:
    cfg = " ".join(f"{k}={'y' if v else 'n'}" for k, v in r.config.items())
    prm = " ".join(f"{k}={v}" for k, v in r.params.items())
    print(f"{r.model} --variant {r.variant}  {cfg}  {prm}".rstrip())
    status = "complete" if r.complete else f"INCOMPLETE (stopped at {r.stopped_by})"
    print(f"  {r.states} states, {r.transitions} transitions, depth {r.depth}, "
          f"{r.seconds:.3f} s, search {status}")
    if not r.violations:
        if r.complete:
            print(f"  all properties hold: {', '.join(r.properties)}")
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
                  fairness=a.fairness)
    if a.json:
        print(json.dumps(r.to_json(), indent=2))
    else:
        _print_result(r)
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
    return run_bench(json_out=a.json, quick=a.quick, spin_dir=a.spin_dir)


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
    s.add_argument("--fairness", choices=("none", "weak", "strong"), default=None,
                   help="assumption for the 'terminates' property")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("replay", help="replay one schedule step by step")
    common(s)
    s.add_argument("--schedule", required=True, help="thread ids, e.g. 0,1,1 (1:fail picks a choice)")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("bench", help="time every model's default check and compare with SPIN")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quick", action="store_true", help="small configurations only")
    s.add_argument("--spin-dir", default=None, help="folder of the SPIN models (default: ../shared/bench/spin)")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    try:
        return a.func(a)
    except ModelError as e:
        print(f"kvmlab: model error: {e}", file=sys.stderr)
        return 2
    except KvmlabError as e:
        print(f"kvmlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
