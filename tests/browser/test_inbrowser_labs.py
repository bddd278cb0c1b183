"""Runnable labs and stepper set-up panels in the built book: Pyodide in headless Chromium, offline.

For every lab page (``kvmlab.labs.LABS``): the starter FAILs with its shortest
counterexample shown in the stepper, the reference solution (``solutions/``) PASSes, and no
request leaves 127.0.0.1; on the first and the last lab, a ``while True:`` answer FAILs with a
time-limit message within the limit while the page stays responsive (the limit is the same
worker machinery on every page). On chapter 0, the stepper's
"Change the set-up" panel re-explores with 3 CPUs in the browser. Screenshots of lab 0 at
1366x900 and 390x844, light and dark, go to ``$KVMLAB_SHOTS`` (default
``/tmp/kvmbook-shots``) for a human to look at.

Needs ``_build/html`` built with the vendored runtime (``make book``; ``make web``
vendors it). Skips when either is missing, unless ``KVMLAB_REQUIRE_BOOK=1``.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("KVMLAB_BOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = os.environ.get("KVMLAB_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("KVMLAB_SHOTS", "/tmp/kvmbook-shots"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]
RUNTIME = HTML / "_kvmlab" / "pyodide" / "pyodide.asm.wasm"
LIMIT = 20            # the book's time limit (kvmlab_lab_timeout)
SHORT_LIMIT = 5       # the limit the other labs' endless-loop tests pass to grade()
READY_TIMEOUT_MS = 120_000

pytestmark = pytest.mark.browser


def _need(cond: bool, why: str) -> None:
    if cond:
        return
    if os.environ.get("KVMLAB_REQUIRE_BOOK"):
        pytest.fail(why)
    pytest.skip(why)


def _labs() -> list:
    try:
        from kvmlab import labs
    except ImportError:
        return []
    seq = labs.LABS.values() if isinstance(labs.LABS, dict) else labs.LABS
    return [labs.get(x) if isinstance(x, str) else x for x in seq]


LABS = _labs()
LAB_IDS = [lab.id for lab in LABS] or ["(no kvmlab.labs)"]
# The time limit is the page's worker machinery, the same for every lab: checked on the first lab
# (the book's own limit) and the largest (a short one); every lab's answers are graded in the page.
LOOP_LABS = {LAB_IDS[0], LAB_IDS[-1]}


def _lab(lab_id: str):
    _need(bool(LABS), "kvmlab.labs is missing")
    return next(lab for lab in LABS if lab.id == lab_id)


def _page(lab) -> str:
    return str(lab.notebook).removesuffix(".ipynb") + ".html"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def server():
    _need(HTML.is_dir(), f"{HTML} missing: run `make book` first")
    _need(RUNTIME.is_file(), f"{RUNTIME} missing: the book was built without `make web`")
    handler = functools.partial(_Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    _need(Path(CHROMIUM).exists(), f"{CHROMIUM} missing (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


class LabTab:
    """A lab page in a fresh profile; records requests leaving 127.0.0.1 and page errors."""

    def __init__(self, browser, url: str, scheme: str = "light", viewport=(1366, 900), hook: bool = True):
        self.ctx = browser.new_context(color_scheme=scheme, viewport={"width": viewport[0], "height": viewport[1]})
        self.page = self.ctx.new_page()
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.ctx.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.goto(url, wait_until="load")
        if hook:
            self.page.wait_for_function("window.kvmlabLab !== undefined", timeout=30_000)

    def _route(self, route):
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, msg):
        # Chromium asks every origin for /favicon.ico; the book has none
        if msg.type == "error" and "favicon.ico" not in msg.location.get("url", ""):
            self.errors.append(f"console.error: {msg.text}")

    def ready(self) -> float:
        t0 = time.monotonic()
        self.page.evaluate("() => kvmlabLab.ready", None)
        return time.monotonic() - t0

    def grade(self, source: str, timeout: float | None = None) -> dict:
        return self.page.evaluate("([s, t]) => kvmlabLab.grade(s, t ? {timeout: t} : undefined)", [source, timeout])

    def check_clean(self, what: str) -> None:
        assert not self.blocked, f"{what}: requests leaving 127.0.0.1: {self.blocked}"
        assert not self.errors, f"{what}: {self.errors}"

    def close(self):
        self.ctx.close()


@pytest.fixture
def tab(browser, server):
    made = []

    def make(lab, **kw):
        t = LabTab(browser, server + _page(lab), **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def test_every_lab_page_has_a_box():
    _need(HTML.is_dir(), f"{HTML} missing: run `make book` first")
    _need(bool(LABS), "kvmlab.labs is missing")
    for lab in LABS:
        page = HTML / _page(lab)
        assert page.is_file(), f"{lab.id}: {page} was not built"
        text = page.read_text(encoding="utf-8")
        assert f'id="kvmlab-lab-{lab.id}"' in text, f"{lab.id}: no runnable lab box in {page}"
    assert not (HTML / "_kvmlab" / "solutions").exists()


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_lab_in_browser(tab, lab_id):
    lab = _lab(lab_id)
    t = tab(lab)
    t.ready()
    assert t.page.evaluate("kvmlabLab.starter") == lab.starter

    r = t.grade(lab.starter)
    assert r["passed"] is False, f"{lab.id}: the starter passed: {r}"
    assert r["property"], f"{lab.id}: the starter failed without a violated property: {r}"
    assert r["states"] > 0 and r["counterexample"] and r["stepper"], r
    box = t.page.locator(f"#kvmlab-lab-{lab.id}")
    assert "kl-fail" in box.locator(".kl-result").get_attribute("class")
    assert box.locator(".kl-result .kl-headline").inner_text().startswith("✗")
    assert r["property"] in box.locator(".kl-result").inner_text()
    stepper = box.locator(".kl-stepper .kvmlab-stepper")
    stepper.locator(".ks-cpu").first.wait_for(timeout=30_000)
    stepper.locator("button.ks-show").first.click()
    stepper.locator(".ks-banner-bad").wait_for(state="visible", timeout=30_000)
    assert r["property"] in stepper.locator(".ks-banner-bad").inner_text()
    width = t.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{lab.id}: the page scrolls sideways with the counterexample shown ({width}px)"

    solution = (ROOT / lab.solution).read_text(encoding="utf-8")
    r = t.grade(solution)
    assert r["passed"] is True, f"{lab.id}: the reference solution did not pass: {r}"
    assert "kl-pass" in box.locator(".kl-result").get_attribute("class")
    assert box.locator(".kl-result .kl-headline").inner_text().startswith("✓")
    assert box.locator(".kl-stepper .kvmlab-stepper").count() == 0

    if lab_id not in LOOP_LABS:
        t.check_clean(lab.id)
        return
    # an endless loop: the worker is terminated at the limit, a fresh one starts, the tab stays usable
    limit = LIMIT if lab is LABS[0] else SHORT_LIMIT
    t.page.evaluate("([s, l]) => { window.__r = null; kvmlabLab.grade(s, {timeout: l})"
                    ".then(r => { window.__r = r; }); }", ["while True:\n    pass\n", limit])
    t0 = time.monotonic()
    t.page.wait_for_timeout(1000)
    t1 = time.monotonic()
    assert t.page.evaluate("1 + 1") == 2
    assert time.monotonic() - t1 < 2, "the page did not answer while the worker looped"
    assert box.get_by_role("button", name="Stop").is_enabled()
    t.page.wait_for_function("window.__r !== null", timeout=(limit + 10) * 1000)
    took = time.monotonic() - t0
    r = t.page.evaluate("window.__r")
    assert r["passed"] is False and r["timeLimit"] is True, r
    assert "time limit" in r["message"] and f"{limit} s" in r["message"], r
    assert took < limit + 5, f"the time limit ({limit} s) took {took:.1f} s"
    assert "time limit" in box.locator(".kl-result").inner_text()
    # a fresh worker grades again
    t.ready()
    assert t.grade(solution)["passed"] is True
    t.check_clean(lab.id)


def test_step_that_never_returns(tab):
    """Lab 0 with a Python loop inside a step: the explorer never gets the CPU back."""
    lab = _lab(LAB_IDS[0])
    t = tab(lab)
    t.ready()
    load = 't.tmp = w["counter"]'
    body = lab.starter.replace(load, load + "\n        while t.tmp >= 0:\n            pass")
    assert body != lab.starter
    r = t.grade(body, SHORT_LIMIT)
    assert r["timeLimit"] is True and r["passed"] is False, r
    t.check_clean("step loop")


def test_draft_kept_and_reset(tab, browser, server):
    lab = _lab(LAB_IDS[0])
    t = tab(lab)
    box = t.page.locator(f"#kvmlab-lab-{lab.id}")
    box.locator(".cm-content").click()
    t.page.keyboard.press("Control+End")
    t.page.keyboard.type("\n# my draft")
    t.page.reload(wait_until="load")
    t.page.wait_for_function("window.kvmlabLab !== undefined")
    box = t.page.locator(f"#kvmlab-lab-{lab.id}")
    assert "# my draft" in box.locator(".cm-content").inner_text()
    box.get_by_role("button", name="Reset to starter").click()
    assert "# my draft" not in box.locator(".cm-content").inner_text()
    t.page.reload(wait_until="load")
    t.page.wait_for_function("window.kvmlabLab !== undefined")
    assert "# my draft" not in t.page.locator(f"#kvmlab-lab-{lab.id} .cm-content").inner_text()
    t.check_clean("draft")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [(1366, 900), (390, 844)])
def test_screenshots(tab, scheme, viewport):
    lab = _lab(LAB_IDS[0])
    t = tab(lab, scheme=scheme, viewport=viewport)
    t.ready()
    assert t.page.evaluate("document.documentElement.dataset.theme") == scheme
    r = t.grade(lab.starter)
    assert not r["passed"]
    box = t.page.locator(f"#kvmlab-lab-{lab.id}")
    width = t.page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport[0], f"the page scrolls sideways at {viewport}: {width}px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = f"inbrowser-{lab.id}-{scheme}-{viewport[0]}"
    box.locator(".kl-result").scroll_into_view_if_needed()
    t.page.screenshot(path=str(SHOTS / f"{name}-result.png"))
    box.locator(".kl-stepper").scroll_into_view_if_needed()
    t.page.screenshot(path=str(SHOTS / f"{name}-stepper.png"))
    t.check_clean(name)


# -- the stepper set-up panel on chapter pages ---------------------------------------------
CH0 = "book/ch0-reading-interleavings.html"


def test_stepper_panel_reexplores_in_the_browser(browser, server):
    import json

    from kvmlab.widgets import webrun
    _need((HTML / CH0).is_file(), f"{HTML / CH0} missing")
    t = LabTab(browser, server + CH0, hook=False)
    try:
        panel = t.page.locator("details.kvmlab-panel").first
        panel.locator("summary").click()
        cpus = panel.locator("input[type=number]").first
        cpus.fill("9")  # above the model's bound: refused in the page, nothing is run
        panel.get_by_role("button", name="Explore").click()
        assert "cpus must be a whole number from 1 to 4" in panel.locator(".kp-status").inner_text()
        cpus.fill("3")
        panel.get_by_role("button", name="Explore").click()
        t.page.wait_for_function("document.querySelector('details.kvmlab-panel .kp-status')"
                                 ".textContent.startsWith('showing')", timeout=READY_TIMEOUT_MS)
        native = json.loads(webrun.explore(json.dumps({"model": "lost_update", "variant": "plain",
                                                       "config": {"PREEMPT_RT": False},
                                                       "params": {"cpus": 3, "loops": 1}})))
        status = panel.locator(".kp-status").inner_text()
        assert f"cpus=3 loops=1: {len(native['states'])} states" in status, status
        custom = t.page.locator(".kvmlab-stepper:not([data-kvmlab-stepper])")
        assert custom.locator(".ks-cpu").count() == 3
        assert t.page.locator("div[data-kvmlab-stepper]").first.is_hidden()
        panel.get_by_role("button", name="Back to the book's set-up").click()
        assert t.page.locator("div[data-kvmlab-stepper]").first.is_visible()
        assert custom.count() == 0
        t.check_clean("ch0 panel")
    finally:
        t.close()


# -- a chapter exercise's "try it here" box, on a one-page site built with the vendored runtime
WEB_DIR = ROOT / "vendor" / "web" / "_kvmlab"
CAS = '''class MyInc(Program):
    fn = "worker"
    locals = {"old": 0, "i": 0}

    @line("old = counter;")
    def load(self, w, t):
        t.old = w["counter"]

    @line("if (cmpxchg(&counter, old, old + 1) != old) goto retry;")
    def cas(self, w, t):
        if w.cmpxchg("counter", t.old, t.old + 1) != t.old:
            return "load"
        t.i += 1
        if t.i < self.loops:
            return "load"
'''


def test_try_box_checks_a_new_variant(browser, tmp_path):
    import io

    _need((WEB_DIR / "pyodide" / "pyodide.asm.wasm").is_file(), f"{WEB_DIR} missing: run `make web`")
    from sphinx.application import Sphinx
    wrong = CAS.replace('if w.cmpxchg("counter", t.old, t.old + 1) != t.old:\n            return "load"\n',
                        'w["counter"] = t.old + 1\n')
    assert wrong != CAS
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(f"extensions = ['kvmlab.widgets.labpage']\nkvmlab_web_dir = {str(WEB_DIR)!r}\n")
    body = "".join(f"   {ln}\n" if ln else "\n" for ln in wrong.splitlines())
    (src / "index.rst").write_text("Try\n===\n\n.. kvmlab-try:: lost_update\n   :variant: plain\n"
                                   "   :program: worker\n   :name: MyInc\n   :params: cpus=2; cpus=3\n\n" + body)
    out = tmp_path / "out"
    warn = io.StringIO()
    Sphinx(str(src), str(src), str(out), str(tmp_path / "dt"), "html", status=None, warning=warn).build()
    assert "kvmlab-try: " not in warn.getvalue(), warn.getvalue()
    handler = functools.partial(_Quiet, directory=str(out))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    t = LabTab(browser, f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
    try:
        assert t.page.evaluate("kvmlabLab.starter").strip() == wrong.strip()
        t.ready()
        r = t.grade(wrong)
        assert r["passed"] is False and r["property"] == "no_lost_update" and r["stepper"], r
        r = t.grade(CAS)
        assert r["passed"] is True, r
        assert t.page.get_by_role("button", name="Check").count() == 1
        t.check_clean("try box")
    finally:
        t.close()
        httpd.shutdown()
        httpd.server_close()
