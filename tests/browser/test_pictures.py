"""Pictures a reader can read: contrast, text size, phone overflow, and diagrams linked to steppers.

Two kinds of page, both in headless Chromium (Debian's ``/usr/bin/chromium``), every request
leaving 127.0.0.1 blocked and failing the test:

* a standalone page made here (a stepper, the timeline and the state graph of the same
  configuration, a verdict table): the outputs as a notebook shows them, with their inline
  theme; no book needed;
* the built book (``_build/html``, ``make book``): every chapter in light and dark mode at
  1366x900 (the text of every output, SVG text included, has contrast >= 4.5:1 against the
  first opaque background behind it; no SVG text is drawn below 11 px), and every page at a
  390x844 phone (no sideways page scroll). Skipped without the book unless
  ``KVMLAB_REQUIRE_BOOK=1``.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("KVMLAB_BOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = os.environ.get("KVMLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
MIN_CONTRAST = 4.5
MIN_SVG_TEXT_PX = 11.0

# Every visible text of the outputs (HTML text nodes and SVG <text>), with its contrast ratio.
# HTML text: its colour over the backgrounds of its ancestors, composited up to the first opaque one.
# SVG text: its fill over the last filled shape drawn before it that covers its centre, else the
# backgrounds behind the <svg>.
MEASURE = r"""
(sel) => {
  function rgba(s) {
    const m = (s || "").match(/[\d.]+/g);
    if (!m || s.startsWith("url")) return null;
    return [+m[0], +m[1], +m[2], m.length > 3 ? +m[3] : 1];
  }
  function over(top, below) {  // composite top (with alpha) over an opaque colour
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + below[i] * (1 - a)).concat([1]);
  }
  function lum(c) {
    const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  }
  function ratio(a, b) { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }
  function backdrop(el) {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let base = [255, 255, 255, 1];
    if (layers.length && layers[layers.length - 1][3] >= 1) base = layers.pop();
    for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
    return base;
  }
  const bad = [], small = [];
  let texts = 0, svgTexts = 0;
  const roots = document.querySelectorAll(sel);
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    let t;
    while ((t = walker.nextNode())) {
      if (!t.textContent.trim()) continue;
      const el = t.parentElement;
      if (!el || el.closest("svg, style, script, noscript, option, template")) continue;
      const cs = getComputedStyle(el);
      if (cs.visibility === "hidden" || cs.opacity === "0") continue;
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height) continue;
      const bg = backdrop(el);
      const fg = over(rgba(cs.color), bg);
      const cr = ratio(fg, bg);
      texts++;
      if (cr < MIN) bad.push({text: t.textContent.trim().slice(0, 40), color: cs.color, bg: bg.slice(0, 3).join(","),
                              ratio: +cr.toFixed(2)});
    }
    for (const svg of root.querySelectorAll("svg")) {
      const shapes = [];
      for (const s of svg.querySelectorAll("polygon, ellipse, path, rect, circle")) {
        const c = rgba(getComputedStyle(s).fill);
        if (!c || c[3] === 0) continue;
        shapes.push([s, c, s.getBoundingClientRect()]);
      }
      for (const tx of svg.querySelectorAll("text")) {
        const r = tx.getBoundingClientRect();
        if (!r.width || !r.height || !tx.textContent.trim()) continue;
        svgTexts++;
        if (r.height < MINPX) small.push({text: tx.textContent.slice(0, 30), px: +r.height.toFixed(1)});
        const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
        let bg = backdrop(svg);
        for (const [s, c, sr] of shapes) {
          if (!(s.compareDocumentPosition(tx) & Node.DOCUMENT_POSITION_FOLLOWING)) continue;
          if (cx < sr.left || cx > sr.right || cy < sr.top || cy > sr.bottom) continue;
          bg = over(c, bg);
        }
        const fg = over(rgba(getComputedStyle(tx).fill), bg);
        const cr = ratio(fg, bg);
        texts++;
        if (cr < MIN) bad.push({text: "svg: " + tx.textContent.slice(0, 36), color: getComputedStyle(tx).fill,
                                bg: bg.slice(0, 3).join(","), ratio: +cr.toFixed(2)});
      }
    }
  }
  return {outputs: roots.length, texts, svgTexts, bad, small};
}
""".replace("MINPX", str(MIN_SVG_TEXT_PX)).replace("MIN", str(MIN_CONTRAST))


def _need(cond: bool, why: str) -> None:
    if cond:
        return
    if os.environ.get("KVMLAB_REQUIRE_BOOK"):
        pytest.fail(why)
    pytest.skip(why)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def _serve(directory: Path):
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


@pytest.fixture(scope="module")
def browser():
    _need(Path(CHROMIUM).exists(), f"{CHROMIUM} missing (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Page:
    """A fresh context that blocks and records requests leaving 127.0.0.1, and console errors."""

    def __init__(self, browser, scheme="light", phone=False):
        opts = {"color_scheme": scheme, "viewport": PHONE if phone else DESKTOP}
        if phone:
            opts.update(device_scale_factor=2, is_mobile=True, has_touch=True)
        self.ctx = browser.new_context(**opts)
        self.page = self.ctx.new_page()
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.ctx.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route):
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def clean(self, what):
        assert not self.blocked, f"{what}: requests leaving 127.0.0.1: {self.blocked}"
        assert not self.errors, f"{what}: {self.errors}"


@pytest.fixture
def pages(browser):
    made = []

    def make(**kw):
        p = Page(browser, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.ctx.close()


# -- a standalone page: the outputs as a notebook shows them ------------------------------------------

@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    import kvmlab
    from kvmlab import diagrams
    from kvmlab.widgets import Stepper, summary
    from kvmlab.widgets.stepper import reset_page

    reset_page()
    st = Stepper("lost_update", "plain", goal_property="no_lost_update")
    r = kvmlab.check("lost_update", "plain")
    v = r.violation("no_lost_update")
    other = kvmlab.check("apf_wake", "unlock_alloc")
    body = "".join([
        st._repr_html_(),
        '<div class="out" id="graph">', diagrams.state_graph("lost_update", "plain")._repr_html_(), "</div>",
        '<div class="out" id="tl">', diagrams.timeline(v, kvmlab.load("lost_update", "plain"))._repr_html_(), "</div>",
        '<div class="out" id="sum">', summary(r, system=kvmlab.load("lost_update", "plain"))._repr_html_(), "</div>",
        # a timeline of a configuration with no stepper on the page: not linked
        '<div class="out" id="tl2">', diagrams.timeline(other.violation("no_lost_wakeup"), other)._repr_html_(),
        "</div>",
    ])
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>pictures</title>"
            "<style>@media (prefers-color-scheme:dark){body{background:#14181e;color:#ced6dd}}</style></head>"
            f"<body><main style='max-width:900px;margin:auto'>{body}</main></body></html>")
    root = tmp_path_factory.mktemp("pictures")
    (root / "index.html").write_text(page, encoding="utf-8")
    httpd, url = _serve(root)
    yield url + "index.html", [str(m) for m in v.schedule]
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_standalone_outputs_readable(standalone, pages, scheme):
    url, _ = standalone
    p = pages(scheme=scheme)
    p.page.goto(url)
    m = p.page.evaluate(MEASURE, "div.out")
    assert m["outputs"] == 4 and m["svgTexts"] > 20, m
    assert not m["bad"], f"{scheme}: text below {MIN_CONTRAST}:1: {m['bad'][:8]}"
    assert not m["small"], f"{scheme}: SVG text below {MIN_SVG_TEXT_PX} px: {m['small'][:8]}"
    if scheme == "dark":  # the palette switched: the timeline's text is light, not black
        fill = p.page.evaluate("getComputedStyle(document.querySelector('#tl svg text')).fill")
        assert fill != "rgb(0, 0, 0)" and fill != "rgb(31, 35, 40)", fill
    p.clean(url)


def test_timeline_step_opens_the_stepper_there(standalone, pages):
    url, moves = standalone
    p = pages()
    p.page.goto(url)
    root = p.page.locator("#kvmlab-stepper-lost_update-plain")
    root.locator(".ks-cpu").first.wait_for()
    steps = p.page.locator("#tl g.kvs-linked")
    assert steps.count() == len(moves)
    assert p.page.locator("#tl .kv-caption").count() == 1
    assert p.page.locator("#tl2 g.kvs-linked").count() == 0, "linked to a stepper of another configuration"
    assert p.page.locator("#tl2 .kv-caption").count() == 0
    steps.nth(2).click()
    p.page.wait_for_function("document.querySelector('#kvmlab-stepper-lost_update-plain').dataset.pos === '3'",
                             timeout=5_000)
    assert f"stepper-lost_update-plain={','.join(moves[:3])}" in p.page.evaluate("location.hash")
    # the keyboard too: Enter on the last step
    steps.nth(len(moves) - 1).focus()
    p.page.keyboard.press("Enter")
    p.page.wait_for_function(
        f"document.querySelector('#kvmlab-stepper-lost_update-plain').dataset.pos === '{len(moves)}'",
        timeout=5_000)
    p.clean(url)


def test_state_graph_follows_the_stepper_and_jumps(standalone, pages):
    import kvmlab
    url, moves = standalone
    p = pages()
    p.page.goto(url)
    root = p.page.locator("#kvmlab-stepper-lost_update-plain")
    root.locator(".ks-cpu").first.wait_for()
    box = p.page.locator("#graph .kvmlab-states")
    assert box.get_attribute("data-current") == "0"
    assert p.page.locator("#graph g.kvs-current").count() == 1
    root.get_by_role("button", name="Step CPU0").click()
    p.page.wait_for_function("document.querySelector('#graph .kvmlab-states').dataset.current !== '0'",
                             timeout=5_000)
    # the marked state is the one the explorer reaches by CPU0's first step
    from kvmlab.engine.graph import explore
    g = explore(kvmlab.load("lost_update", "plain"), 100)
    want = next(e.target for e in g.edges[0] if e.tid == 0)
    assert box.get_attribute("data-current") == str(want)
    # a click on a bad state plays a shortest schedule to it
    bad = next(iter(g.bad))
    p.page.locator(f"#graph g.kvs_state[id$='_state{bad}']").click()
    p.page.wait_for_function(f"document.querySelector('#graph .kvmlab-states').dataset.current === '{bad}'",
                             timeout=5_000)
    assert root.get_attribute("data-pos") == str(len(g.path_nodes(moves)) - 1)
    p.clean(url)


# -- the built book -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def book():
    _need((HTML / "book" / "ch0-reading-interleavings.html").is_file(), f"{HTML} has no book: run `make book`")
    httpd, url = _serve(HTML)
    yield url
    httpd.shutdown()
    httpd.server_close()


def _pages(prefix: str = "") -> list[str]:
    if not HTML.is_dir():
        return []
    out = []
    for p in sorted(HTML.rglob("*.html")):
        rel = p.relative_to(HTML).as_posix()
        if rel.startswith(("_", "jupyter_execute")) or rel in ("genindex.html", "search.html", "index.html"):
            continue
        if rel.startswith(prefix):
            out.append(rel)
    return out


def _chapters() -> list[str]:
    """Every page of the book (chapters, labs with their grade reports, reference, back matter)."""
    return _pages() or ["book/ch0-reading-interleavings.html"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("rel", _chapters())
def test_chapter_outputs_readable(book, pages, scheme, rel):
    p = pages(scheme=scheme)
    p.page.goto(book + rel, wait_until="load")
    assert p.page.evaluate("document.documentElement.dataset.theme") == scheme
    m = p.page.evaluate(MEASURE, "div.cell_output")
    assert m["outputs"] > 0 or not rel.startswith("book/ch"), f"{rel}: a chapter without outputs"
    assert not m["bad"], f"{rel} ({scheme}): {len(m['bad'])} texts below {MIN_CONTRAST}:1, e.g. {m['bad'][:6]}"
    assert not m["small"], f"{rel}: {len(m['small'])} SVG texts below {MIN_SVG_TEXT_PX} px, e.g. {m['small'][:6]}"
    p.clean(rel)


def test_no_sideways_scroll_on_a_phone(book, pages):
    p = pages(phone=True)
    wide = {}
    for rel in _pages():
        p.page.goto(book + rel, wait_until="load")
        w = p.page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        if w > PHONE["width"]:
            culprit = p.page.evaluate("""() => {
              const W = document.documentElement.clientWidth, out = [];
              for (const e of document.querySelectorAll('body *')) {
                const r = e.getBoundingClientRect();
                if (r.right > W + 1 && r.width && getComputedStyle(e).position !== 'fixed') {
                  let clipped = false;
                  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
                    const o = getComputedStyle(a).overflowX;
                    if (o === 'auto' || o === 'scroll' || o === 'hidden') { clipped = true; break; }
                  }
                  if (!clipped) out.push(e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40));
                }
              }
              return out.slice(0, 3);
            }""")
            wide[rel] = (w, culprit)
        p.clean(rel)
    assert not wide, f"pages wider than the {PHONE['width']} px phone: {wide}"


def test_ch0_timeline_opens_the_stepper(book, pages):
    p = pages()
    p.page.goto(book + "book/ch0-reading-interleavings.html")
    steps = p.page.locator(".kvmlab-timeline g.kvs-linked")
    _need(steps.count() > 0, "chapter 0 has no timeline beside a stepper of the same configuration")
    steps.nth(1).click()
    p.page.wait_for_function("/#.*stepper-lost_update-plain=\\d/.test(location.hash)", timeout=5_000)
    p.page.wait_for_function("document.querySelector('#kvmlab-stepper-lost_update-plain').dataset.pos === '2'",
                             timeout=5_000)
    p.clean("ch0")
