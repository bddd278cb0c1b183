"""``kvmlab bench``: time every model's default check, and compare with SPIN.

The SPIN comparison runs the Promela models of ``apf_wake`` (shipped in
``benchmarks/spin/``, from the project's shared benchmark folder) and
``kvmlab check apf_wake`` on the same configurations in one run. Each side
runs in its own process so that peak memory (max RSS) is measured fairly.
SPIN's time is pan's own search time (compiling pan.c is not counted);
ours is the explorer's search time as reported by ``check``.

Our state counts at ``reduction=local`` are at SPIN's granularity (SPIN's
``d_step`` bodies are the model's ``local`` steps merged into the shared
step before them); SPIN also stores a state for every process that has
returned but not yet been removed, which we drop. ``reduction=full`` adds
the Lipton transactions on ``b->lock``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (SPIN file, our variant, pan flags); flawed needs -c0 to count the whole space
SPIN_PAIRS = [("original.pml", "original", []), ("flawed.pml", "unlock_alloc", ["-c0"]),
              ("fixed.pml", "recheck", [])]
# what the Promela models check: end-state validity + the asserts on duplicates and leaks
SPIN_PROPERTIES = ("no_lost_wakeup", "no_duplicate_token", "no_leak")
CONFIGS_FULL = [(1, 1, 1), (2, 1, 1), (3, 2, 1), (3, 3, 1)]
CONFIGS_QUICK = [(1, 1, 1), (2, 1, 1), (2, 2, 1)]
GOAL_CONFIGS = {(3, 2, 1), (3, 3, 1)}


def find_spin_dir(explicit: str | None = None) -> Path | None:
    cands = [explicit] if explicit else []
    here = Path(__file__).resolve()
    cands += [os.environ.get("KVMLAB_SPIN_DIR"), here.parents[2] / "benchmarks" / "spin",
              Path.cwd() / "benchmarks" / "spin", Path.cwd().parent / "shared" / "bench" / "spin"]
    for c in cands:
        if c and (Path(c) / "fixed.pml").exists():
            return Path(c)
    return None


def _maxrss_kb(argv: list[str], cwd: str | None = None, timeout: float = 900) -> tuple[str, int, float]:
    """Run a command, return (stdout, max RSS in KiB, wall seconds)."""
    t0 = time.perf_counter()
    if Path("/usr/bin/time").exists():
        p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS=%M"] + argv, cwd=cwd, capture_output=True,
                           text=True, timeout=timeout)
        m = re.search(r"MAXRSS=(\d+)", p.stderr)
        rss = int(m.group(1)) if m else -1
    else:
        import resource
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        rss = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    if p.returncode not in (0, 1, 3):
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr[-500:]}")
    return p.stdout, rss, time.perf_counter() - t0


def run_spin(spin_dir: Path, pml: str, nw: int, nk: int, maxfail: int, flags: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="kvmlab-spin-") as tmp:
        for f in spin_dir.glob("*.pml"):
            shutil.copy(f, tmp)
        subprocess.run(["spin", f"-DNW={nw}", f"-DNK={nk}", f"-DMAXFAIL={maxfail}", "-a", pml], cwd=tmp,
                       check=True, capture_output=True)
        subprocess.run(["gcc", "-w", "-O2", "-DSAFETY", "-DNOREDUCE", "-o", "pan", "pan.c"], cwd=tmp,
                       check=True, capture_output=True)
        out, rss, _ = _maxrss_kb(["./pan", "-m10000", "-w20"] + flags, cwd=tmp)
    states = int(re.search(r"(\d+) states, stored", out).group(1))
    secs = float(re.search(r"elapsed time ([\d.e+-]+) seconds", out).group(1))
    errors = int(re.search(r"errors: (\d+)", out).group(1))
    return {"states": states, "seconds": secs, "max_rss_mb": round(rss / 1024, 1), "errors": errors}


def run_ours(variant: str, nw: int, nk: int, maxfail: int, reduction: str) -> dict:
    red = {"full": True, "local": "local", "none": False}[reduction]
    code = (f"import json,kvmlab;r=kvmlab.check('apf_wake',{variant!r},params=dict(waiters={nw},wakers={nk},"
            f"alloc_failures={maxfail}),reduction={red!r},max_states=50_000_000,liveness=False);"
            "print(json.dumps({'states':r.states,'transitions':r.transitions,'seconds':r.seconds,"
            "'violated':[v.property for v in r.violations],'complete':r.complete}))")
    env = dict(os.environ, PYTHONHASHSEED="0")
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    if Path("/usr/bin/time").exists():
        p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS=%M", sys.executable, "-c", code], capture_output=True,
                           text=True, env=env, timeout=1800)
        m = re.search(r"MAXRSS=(\d+)", p.stderr)
        rss = int(m.group(1)) if m else -1
    else:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
        rss = -1
    if p.returncode != 0:
        raise RuntimeError(f"kvmlab check failed: {p.stderr[-800:]}")
    d = json.loads(p.stdout.strip().splitlines()[-1])
    d["max_rss_mb"] = round(rss / 1024, 1)
    d["wall"] = round(time.perf_counter() - t0, 3)
    return d


def model_timings() -> list[dict]:
    from . import api
    rows = []
    for m in api.list_models():
        for v in m["variants"]:
            t0 = time.perf_counter()
            r = api.check(m["name"], v["name"], max_states=500_000)
            rows.append({"model": m["name"], "variant": v["name"], "states": r.states,
                         "transitions": r.transitions, "seconds": round(r.seconds, 4),
                         "wall": round(time.perf_counter() - t0, 4), "complete": r.complete,
                         "violated": [x.property for x in r.violations]})
    return rows


def run_bench(json_out: bool = False, quick: bool = False, spin_dir: str | None = None) -> int:
    report: dict = {"models": model_timings(), "spin": [], "spin_note": None}
    if not json_out:
        print("Default check of every model and variant")
        print(f"{'model':<16} {'variant':<24} {'states':>9} {'trans':>10} {'seconds':>8}  verdict")
        for r in report["models"]:
            verdict = "ok" if not r["violated"] and r["complete"] else (
                ", ".join(r["violated"]) or "incomplete")
            print(f"{r['model']:<16} {r['variant']:<24} {r['states']:>9} {r['transitions']:>10} "
                  f"{r['seconds']:>8.3f}  {verdict}")
    sd = find_spin_dir(spin_dir)
    if sd is None or not shutil.which("spin") or not shutil.which("gcc"):
        report["spin_note"] = "SPIN comparison skipped: needs Debian 'spin' and 'gcc' and benchmarks/spin/*.pml"
    else:
        for nw, nk, mf in (CONFIGS_QUICK if quick else CONFIGS_FULL):
            for pml, variant, flags in SPIN_PAIRS:
                if (nw, nk, mf) == (3, 3, 1) and variant != "recheck" and quick:
                    continue
                spin = run_spin(sd, pml, nw, nk, mf, flags)
                local = run_ours(variant, nw, nk, mf, "local")
                full = run_ours(variant, nw, nk, mf, "full")
                row = {"config": f"{nw}/{nk}/{mf}", "spin_model": pml, "variant": variant, "spin": spin,
                       "ours_local": local, "ours_full": full,
                       "time_ratio": round(full["seconds"] / max(spin["seconds"], 1e-3), 2),
                       "memory_ratio": round(full["max_rss_mb"] / max(spin["max_rss_mb"], 1), 2),
                       "goal": (nw, nk, mf) in GOAL_CONFIGS}
                report["spin"].append(row)
    if json_out:
        print(json.dumps(report, indent=2))
        return 0
    print()
    if report["spin_note"]:
        print(report["spin_note"])
        return 0
    print("apf_wake against SPIN (pan -DSAFETY -DNOREDUCE; search seconds; max RSS)")
    print(f"{'W/K/F':<6} {'variant':<13} {'SPIN states':>11} {'s':>7} {'MB':>6} | {'ours@local':>10} | "
          f"{'ours@full':>9} {'s':>7} {'st/s':>8} {'MB':>6} | {'time x':>6} {'mem x':>6}")
    for r in report["spin"]:
        s, lo, fu = r["spin"], r["ours_local"], r["ours_full"]
        rate = int(fu["states"] / max(fu["seconds"], 1e-6))
        mark = "  <- goal: time x <= 3, mem x <= 2" if r["goal"] else ""
        print(f"{r['config']:<6} {r['variant']:<13} {s['states']:>11} {s['seconds']:>7.2f} {s['max_rss_mb']:>6.0f} | "
              f"{lo['states']:>10} | {fu['states']:>9} {fu['seconds']:>7.2f} {rate:>8} {fu['max_rss_mb']:>6.0f} | "
              f"{r['time_ratio']:>6.2f} {r['memory_ratio']:>6.2f}{mark}")
    print("\nours@local: same granularity as the Promela models (SPIN also stores a state per returned-but-"
          "not-removed process);\nours@full: plus Lipton transactions on b->lock. On the properties SPIN "
          "checks (no lost wake-up,\nno duplicate, no leak) the verdicts agree: flawed/unlock_alloc violated, "
          "the others clean\n(original also breaks no_sleep_in_atomic: PREEMPT_RT=y).")
    return 0
