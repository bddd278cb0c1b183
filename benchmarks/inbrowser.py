#!/usr/bin/env python3
"""Benchmark of the runnable labs in headless Chromium (not a test; figures for the README).

For each lab page of the built book: time from opening the page to ``kvmlabLab.ready``
on a cold cache (fresh profile) and a warm one (same profile, second visit), the bytes
the server sent for each visit, and the time to grade the starter and the reference
solution in the browser (Pyodide, in the worker) and natively (CPython, same
``kvmlab.widgets.webrun.grade``), with their ratio. Goals: ready <= 8 s cold,
browser grading <= 3x native, first visit <= 20 MB, later visits <= 1.5 MB.

    PYTHONPATH=src .venv/bin/python benchmarks/inbrowser.py [--labs lab0,lab1] [--repeat 3] [--json FILE]

Exit codes: 0 done (goals missed are reported, not an error), 2 bad input (no built
book, no vendored runtime, unknown lab), 4 the tool failed (Chromium, I/O).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]
GOALS = {"ready_cold_s": 8.0, "ratio": 3.0, "first_visit_mb": 20.0, "later_visit_mb": 1.5}


class _Counting(http.server.SimpleHTTPRequestHandler):
    """Serves the book and adds every byte it writes to ``server.sent``."""

    def setup(self):
        super().setup()
        raw, server = self.wfile, self.server

        class W:
            def write(self, b):
                with server.lock:
                    server.sent += len(b)
                return raw.write(b)

            def __getattr__(self, name):
                return getattr(raw, name)

        self.wfile = W()

    def log_message(self, *a):
        pass


def serve(html: Path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Counting, directory=str(html)))
    httpd.sent = 0
    httpd.lock = threading.Lock()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _labs(wanted: list[str] | None):
    from kvmlab import labs
    seq = labs.LABS.values() if isinstance(labs.LABS, dict) else labs.LABS
    all_labs = [labs.get(x) if isinstance(x, str) else x for x in seq]
    if wanted:
        known = {lab.id for lab in all_labs}
        bad = [w for w in wanted if w not in known]
        if bad:
            raise ValueError(f"unknown lab(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
        all_labs = [lab for lab in all_labs if lab.id in wanted]
    return all_labs


def _page(lab) -> str:
    return str(lab.notebook).removesuffix(".ipynb") + ".html"


def native_seconds(lab_id: str, source: str, repeat: int) -> tuple[float, bool]:
    from kvmlab.widgets import webrun
    times, passed = [], None
    for i in range(repeat + 1):  # the first grading imports kvmlab's modules: not counted
        t0 = time.perf_counter()
        out = json.loads(webrun.grade(lab_id, source))
        if i:
            times.append(time.perf_counter() - t0)
        passed = out["report"]["passed"]
    return statistics.median(times), passed


def visit(ctx, httpd, url: str) -> dict:
    """Open ``url`` in a new tab of ``ctx``; time to ready (from navigation start) and bytes sent."""
    with httpd.lock:
        httpd.sent = 0
    page = ctx.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_function("window.kvmlabLab !== undefined", timeout=60_000)
    ready_ms = page.evaluate("() => kvmlabLab.ready.then(() => performance.now())")
    phases = page.evaluate("kvmlabLab.runtime.info.phases")
    page.wait_for_timeout(300)  # late requests (fonts, icons)
    with httpd.lock:
        sent = httpd.sent
    return {"page": page, "ready_s": ready_ms / 1000, "bytes": sent, "phases": phases}


def browser_grade(page, source: str, repeat: int) -> tuple[float, float, bool]:
    """Median (worker seconds, wall seconds) of grading ``source`` in the page, and the verdict."""
    worker, wall, passed = [], [], None
    for i in range(repeat + 1):  # the first grading imports kvmlab's modules: not counted
        r = page.evaluate("""async (s) => {
            const t0 = performance.now();
            const rt = kvmlabLab.runtime;
            const out = await rt.call({cmd: "grade", lab: kvmlabLab.id, source: s}, 120);
            return {wall: (performance.now() - t0) / 1000, worker: out.seconds, passed: out.report.passed};
        }""", source)
        passed = r["passed"]
        if i:
            worker.append(r["worker"])
            wall.append(r["wall"])
    return statistics.median(worker), statistics.median(wall), passed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book")
    ap.add_argument("--labs", help="comma-separated lab ids (default: all)")
    ap.add_argument("--repeat", type=int, default=3, help="gradings per measurement (median)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        print("inbrowser: error: --repeat must be at least 1", file=sys.stderr)
        return 2
    if not (args.html / "_kvmlab" / "pyodide" / "pyodide.asm.wasm").is_file():
        print(f"inbrowser: error: no runnable-lab runtime in {args.html} (run `make book`)", file=sys.stderr)
        return 2
    try:
        labs = _labs(args.labs.split(",") if args.labs else None)
    except (ImportError, ValueError) as e:
        print(f"inbrowser: error: {e}", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("inbrowser: error: the playwright package is missing", file=sys.stderr)
        return 4
    rows = []
    httpd = serve(args.html)
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        with sync_playwright() as pw:
            for lab in labs:
                # a fresh on-disk profile per lab: cold = empty HTTP cache, warm = the second visit
                # (an in-memory profile does not keep the 9.6 MB WebAssembly file in its cache)
                profile = tempfile.TemporaryDirectory(prefix="kvmlab-inbrowser-")
                ctx = pw.chromium.launch_persistent_context(profile.name, executable_path=CHROMIUM, headless=True,
                                                            args=LAUNCH_ARGS,
                                                            viewport={"width": 1366, "height": 900})
                cold = visit(ctx, httpd, base + _page(lab))
                cold["page"].close()
                warm = visit(ctx, httpd, base + _page(lab))
                page = warm["page"]
                solution = (ROOT / lab.solution).read_text(encoding="utf-8")
                row = {"lab": lab.id, "ready_cold_s": cold["ready_s"], "ready_warm_s": warm["ready_s"],
                       "first_visit_bytes": cold["bytes"], "later_visit_bytes": warm["bytes"],
                       "phases_cold_s": cold["phases"], "phases_warm_s": warm["phases"]}
                for kind, src in (("starter", lab.starter), ("solution", solution)):
                    bw, wall, bpass = browser_grade(page, src, args.repeat)
                    nat, npass = native_seconds(lab.id, src, args.repeat)
                    row[kind] = {"browser_s": bw, "browser_wall_s": wall, "native_s": nat,
                                 "ratio": bw / nat if nat > 0 else None, "passed": bpass, "native_passed": npass}
                rows.append(row)
                ctx.close()
                profile.cleanup()
                ph = " ".join(f"{k} {v:.1f}" for k, v in cold["phases"].items())
                print(f"{lab.id}: ready {row['ready_cold_s']:.1f} s cold ({ph}) / {row['ready_warm_s']:.1f} s warm, "
                      f"{row['first_visit_bytes'] / 1e6:.2f} MB / {row['later_visit_bytes'] / 1e3:.1f} kB",
                      flush=True)
    except Exception as e:  # Chromium or Playwright failed: a clear line, not a traceback
        print(f"inbrowser: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 4
    finally:
        httpd.shutdown()
        httpd.server_close()

    def ok(v, goal):
        return "ok" if v <= goal else "MISSED"

    print()
    print(f"load average when done: {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print("| lab | ready cold s | ready warm s | 1st visit MB | later kB | starter browser/native s (x) | "
          "solution browser/native s (x) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = []
        for kind in ("starter", "solution"):
            k = r[kind]
            ratio = f"{k['ratio']:.1f}" if k["ratio"] is not None else "-"
            cells.append(f"{k['browser_s']:.3f} / {k['native_s']:.3f} ({ratio})")
        print(f"| {r['lab']} | {r['ready_cold_s']:.1f} | {r['ready_warm_s']:.1f} | "
              f"{r['first_visit_bytes'] / 1e6:.2f} | {r['later_visit_bytes'] / 1e3:.1f} | {cells[0]} | {cells[1]} |")
    if rows:
        worst = {"ready_cold_s": max(r["ready_cold_s"] for r in rows),
                 "first_visit_mb": max(r["first_visit_bytes"] for r in rows) / 1e6,
                 "later_visit_mb": max(r["later_visit_bytes"] for r in rows) / 1e6}
        tot_b = sum(r[k]["browser_s"] for r in rows for k in ("starter", "solution"))
        tot_n = sum(r[k]["native_s"] for r in rows for k in ("starter", "solution"))
        worst["ratio"] = tot_b / tot_n if tot_n else 0.0
        print()
        print(f"goals: ready cold {worst['ready_cold_s']:.1f} s (<= 8: {ok(worst['ready_cold_s'], 8)}); "
              f"grading, all labs, browser/native {worst['ratio']:.2f}x (<= 3: {ok(worst['ratio'], 3)}); "
              f"first visit {worst['first_visit_mb']:.2f} MB (<= 20: {ok(worst['first_visit_mb'], 20)}); "
              f"later visits {worst['later_visit_mb'] * 1e3:.1f} kB (<= 1500: {ok(worst['later_visit_mb'], 1.5)})")
        mism = [(r["lab"], k) for r in rows for k in ("starter", "solution")
                if r[k]["passed"] != r[k]["native_passed"]]
        if mism:
            print(f"WARNING: browser and native verdicts differ for {mism}")
    if args.json:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"goals": GOALS, "labs": rows}, indent=1) + "\n")
        except OSError as e:
            print(f"inbrowser: error: {e}", file=sys.stderr)
            return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
