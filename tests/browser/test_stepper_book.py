"""Every stepper of the built book, in headless Chromium: one screen, phone, dark mode, the win.

Needs ``_build/html`` (``make book``); set ``KVMLAB_REQUIRE_BOOK=1`` to fail instead of skip
when it or Chromium is missing. Screenshots of every chapter's steppers (1366x900 light and
dark, 390x844) go to ``/tmp/kvmbook-stepper-shots`` for a human to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path

import pytest
from stepper_contrast import CONTRAST_JS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("KVMLAB_BOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = os.environ.get("KVMLAB_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("KVMLAB_SHOTS", "/tmp/kvmbook-stepper-shots"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _need(cond: bool, why: str) -> None:
    if cond:
        return
    if os.environ.get("KVMLAB_REQUIRE_BOOK"):
        pytest.fail(why)
    pytest.skip(why)


def chapters() -> list[str]:
    """Every page of the book with a stepper (chapters, drills, labs)."""
    if not HTML.is_dir():
        return []
    return sorted(p.relative_to(HTML).as_posix() for d in ("book", "notebooks") for p in (HTML / d).glob("*.html")
                  if 'data-kvmlab-puzzle="' in p.read_text(encoding="utf-8"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def server():
    _need(bool(chapters()), f"no page with a stepper in {HTML}: run `make book` first")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    _need(Path(CHROMIUM).exists(), f"{CHROMIUM} missing (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _page(browser, viewport, scheme="light", mobile=False):
    ctx = browser.new_context(viewport=viewport, color_scheme=scheme, is_mobile=mobile, has_touch=mobile)
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.route("**/*", lambda r: r.continue_() if r.request.url.startswith("http://127.0.0.1:") else r.abort())
    return ctx, pg


def _inside(box, vp):
    return box and box["y"] >= 0 and box["y"] + box["height"] <= vp["height"] and box["x"] >= 0 \
        and box["x"] + box["width"] <= vp["width"]


def _steppers(pg):
    roots = pg.locator("div.kvmlab-stepper[data-kvmlab-stepper]")
    return [roots.nth(i) for i in range(roots.count())]


def _open_folds(pg):
    """Open every folded box, and show the hidden answers (a drill's stepper)."""
    pg.evaluate("document.querySelectorAll('details').forEach(d => d.open = true);"
                "document.querySelectorAll('[hidden]').forEach(e => { if (e.querySelector('.kvmlab-stepper'))"
                " e.hidden = false; })")


@pytest.mark.parametrize("chapter", chapters() or ["(none)"])
def test_chapter_steppers_fit_one_screen(server, browser, chapter):
    ctx, pg = _page(browser, DESKTOP)
    pg.goto(server + chapter)
    _open_folds(pg)
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = []
    for k, root in enumerate(_steppers(pg)):
        sid = root.get_attribute("data-kvmlab-stepper")
        root.locator(".ks-cpu").first.wait_for()
        root.evaluate("(r) => window.scrollTo(0, r.getBoundingClientRect().top + window.scrollY"
                      " - (parseFloat(getComputedStyle(document.documentElement)"
                      ".getPropertyValue('--pst-header-height')) || 0) * 16)")
        parts = {"bar": root.locator(".ks-bar"), "status": root.locator(".ks-status"),
                 "shared": root.locator(".ks-shared")}
        for t in range(root.locator(".ks-cpu").count()):
            cpu = root.locator(".ks-cpu").nth(t)
            parts[f"step{t}"] = cpu.locator(".ks-step")
            if cpu.locator(".ks-line.ks-current").count():
                parts[f"line{t}"] = cpu.locator(".ks-line.ks-current")
        bad = [k for k, loc in parts.items() if not _inside(loc.bounding_box(), DESKTOP)]
        if bad:
            out.append((sid, bad))
        pg.screenshot(path=str(SHOTS / f"{Path(chapter).stem}-{k}-desktop.png"))
    errors = pg.errors
    ctx.close()
    assert not out, f"{chapter}: outside the 1366x900 viewport: {out}"
    assert not errors, errors


@pytest.mark.parametrize("chapter", chapters() or ["(none)"])
def test_chapter_steppers_on_a_phone_and_in_the_dark(server, browser, chapter):
    ctx, pg = _page(browser, PHONE, scheme="dark", mobile=True)
    pg.goto(server + chapter)
    _open_folds(pg)
    wide = []
    for k, root in enumerate(_steppers(pg)):
        root.locator(".ks-cpu").first.wait_for()
        w = root.evaluate("(r) => r.getBoundingClientRect().right")
        if w > PHONE["width"]:
            wide.append((root.get_attribute("data-kvmlab-stepper"), w))
        for b in root.locator(".ks-step").all():
            assert b.bounding_box()["height"] >= 44
        if k < 2:
            root.evaluate("(r) => r.scrollIntoView()")
            pg.screenshot(path=str(SHOTS / f"{Path(chapter).stem}-{k}-phone-dark.png"))
    assert not wide, f"{chapter}: steppers wider than the phone: {wide}"
    ctx.close()
    for scheme, theme in (("dark", None), ("light", "dark"), ("light", None)):
        ctx, pg = _page(browser, DESKTOP, scheme=scheme)
        pg.goto(server + chapter)
        if theme:
            pg.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
        _open_folds(pg)
        for root in _steppers(pg):
            root.locator(".ks-cpu").first.wait_for()
            bad = pg.evaluate(CONTRAST_JS, root.element_handle())
            assert not bad, (chapter, scheme, theme, root.get_attribute("data-kvmlab-stepper"), bad[:6])
        ctx.close()


@pytest.mark.parametrize("chapter", chapters() or ["(none)"])
def test_show_me_wins_only_the_goal(server, browser, chapter):
    """Show me plays each goal's shortest solution: the win banner, and only on its last step."""
    ctx, pg = _page(browser, DESKTOP)
    pg.goto(server + chapter)
    _open_folds(pg)
    for root in _steppers(pg):
        root.locator(".ks-cpu").first.wait_for()
        if not root.locator(".ks-show").count() or root.locator(".ks-goal").count() == 0:
            continue
        root.evaluate("(r) => { r.__kvmlabPlayer.opts.delay = 1; }")
        root.locator(".ks-show").click()
        pg.wait_for_function("(r) => r.querySelector('.ks-show').textContent === 'Show me'",
                             arg=root.element_handle(), timeout=30000)
        sid = root.get_attribute("data-kvmlab-stepper")
        outcome = root.get_attribute("data-outcome")
        assert outcome in ("win", "free"), (chapter, sid, outcome)
        if outcome == "win":
            assert "You found it" in root.locator(".ks-status").inner_text()
            n = int(root.get_attribute("data-pos"))
            root.locator(".ks-bar").get_by_role("button", name=re.compile("^Back one step")).click()
            assert root.get_attribute("data-outcome") != "win" or n == 0, (chapter, sid, "won a step early")
    ctx.close()


def test_puzzle_index_lists_the_chapters_steppers(server, browser):
    page = HTML / "book" / "puzzles.html"
    _need(page.is_file(), f"{page} missing")
    ctx, pg = _page(browser, DESKTOP)
    pg.goto(server + "book/puzzles.html")
    n = int(pg.locator(".kvmlab-puzzles").get_attribute("data-count"))
    # the steppers a reader can see: not the hidden answers (drills) nor escaped copies inside scripts
    total = 0
    for ch in chapters():
        pg.goto(server + ch)
        total += pg.evaluate("[...document.querySelectorAll('div.kvmlab-stepper[data-kvmlab-puzzle]')]"
                             ".filter(e => !e.closest('[hidden]')).length")
    pg.goto(server + "book/puzzles.html")
    assert n == total > 0
    first = pg.locator(".kp-table a").first
    href = first.get_attribute("href")
    first.click()
    pg.wait_for_load_state()
    sid = href.split("#kvmlab-stepper-")[1]
    assert pg.locator(f"#kvmlab-stepper-{sid}").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.goto(server + "book/puzzles.html")
    pg.screenshot(path=str(SHOTS / "puzzles.png"), full_page=True)
    ctx.close()
