#!/usr/bin/env python3
"""Branch coverage of the model steps over the configurations the chapters check.

For each model, run the explorer on every configuration listed in
:data:`CONFIGS` (the ones its chapter and its tests check) under coverage.py
with branch measurement, and report, per function of ``models/<model>.py``
and per kernel-library function (``kernel/*.py``) the model entered, how many
branches some explored state took and which ones none did. Every step method
of the model file is reported, entered or not; other functions (helpers,
kernel library) only if some configuration called them.

    PYTHONPATH=src .venv/bin/python tools/model_coverage.py                 # every model
    PYTHONPATH=src .venv/bin/python tools/model_coverage.py zone_device --json

A branch here is a coverage.py arc out of a line with more than one
successor (an ``if`` taken or not, a loop entered or left). Exit codes:
0 report printed, 2 bad input (unknown model), 4 coverage.py missing.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile

# model -> list of (variant, params, config): what the chapters and their tests check.
# A model not listed here is measured on every variant with default params and config.
CONFIGS: dict[str, list[tuple[str, dict, dict]]] = {
    "zone_device": [
        (v, {"user": u, **extra}, {})
        for v in ("reserved_pfn", "refcounted", "unpinned_check")
        for u in ("kvm", "kvm_exit", "mmap")
        for extra in ({}, {"vcpus": 2})
        if not (u == "mmap" and extra)
    ] + [
        # the chapter's exercises: old guards with the fixed kvm_is_reserved_pfn(), and the old
        # accessed guard alone
        ("@old_guards", {"user": "kvm_exit"}, {}),
        ("@old_accessed", {"user": "kvm_exit"}, {}),
        ("@no_retry", {"user": "kvm"}, {}),
        ("@no_retry", {"user": "kvm_exit"}, {}),
        ("@early_put", {"user": "kvm"}, {}),
        ("@early_put", {"user": "kvm_exit"}, {}),
        ("@pgmap_instead", {"user": "kvm"}, {}),
        ("@lab_starter", {"user": "kvm"}, {}),
    ],
    "fast_pf": [
        (v, {}, c)
        for v in ("indirect_sp", "direct_sp_only", "clear_plain", "clear_xchg",
                  "flush_if_was_writable", "flush_if_lockless_writable")
        for c in ({}, {"AD_BITS": False})
    ],
    "tdp_root_put": [
        (v, {"readers": r, "writer": wr, "putter_lock": lock}, {})
        for v in ("v3", "dec_not_one", "no_invalid_check", "merged", "v3_gift", "worker", "preserved",
                  "v3_fastzap", "unreachable", "unreachable_yield")
        for (r, wr) in ((0, 0), (0, 1), (1, 1))
        for lock in ("write", "read")
    ] + [
        ("merged", {"readers": 2, "writer": 1, "putter_lock": "write"}, {}),
        ("merged", {"readers": 1, "writer": 1, "fastzap": "worker"}, {}),
        ("merged", {"readers": 1, "writer": 1, "fastzap": "worker", "putter_lock": "read"}, {}),
        ("@v3_gift_old_root", {"readers": 0, "writer": 0}, {}),
        ("@preserved_one_ref", {"readers": 0, "writer": 0}, {}),
    ],
}


# Branches of the chapters' models that no configuration above takes, each with the reason; the
# chapters name them (tests/test_model_coverage.py keeps this list, the measurement and the
# chapters in step). Keys are the functions whose logic branches stay untaken.
NOT_COVERED: dict[str, dict[str, str]] = {
    "zone_device": {
        "FaultPath.get_pgmap": "gup never meets a killed pgmap while the user PTE is still there: "
                               "kill_dev_dax() zaps the PTE before memunmap_pages() kills the pgmap",
        "FaultPathFixed.thp": "the report branch is the bug the fix removed: the fixed guard never lets "
                              "the device pfn through",
        "LabStarter.release": "the lab starter never puts the device page (PageReserved() is always true "
                              "for it): that is the starter's bug",
        "PgmapInstead.release": "the model's one page is always a ZONE_DEVICE page, so the wrong fix's "
                                "else branches never run",
        "Teardown.remove": "arch_remove_memory() runs only after pgmap->done, so the pgmap count is 0 "
                           "there (the check is for a learner's variant that breaks the wait)",
        "VmExit.unmap": "QEMU unmaps only after its vCPU threads exited, and the teardown zaps the PTE in "
                        "one step, so the page table lock is never busy there",
        "zap_warn": "the WARN_ON() of mmu_spte_clear_track_bits() cannot fire for the device page: when its "
                    "page_count() is 0, kvm_is_zone_device_pfn() WARNs and returns false, so "
                    "kvm_is_reserved_pfn() says reserved and the outer condition is false",
        "kvm_is_zone_device_pfn": "it is never asked about a pfn whose memmap is gone: every caller in "
                                  "these configurations checks pfn_valid() first or holds the page",
    },
    "fast_pf": {
        "ClearXchg.accessed": "the SPTE the host clears always has its Accessed bit (the document's start "
                              "state: spte.Accessed = 1)",
        "ClearXchg.rmap": "the host clears a present SPTE (one clear per run)",
        "FastPathDirect.store": "one guest store per run: the TLB holds a translation only after that store",
        "HostABA.reuse": "pfn1 is pinned only in the exercise that pins it (ch5-ex-pin)",
        "HostABA.zap": "the swap-out finds the SPTE present and accessed (the document's start state)",
        "WriteProtectLockless.check": "the host write-protects once, starting from an MMU-writable SPTE",
        "WriteProtectLockless.upd_accessed": "write-protection never clears the Accessed bit",
        "WriteProtectLockless.upd_flush": "the value write-protection replaces was always locklessly "
                                          "modifiable, so the flush is always needed",
        "owner": "the pfn always belongs to some gfn when the model asks",
    },
    "tdp_root_put": {
        "FastZapGift.f_get": "the fast zap holds mmu_lock for write, and a root with count 0 is on the list "
                             "only while its putter holds mmu_lock: the WARN never fires",
        "FastZapGiftWorker.f_get": "as for FastZapGift.f_get",
        "FastZapWorker.f_get": "as for FastZapGift.f_get",
        "Writer.w_get": "the writer holds mmu_lock for write, so (as for the fast zap) it never meets a "
                        "root whose count is 0",
        "FastZapPreserved.f_check": "one fast zap per run, and in 2023 only it invalidates a valid root",
        "_queue_zap_work": "a root's work item is queued once, on its valid-to-invalid transition",
    },
}

# a missed branch on one of these lines is a safety net (after a fatal report, or a set-up
# assertion), not kernel logic
# chapters 0 to 3: their configurations, named gaps and shared model files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_coverage_ch0_3 import CONFIGS as _CONFIGS_03  # noqa: E402
from model_coverage_ch0_3 import EXTRA_FILES  # noqa: E402
from model_coverage_ch0_3 import NOT_COVERED as _NOT_COVERED_03  # noqa: E402

CONFIGS.update(_CONFIGS_03)
NOT_COVERED.update(_NOT_COVERED_03)

_DEFENSIVE = ("_touch(", "has_obj(", "if root is None:", "!= PAGE", "!= GUEST_PAGE", "elif hs:")
_HOOKS = ("setup", "invariants", "end_checks", "describe_state", "_holders")


def logic_gaps(rep: dict) -> dict[str, list]:
    """The model file's functions with untaken branches that are kernel logic (not safety nets)."""
    out = {}
    for path, f in rep["files"].items():
        if "/models/" not in path.replace(os.sep, "/"):
            continue
        for name, e in f["functions"].items():
            if name.split(".")[-1] in _HOOKS:
                continue
            miss = [m for m in e["missing"] if not any(d in m["line"] for d in _DEFENSIVE)]
            if miss:
                out[name] = miss
    return out


