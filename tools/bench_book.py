"""Benchmarks of the book platform (figures, not pass/fail tests); run by ``make bench``.

Measures, from the repository root:

* clean build: ``rm -rf _build`` then ``jupyter-book build . -W`` (every page executed);
* unchanged rebuild: the same command again (pages come from the execution cache);
* page sizes: the largest chapter/lab HTML page, and the total of ``_build/html``;
* stepper click latency (optional, ``--click``): in headless Chromium, the time from a step
  button's click handler start to the end of the DOM update, with ``performance.now()``.

Targets from the issue: clean build <= 90 s, rebuild <= 15 s, page <= 1.5 MB, click <= 16 ms.
``--no-clean`` skips the clean build (keeps the cache). Prints a table; ``--json`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
TARGETS = {"clean_build_s": 90.0, "rebuild_s": 15.0, "largest_page_bytes": 1_500_000, "click_ms": 16.0}


def jupyter_book() -> str:
    exe = Path(sys.executable).parent / "jupyter-book"
    return str(exe) if exe.exists() else "jupyter-book"


def timed_build() -> float:
    t0 = time.perf_counter()
    p = subprocess.run([jupyter_book(), "build", str(ROOT), "-W", "--keep-going"],
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise SystemExit(f"bench_book: the build failed (exit {p.returncode})")
    return dt


def page_sizes() -> dict:
    pages = {p.relative_to(HTML).as_posix(): p.stat().st_size
             for p in list(HTML.glob("book/*.html")) + list(HTML.glob("notebooks/*.html"))}
    largest = max(pages.items(), key=lambda kv: kv[1]) if pages else ("", 0)
    total = sum(p.stat().st_size for p in HTML.rglob("*") if p.is_file())
    return {"largest_page": largest[0], "largest_page_bytes": largest[1], "site_bytes": total,
            "pages": dict(sorted(pages.items()))}


def click_latency(page_rel: str = "book/ch0-reading-interleavings.html", clicks: int = 30) -> float | None:
    """Median ms from click dispatch to the end of the synchronous DOM update of a step button."""
    import functools
    import http.server
    import threading

    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                         "--disable-component-update", "--no-first-run", "--disable-sync"])
            page = b.new_page()
            page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/{page_rel}")
            times = page.evaluate(
                """(n) => {
                  const root = document.querySelector('.kvmlab-stepper');
                  if (!root) return null;
                  const out = [];
                  for (let i = 0; i < n; i++) {
                    const btns = [...root.querySelectorAll('button')].filter(
                      b => /step/i.test(b.textContent + (b.getAttribute('aria-label') || '')) && !b.disabled);
                    const reset = [...root.querySelectorAll('button')].find(b => /reset/i.test(b.textContent));
                    if (!btns.length) { if (reset) reset.click(); continue; }
                    const t0 = performance.now();
                    btns[0].click();
                    out.push(performance.now() - t0);
                  }
                  return out;
                }""", clicks)
            b.close()
    finally:
        httpd.shutdown()
    if not times:
        return None
    times.sort()
    return times[len(times) // 2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark the book build")
    ap.add_argument("--no-clean", action="store_true", help="skip the clean build")
    ap.add_argument("--click", action="store_true", help="also measure stepper click latency in Chromium")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    out: dict = {}
    if not a.no_clean:
        shutil.rmtree(ROOT / "_build", ignore_errors=True)
        out["clean_build_s"] = round(timed_build(), 1)
    elif not HTML.is_dir():
        out["first_build_s"] = round(timed_build(), 1)
    out["rebuild_s"] = round(timed_build(), 1)
    out.update(page_sizes())
    if a.click:
        ms = click_latency()
        out["click_ms"] = None if ms is None else round(ms, 2)
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    for k in ("clean_build_s", "first_build_s", "rebuild_s", "largest_page_bytes", "site_bytes", "click_ms"):
        if k in out:
            tgt = TARGETS.get(k)
            mark = "" if tgt is None or out[k] is None else ("  ok" if out[k] <= tgt else f"  OVER target {tgt}")
            print(f"{k:20} {out[k]}{mark}")
    print(f"{'largest_page':20} {out['largest_page']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
