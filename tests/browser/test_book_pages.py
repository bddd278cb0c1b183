"""The built book in headless Chromium: every page offline and clean, chapter 0's stepper clicked.

Needs ``_build/html`` (``make book``). Serves it on 127.0.0.1, blocks and records every
request to another host, and fails on any console error or uncaught page error. Chromium
is Debian's ``/usr/bin/chromium`` driven by the Playwright Python package (never
``playwright install``). Screenshots of chapter 0 in light and dark mode go to
``/tmp/kvmbook-shots/`` for a human to look at.

Set ``KVMLAB_REQUIRE_BOOK=1`` (``make test`` does) to fail instead of skip when the
book or Chromium is missing.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("KVMLAB_BOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = os.environ.get("KVMLAB_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("KVMLAB_SHOTS", "/tmp/kvmbook-shots"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]
CH0 = "book/ch0-reading-interleavings.html"

pytestmark = pytest.mark.browser


def _need(cond: bool, why: str) -> None:
    if cond:
        return
    if os.environ.get("KVMLAB_REQUIRE_BOOK"):
        pytest.fail(why)
    pytest.skip(why)


def book_pages() -> list[str]:
    """Every HTML page of the book proper (not Sphinx's search/genindex/_sources)."""
    if not HTML.is_dir():
        return []
    out = []
    for p in sorted(HTML.rglob("*.html")):
        rel = p.relative_to(HTML).as_posix()
        if rel.startswith(("_", "jupyter_execute")) or rel in ("genindex.html", "search.html"):
            continue
        out.append(rel)
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def server():
    _need((HTML / CH0).is_file(), f"{HTML / CH0} missing: run `make book` first")
    handler = functools.partial(_Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
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


class Watched:
    """A fresh browser context (fresh profile) that records what must not happen."""

    def __init__(self, browser, scheme: str = "light"):
        self.ctx = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
        self.page = self.ctx.new_page()
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.ctx.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _route(self, route):
        url = route.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, msg):
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text} ({msg.location.get('url', '')})")

    def check_clean(self, what: str):
        assert not self.blocked, f"{what}: requests leaving 127.0.0.1: {self.blocked}"
        assert not self.errors, f"{what}: {self.errors}"

    def close(self):
        self.ctx.close()


@pytest.fixture
def watched(browser):
    made = []

    def make(scheme="light"):
        w = Watched(browser, scheme)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def test_book_has_pages():
    _need((HTML / CH0).is_file(), f"{HTML / CH0} missing: run `make book` first")
    pages = book_pages()
    assert "book/intro.html" in pages and CH0 in pages
    assert any(p.startswith("notebooks/lab0") for p in pages), pages


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_offline_and_clean(server, watched, scheme):
    w = watched(scheme)
    pages = book_pages()
    for rel in pages:
        w.page.goto(server + rel, wait_until="load")
        w.page.wait_for_timeout(150)  # late console errors from deferred scripts
        w.check_clean(rel)
        mode = w.page.evaluate("document.documentElement.dataset.theme")
        assert mode == scheme, f"{rel}: theme {mode!r} in a {scheme} browser"


def test_launch_buttons_point_at_notebooks(server, watched):
    w = watched()
    w.page.goto(server + CH0)
    hrefs = w.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    for host in ("mybinder.org", "colab.research.google.com", "/hub/user-redirect/git-pull"):
        hits = [h for h in hrefs if host in h]
        assert hits, f"no {host} launch link on {CH0}"
        assert all("ch0-reading-interleavings.ipynb" in h for h in hits), hits


# -- chapter 0's stepper ------------------------------------------------------------------
# The stepper's DOM (kvmlab.widgets): root ``#kvmlab-stepper-<id>`` (here lost_update-plain) with ``data-pos`` (steps
# played), one ``.ks-cpu`` pane per CPU whose ``.ks-line.ks-current`` is the highlighted line,
# buttons named "Step CPU0", "Back one step ...", "Show me: ...", a ``.ks-banner-bad`` when a
# bad state is reached, and the trace in the URL hash as ``#stepper-<id>=0,1,0,1``.

def _stepper(page):
    root = page.locator("#kvmlab-stepper-lost_update-plain")
    root.locator(".ks-cpu").first.wait_for()
    root.scroll_into_view_if_needed()
    return root


def _current(root, cpu: int) -> str:
    return root.locator(".ks-cpu").nth(cpu).locator(".ks-line.ks-current").inner_text()


def test_ch0_stepper_clicks(server, watched):
    w = watched()
    w.page.goto(server + CH0)
    root = _stepper(w.page)
    assert root.count() == 1
    assert root.get_attribute("data-pos") == "0"
    assert "load" in _current(root, 0)
    root.get_by_role("button", name="Step CPU0").click()
    assert "store" in _current(root, 0), "stepping CPU0 did not move its highlighted line"
    assert root.get_attribute("data-pos") == "1"
    # the player writes the trace to the URL hash (possibly a moment after the DOM update)
    w.page.wait_for_function("location.hash.includes('stepper-')", timeout=5_000)
    root.get_by_role("button", name=re.compile(r"^Back one step")).click()
    assert "load" in _current(root, 0), "back did not return to the first state"
    assert root.get_attribute("data-pos") == "0"

    root.get_by_role("button", name=re.compile(r"^Show me")).click()
    banner = root.locator(".ks-banner-bad")
    banner.wait_for(state="visible", timeout=30_000)
    assert "no_lost_update" in banner.inner_text()
    want = kvmlab_schedule()
    sched = ",".join(want)
    w.page.wait_for_function(f"location.hash.includes('={sched}')", timeout=30_000)
    hash_after_show = w.page.evaluate("location.hash")
    assert root.get_attribute("data-pos") == str(len(want))

    # a link with the trace reopens the same interleaving
    w.page.goto("about:blank")
    w.page.goto(server + CH0 + hash_after_show)
    root = _stepper(w.page)
    root.locator(".ks-banner-bad").wait_for(state="visible", timeout=10_000)
    assert root.get_attribute("data-pos") == str(len(want))
    assert "counter == 1" in root.locator(".ks-console").inner_text()
    w.check_clean(CH0)


def kvmlab_schedule() -> list[str]:
    import kvmlab

    return kvmlab.check("lost_update", "plain").violation("no_lost_update").schedule


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_ch0_screenshots(server, watched, scheme):
    w = watched(scheme)
    w.page.goto(server + CH0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.page.screenshot(path=str(SHOTS / f"ch0-top-{scheme}.png"))
    root = _stepper(w.page)
    root.get_by_role("button", name="Step CPU0").click()
    root.get_by_role("button", name="Step CPU1").click()
    root.screenshot(path=str(SHOTS / f"ch0-stepper-{scheme}.png"))
    w.page.goto(server + "book/glossary.html")
    w.page.screenshot(path=str(SHOTS / f"glossary-{scheme}.png"))
    w.page.goto(server + "notebooks/lab0-lost-update.html")
    w.page.screenshot(path=str(SHOTS / f"lab0-{scheme}.png"), full_page=True)
    w.check_clean(CH0)