def _derived(model: str, name: str):
    """The chapters' derived variants, named ``@name`` in :data:`CONFIGS`."""
    import kvmlab
    m = kvmlab.model(model)
    if model == "zone_device":
        from kvmlab.models import zone_device as zd
        if name == "old_guards":
            return zd.guards_variant("old", "old")
        if name == "old_accessed":
            return zd.guards_variant("new", "old")
        progs = {"no_retry": zd.NoRetry, "early_put": zd.EarlyPut, "pgmap_instead": zd.PgmapInstead,
                 "lab_starter": zd.LabStarter}
        if name in progs:
            return zd.lab_variant(progs[name], name)
    if model == "tdp_root_put":
        if name == "v3_gift_old_root":
            return m.variant("v3_gift").derive(name, "root exists before the fast zap",
                                               flags={"vcpu_creates": False})
        if name == "preserved_one_ref":
            return m.variant("preserved").derive(name, "no TDP MMU reference", flags={"mmu_ref": False})
    raise SystemExit(f"model_coverage: unknown derived variant @{name} of {model}")


def configs_for(model: str) -> list[tuple[str, dict, dict]]:
    import kvmlab
    if model in CONFIGS:
        return CONFIGS[model]
    return [(v.name, {}, {}) for v in kvmlab.model(model).variants]


