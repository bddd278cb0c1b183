"""The stepper's JavaScript player in headless Chromium, on a standalone page with two steppers.

No network: every request not to 127.0.0.1 is aborted and fails the test,
as does any console error. Screenshots go to /tmp (light and dark).
"""

from __future__ import annotations

import functools
import http.server
import statistics
import threading

import pytest

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
LU = "lost_update-plain"
APF = "apf_wake-unlock_alloc"


@pytest.fixture(scope="module")
def site(tmp_path_factory, evil_model):
    from kvmlab.widgets import Stepper
    from kvmlab.widgets.stepper import reset_page

    reset_page()
    a = Stepper("lost_update", "plain", goal_property="no_lost_update")
    b = Stepper("apf_wake", "unlock_alloc", goal_property="no_lost_wakeup")
    assert (a.id, b.id) == (LU, APF)
    root = tmp_path_factory.mktemp("stepper-site")
    evil = Stepper(evil_model, id="evil")
    orig = Stepper("apf_wake", "original", goal_property="no_sleep_in_atomic")
    body = (a._repr_html_() + "<p>Some text between the steppers.</p>" + b._repr_html_()
            + "<p><a id='trace-link' href='#stepper-lost_update-plain=1,1'>a trace link</a></p>"
            + evil._repr_html_() + orig._repr_html_())
    assert body.count('id="kvmlab-stepper-js"') == 1, "the player's script must be inlined once per page"
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>steppers</title></head>"
            f"<body><main style='max-width:1100px;margin:auto'><h1>Two steppers</h1>{body}</main></body></html>")
    (root / "index.html").write_text(page, encoding="utf-8")
    # the anywidget front end: the same player as an ES module, with a stand-in for the widget model
    from kvmlab.widgets.live import StepperWidget
    w = a.widget()
    assert isinstance(w, StepperWidget)
    (root / "widget.js").write_text(w._esm, encoding="utf-8")
    (root / "graph.json").write_text(w.graph, encoding="utf-8")
    (root / "widget.html").write_text(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>widget</title>"
        f"<style>{w._css}</style></head><body><div id='out'></div><script type='module'>"
        "import widget from './widget.js';"
        "const g = await (await fetch('./graph.json')).text();"
        "widget.render({model: {get: (k) => g}, el: document.getElementById('out')});"
        "document.body.dataset.ready = '1';"
        "</script></body></html>", encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/index.html", len(page.encode())
    srv.shutdown()
    srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def browser():
    import os
    if not os.path.exists(CHROMIUM):
        pytest.skip("no /usr/bin/chromium")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    errors, outside = [], []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("http://127.0.0.1:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    pg.errors, pg.outside = errors, outside
    yield pg
    ctx.close()
    assert not errors, f"console errors: {errors}"
    assert not outside, f"requests leaving 127.0.0.1: {outside}"


def _root(page, sid):
    return page.locator(f"#kvmlab-stepper-{sid}")


def _wait_hash(page, text):
    page.wait_for_function("(t) => decodeURIComponent(location.hash).includes(t)", arg=text, timeout=5000)


def _current(page, sid, cpu):
    return _root(page, sid).locator(".ks-cpu").nth(cpu).locator(".ks-line.ks-current").inner_text()


def test_step_back_keyboard(page, site):
    url, size = site
    page.goto(url)
    lu = _root(page, LU)
    lu.locator(".ks-cpu").first.wait_for()
    assert "load" in _current(page, LU, 0)
    lu.get_by_role("button", name="Step CPU0").click()
    assert "store" in _current(page, LU, 0), "the highlighted line must move to the next C line"
    assert lu.get_attribute("data-pos") == "1"
    # the shared state did not change on a load; CPU0's local tmp did
    assert "tmp = 0" in lu.locator(".ks-cpu").first.locator(".ks-ctx").inner_text()
    lu.get_by_role("button", name="Back one step (key Left arrow)").click()
    assert "load" in _current(page, LU, 0)
    assert lu.get_attribute("data-pos") == "0"
    # keyboard: digits step a CPU, arrows walk the history, r resets
    lu.focus()
    page.keyboard.press("1")
    page.keyboard.press("1")
    assert "done" in lu.locator(".ks-cpu").nth(1).locator(".ks-why").inner_text()
    assert "changed" in lu.locator(".ks-changed").inner_text(), "what the last step changed is marked"
    page.keyboard.press("ArrowLeft")
    assert lu.get_attribute("data-pos") == "1"
    page.keyboard.press("ArrowRight")
    assert lu.get_attribute("data-pos") == "2"
    lu.locator(".ks-hist-btn").first.click()
    assert lu.get_attribute("data-pos") == "1"
    page.keyboard.press("r")
    assert lu.get_attribute("data-pos") == "0"
    # the other stepper did not move
    assert _root(page, APF).get_attribute("data-pos") == "0"
    assert size < 1_500_000


def test_model_text_is_text(page, site):
    url, _ = site
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    ev = _root(page, "evil")
    ev.locator(".ks-cpu").first.wait_for()
    assert "</script><img src=x onerror=window.pwned=2>" in ev.locator(".ks-code").inner_text()
    assert "<script>window.pwned=3</script>" in ev.locator(".ks-cpu-title").inner_text()
    ev.get_by_role("button", name="Step CPU0").click()
    assert "<b>bold?</b><!--" in ev.locator(".ks-shared").inner_text()
    assert page.evaluate("window.pwned === undefined")
    assert ev.locator("img, b, i").count() == 0
    assert not dialogs
    # a link in the page's text replays a trace in its stepper
    page.click("#trace-link")
    lu = _root(page, LU)
    assert lu.get_attribute("data-pos") == "2"
    assert "done" in lu.locator(".ks-cpu").nth(1).locator(".ks-why").inner_text()


def test_disabled_reason_and_choices(page, site):
    url, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    apf.get_by_role("button", name="Step CPU1").click()  # waker: raw_spin_lock(&b->lock)
    cpu0 = apf.locator(".ks-cpu").first
    btn = cpu0.get_by_role("button", name="Step CPU0")
    assert btn.is_disabled()
    assert "spinning on b->lock (held by CPU1)" in cpu0.locator(".ks-why").inner_text()
    assert "spinning on b->lock" in (btn.get_attribute("title") or "")
    for _ in range(3):
        apf.get_by_role("button", name="Step CPU1").click()
    # kzalloc(GFP_KERNEL) may fail: one button per outcome
    cpu1 = apf.locator(".ks-cpu").nth(1)
    choices = cpu1.locator(".ks-choice")
    assert choices.count() == 2
    assert {choices.nth(i).inner_text() for i in range(2)} == {"kmalloc: ok", "kmalloc: fail"}
    cpu1.get_by_role("button", name="Step CPU1 with outcome kmalloc: fail").click()
    # the trace goes into the URL (shortly after the step, off the click's critical path)
    _wait_hash(page, f"stepper-{APF}=1,1,1,1,1:fail")


def test_show_me_and_reload(page, site):
    url, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    apf.get_by_role("button", name="Show me: play the shortest interleaving that breaks no_lost_wakeup").click()
    assert apf.locator(".ks-show").inner_text() == "Stop"
    page.wait_for_function(
        f"document.querySelector('#kvmlab-stepper-{APF} .ks-show').textContent === 'Show me'", timeout=30000)
    banner = apf.locator(".ks-banner-bad")
    assert "Goal reached" in banner.inner_text()
    assert "no_lost_wakeup" in banner.inner_text()
    assert "asleep in schedule() forever" in banner.inner_text()
    import kvmlab
    want = kvmlab.check("apf_wake", "unlock_alloc").violation("no_lost_wakeup").schedule
    _wait_hash(page, f"stepper-{APF}={','.join(want)}")
    assert "no_lost_wakeup" in apf.locator(".ks-console").inner_text()
    # reload restores the interleaving from the hash
    page.reload()
    apf = _root(page, APF)
    apf.locator(".ks-banner-bad").wait_for()
    assert apf.get_attribute("data-pos") == str(len(want))
    # a link with a trace opens it; a lost update prints its verdict
    page.goto(url.split("#")[0] + f"#stepper-{LU}=0,1,0,1")
    lu = _root(page, LU)
    lu.locator(".ks-banner-bad").wait_for()
    assert "no_lost_update" in lu.locator(".ks-banner").inner_text()
    assert lu.get_attribute("data-pos") == "4"
    assert "counter == 1" in lu.locator(".ks-console").inner_text()


def test_click_latency_and_screenshots(page, site, capsys):
    url, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    times = page.evaluate(
        """(sid) => {
            const root = document.querySelector('#kvmlab-stepper-' + sid);
            const out = [];
            for (let round = 0; round < 3; round++) {
              root.querySelector('.ks-controls .ks-btn').click();  // reset
              for (let k = 0; k < 40; k++) {
                const b = [...root.querySelectorAll('.ks-step, .ks-choice')].find(x => !x.disabled);
                if (!b) break;
                const t0 = performance.now();
                b.click();
                void root.offsetHeight;  // include style and layout
                out.push(performance.now() - t0);
              }
            }
            return out;
        }""", APF)
    assert len(times) > 20
    worst, med = max(times), statistics.median(times)
    p90 = sorted(times)[int(0.9 * len(times))]
    with capsys.disabled():
        print(f"\n[stepper click-to-update, apf_wake unlock_alloc] n={len(times)} "
              f"median={med:.2f} ms p90={p90:.2f} ms max={worst:.2f} ms; "
              f"first clicks {[round(x, 1) for x in times[:5]]}")
    # a benchmark on a shared machine (the figure is printed above): the budget is 16 ms a click; the
    # typical click must meet it, outliers from other load on the machine are not the player's
    assert med <= 16.0, f"the median click took {med:.1f} ms"
    # screenshots: a bad state, light and dark
    page.goto(url.split("#")[0] + f"#stepper-{APF}=1,1,1,1,0,0,0,0,0,0,0,0,0,1,1,1,1,1,1,1")
    apf = _root(page, APF)
    apf.locator(".ks-banner-bad").wait_for()
    apf.screenshot(path="/tmp/kvmlab-stepper-light.png")
    page.emulate_media(color_scheme="dark")
    apf.screenshot(path="/tmp/kvmlab-stepper-dark.png")
    bg = page.evaluate(f"getComputedStyle(document.querySelector('#kvmlab-stepper-{APF}')).backgroundColor")
    assert bg == "rgb(22, 27, 34)", bg
    # the pydata theme's explicit light choice wins over the system preference
    page.evaluate("document.documentElement.dataset.theme = 'light'")
    bg = page.evaluate(f"getComputedStyle(document.querySelector('#kvmlab-stepper-{APF}')).backgroundColor")
    assert bg == "rgb(255, 255, 255)", bg
    # and its explicit dark choice wins over a light system preference
    page.emulate_media(color_scheme="light")
    page.evaluate("document.documentElement.dataset.theme = 'dark'")
    bg = page.evaluate(f"getComputedStyle(document.querySelector('#kvmlab-stepper-{APF}')).backgroundColor")
    assert bg == "rgb(22, 27, 34)", bg


def test_anywidget_module(page, site):
    url, _ = site
    page.goto(url.replace("index.html", "widget.html"))
    page.wait_for_selector("body[data-ready='1']")
    st = page.locator("#out .kvmlab-stepper")
    st.get_by_role("button", name="Step CPU1").click()
    assert "store" in st.locator(".ks-cpu").nth(1).locator(".ks-current").inner_text()
    assert "#" not in page.url  # in a notebook the page URL is the front end's: left alone


def test_console_prints_the_splat_at_its_step(page, site):
    url, _ = site
    page.goto(url + "#stepper-apf_wake-original=1,1,1")
    st = _root(page, "apf_wake-original")
    st.locator(".ks-cpu").first.wait_for()
    assert st.locator(".ks-console").inner_text() == "(no kernel messages)"
    assert "GFP_ATOMIC" in _current(page, "apf_wake-original", 1)
    st.get_by_role("button", name="Step CPU1 with outcome kmalloc: ok").click()
    con = st.locator(".ks-console").inner_text()
    assert con.startswith("[step 4] BUG: sleeping function called from invalid context")
    assert "in_atomic(): 1" in con
    assert "Goal reached" in st.locator(".ks-banner").inner_text()
    assert "⚠" in st.locator(".ks-hist li").nth(3).inner_text()