def _functions(path: str) -> list[tuple]:
    """(name, first line, last line, is a step, first body line, takes ``w``) of every function in ``path``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = []

    def visit(node, prefix):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef)):
                step = any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "line"
                           for d in ch.decorator_list)
                first = min([ch.lineno] + [d.lineno for d in ch.decorator_list])
                body = ch.body
                if (len(body) > 1 and isinstance(body[0], ast.Expr)
                        and isinstance(getattr(body[0], "value", None), ast.Constant)):
                    body = body[1:]
                takes_w = any(x.arg == "w" for x in ch.args.args)
                out.append((prefix + ch.name, first, ch.end_lineno, step, body[0].lineno, takes_w))
                visit(ch, prefix + ch.name + ".")
            elif isinstance(ch, ast.ClassDef):
                visit(ch, prefix + ch.name + ".")
    visit(tree, "")
    return out


def _owner(funcs, lineno):
    """The innermost function containing ``lineno``."""
    best = None
    for f in funcs:
        if f[1] <= lineno <= f[2] and (best is None or f[1] >= best[1]):
            best = f
    return best


def measure(model: str, configs=None) -> dict:
    """Run the explorer on ``configs`` under branch coverage; the per-function report as a dict."""
    try:
        import coverage
    except ImportError:
        print("model_coverage: coverage.py is not installed (pip install -r requirements.txt)", file=sys.stderr)
        raise SystemExit(4) from None
    import kvmlab
    from kvmlab import models as models_pkg

    if model not in models_pkg.MODULES:
        raise SystemExit(2)
    pkg = os.path.dirname(os.path.abspath(kvmlab.__file__))
    model_file = os.path.join(pkg, "models", models_pkg.MODULES[model] + ".py")
    kernel_dir = os.path.join(pkg, "kernel")
    configs = configs_for(model) if configs is None else configs

    model_files = [model_file] + [os.path.join(pkg, "models", f) for f in EXTRA_FILES.get(model, [])]
    cov = coverage.Coverage(branch=True, data_file=None, include=[*model_files, os.path.join(kernel_dir, "*.py")])
    runs = []
    cov.start()
    try:
        for variant, params, config in configs:
            v = _derived(model, variant[1:]) if variant.startswith("@") else variant
            r = kvmlab.check(model, v, params=params or None, config=config or None)
            runs.append({"variant": variant, "params": params, "config": config, "states": r.states,
                         "complete": r.complete, "violations": [x.property for x in r.violations]})
    finally:
        cov.stop()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cov.json")
        cov.json_report(outfile=out)
        with open(out, encoding="utf-8") as f:
            data = json.load(f)

    files = {}
    for fname, fd in data["files"].items():
        path = fname if os.path.isabs(fname) else os.path.abspath(fname)
        is_model = any(os.path.samefile(path, m) for m in model_files)
        funcs = _functions(path)
        with open(path, encoding="utf-8") as f:
            src = f.read().splitlines()
        executed = set(fd.get("executed_lines", []))
        per: dict[str, dict] = {}
        for kind, arcs in (("covered", fd.get("executed_branches", [])), ("missing", fd.get("missing_branches", []))):
            for a, b in arcs:
                fn = _owner(funcs, a)
                if fn is None:
                    continue
                entered = any(fn[4] <= ln <= fn[2] for ln in executed)
                if not entered and not (is_model and fn[3]):
                    continue   # a library or helper function this model's steps never call
                if is_model and not fn[3] and not fn[5]:
                    continue   # plumbing that does not run on a world (variant builders, diagrams)
                e = per.setdefault(fn[0], {"step": fn[3], "branches": 0, "covered": 0, "missing": []})
                e["branches"] += 1
                if kind == "covered":
                    e["covered"] += 1
                else:
                    to = "exit" if b < 0 else str(b)
                    e["missing"].append({"from": a, "to": to, "line": src[a - 1].strip()})
        if per:
            rel = os.path.relpath(path, os.path.dirname(pkg))
            files[rel] = {"branches": sum(e["branches"] for e in per.values()),
                          "covered": sum(e["covered"] for e in per.values()),
                          "functions": dict(sorted(per.items(), key=lambda kv: kv[0]))}
    total = sum(f["branches"] for f in files.values())
    covered = sum(f["covered"] for f in files.values())
    rep = {"model": model, "runs": runs, "files": files, "branches": total, "covered": covered}
    rep["logic_gaps"] = sorted(logic_gaps(rep))
    return rep


def _text(rep: dict) -> str:
    lines = [f"== {rep['model']}: {rep['covered']}/{rep['branches']} branches taken "
             f"({100 * rep['covered'] / max(rep['branches'], 1):.1f} %) over {len(rep['runs'])} configurations"]
    for r in rep["runs"]:
        extra = ", ".join(f"{k}={v}" for k, v in {**r["params"], **r["config"]}.items())
        lines.append(f"   {r['variant']}{' (' + extra + ')' if extra else ''}: {r['states']} states"
                     f"{'' if r['complete'] else ' (incomplete)'}"
                     f"{', violated: ' + ', '.join(r['violations']) if r['violations'] else ''}")
    gaps = logic_gaps(rep)
    known = NOT_COVERED.get(rep["model"], {})
    if gaps:
        lines.append("  untaken logic branches of the model (functions):")
        for name in gaps:
            lines.append(f"    {name}: {known.get(name, 'NOT NAMED: reach it with a new configuration or name it')}")
    for path, f in rep["files"].items():
        lines.append(f"  {path}: {f['covered']}/{f['branches']}")
        for name, e in f["functions"].items():
            if not e["missing"]:
                continue
            lines.append(f"    {name}{' (step)' if e['step'] else ''}: {e['covered']}/{e['branches']}")
            for m in e["missing"]:
                lines.append(f"      line {m['from']} -> {m['to']} never taken: {m['line']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="models to measure (default: all)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    a = ap.parse_args(argv)
    from kvmlab import models as models_pkg
    names = a.models or models_pkg.names()
    bad = [n for n in names if n not in models_pkg.MODULES]
    if bad:
        print(f"model_coverage: unknown model {', '.join(bad)} (known: {', '.join(models_pkg.names())})",
              file=sys.stderr)
        return 2
    reps = [measure(n) for n in names]
    if a.json:
        print(json.dumps({"models": reps,
                          "branches": sum(r["branches"] for r in reps),
                          "covered": sum(r["covered"] for r in reps)}, indent=1))
    else:
        for r in reps:
            print(_text(r))
        tb, tc = sum(r["branches"] for r in reps), sum(r["covered"] for r in reps)
        print(f"== overall: {tc}/{tb} branches taken ({100 * tc / max(tb, 1):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
