"""The stepper's JavaScript player in headless Chromium, on a standalone page of steppers.

No network: every request not to 127.0.0.1 is aborted and fails the test, as does any console
error. Screenshots go to /tmp/kvmlab-stepper-shots (1366x900 and 390x844, light and dark).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import statistics
import threading
from pathlib import Path

import pytest
from stepper_contrast import CONTRAST_JS

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
SHOTS = Path(os.environ.get("KVMLAB_SHOTS", "/tmp/kvmlab-stepper-shots"))
LU = "lost_update-plain"
APF = "apf_wake-unlock_alloc"
FOUR = "four"        # 4 CPUs (tdp_root_put merged: putter, reader, writer, RCU callbacks)
LOOP = "loop"        # goal: terminates (the putter zaps the root forever)
FIXED = "fixed"      # apf_wake recheck: nothing breaks
FOLDED = "folded"    # inside a closed <details>
OLD = "old"          # data in format v1
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory, evil_model):
    from kvmlab.widgets import Stepper
    from kvmlab.widgets.stepper import _json_for_script, reset_page

    reset_page()
    a = Stepper("lost_update", "plain", goal_property="no_lost_update",
                goal="Finish both CPUs with counter == 1: lose an update.")
    b = Stepper("apf_wake", "unlock_alloc", goal_property="no_lost_wakeup", goal="Leave the waiter asleep forever.")
    assert (a.id, b.id) == (LU, APF)
    four = Stepper("tdp_root_put", "merged", params={"readers": 1, "writer": 1}, id=FOUR,
                   goal_property="no_free_while_referenced")
    loop = Stepper("tdp_root_put", "no_invalid_check", params={"readers": 0, "writer": 0}, id=LOOP,
                   goal_property="terminates", goal="Make the putter zap the root forever.")
    fixed = Stepper("apf_wake", "recheck", id=FIXED, goal_property="no_lost_wakeup",
                    goal="Try to leave the waiter asleep.")
    folded = Stepper("lost_update", "plain", id=FOLDED, goal_property="no_lost_update")
    old = Stepper("lost_update", "plain", id=OLD, goal="")
    evil = Stepper(evil_model, id="evil")
    orig = Stepper("apf_wake", "original", goal_property="no_sleep_in_atomic")
    old_html = old._repr_html_()
    old_data = dict(old.data, v=1)
    old_html = re.sub(r'(class="kvmlab-stepper-data">)(.*?)(</script>)',
                      lambda m: m.group(1) + _json_for_script(old_data) + m.group(3), old_html, flags=re.S)
    body = (a._repr_html_() + "<p>Some text between the steppers.</p>" + b._repr_html_()
            + "<p><a id='trace-link' href='#stepper-lost_update-plain=1,1'>a trace link</a></p>"
            + four._repr_html_() + loop._repr_html_() + fixed._repr_html_()
            + "<details id='fold'><summary>A folded box</summary>" + folded._repr_html_() + "</details>"
            + old_html + evil._repr_html_() + orig._repr_html_())
    assert body.count('id="kvmlab-stepper-js"') == 1, "the player's script must be inlined once per page"
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>steppers</title>"
            "<style>body{margin:0;font-family:sans-serif} main{max-width:760px;margin:auto;padding:0 8px}</style>"
            f"</head><body><main><h1>Steppers</h1>{body}</main></body></html>")
    root = tmp_path_factory.mktemp("stepper-site")
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
    yield f"http://127.0.0.1:{srv.server_address[1]}/index.html", len(page.encode()), {
        LOOP: loop.data, FOUR: four.data}
    srv.shutdown()
    srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("no /usr/bin/chromium")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, viewport=None, scheme="light", mobile=False):
    ctx = browser.new_context(viewport=viewport or DESKTOP, color_scheme=scheme, is_mobile=mobile,
                              has_touch=mobile)
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
    return ctx, pg


@pytest.fixture
def page(browser, site):
    ctx, pg = _open(browser)
    yield pg
    ctx.close()
    assert not [e for e in pg.errors if "favicon" not in e], f"console errors: {pg.errors}"
    assert not pg.outside, f"requests leaving 127.0.0.1: {pg.outside}"


def _root(page, sid):
    return page.locator(f"#kvmlab-stepper-{sid}")


def _wait_hash(page, text):
    page.wait_for_function("(t) => decodeURIComponent(location.hash).includes(t)", arg=text, timeout=5000)


def _current(page, sid, cpu):
    return _root(page, sid).locator(".ks-cpu").nth(cpu).locator(".ks-line.ks-current").inner_text()


def _outcome(page, sid):
    return _root(page, sid).get_attribute("data-outcome")


def _status(page, sid):
    return _root(page, sid).locator(".ks-status").inner_text()


def _step(page, sid, tid):
    _root(page, sid).locator(".ks-cpu").nth(tid).locator(".ks-step").click()


def _play(page, sid, schedule):
    """Play a schedule by clicking (a choice item such as "1:fail" clicks that outcome)."""
    for mv in schedule:
        tid = int(str(mv).split(":")[0])
        cpu = _root(page, sid).locator(".ks-cpu").nth(tid)
        if cpu.locator(".ks-choice").count():
            cpu.locator(f".ks-choice[data-move='{mv}']").click()
        else:
            cpu.locator(".ks-step").click()


def test_step_back_keyboard(page, site):
    url, size, _ = site
    page.goto(url)
    lu = _root(page, LU)
    lu.locator(".ks-cpu").first.wait_for()
    assert "load" in _current(page, LU, 0)
    lu.get_by_role("button", name="Step CPU0").click()
    assert "store" in _current(page, LU, 0), "the highlighted line must move to the next C line"
    assert lu.get_attribute("data-pos") == "1"
    assert "tmp = 0" in lu.locator(".ks-cpu").first.locator(".ks-ctx").inner_text()
    lu.get_by_role("button", name="Back one step (key Left arrow)").click()
    assert "load" in _current(page, LU, 0)
    assert lu.get_attribute("data-pos") == "0"
    # keyboard: digits step a CPU, arrows walk the history, r resets, u undoes the reset
    lu.focus()
    page.keyboard.press("1")
    page.keyboard.press("1")
    assert "done" in lu.locator(".ks-cpu").nth(1).locator(".ks-why").inner_text()
    changed = lu.locator(".ks-kv.ks-changed dd")
    assert "changed by the last step" in changed.get_attribute("aria-label"), "what the last step changed is marked"
    page.keyboard.press("ArrowLeft")
    assert lu.get_attribute("data-pos") == "1"
    page.keyboard.press("ArrowRight")
    assert lu.get_attribute("data-pos") == "2"
    lu.locator(".ks-hist-btn").first.click()
    assert lu.get_attribute("data-pos") == "1"
    page.keyboard.press("r")
    assert lu.get_attribute("data-pos") == "0"
    page.keyboard.press("u")
    assert lu.get_attribute("data-pos") == "1" and lu.locator(".ks-hist-btn").count() == 2
    # the other stepper did not move
    assert _root(page, APF).get_attribute("data-pos") == "0"
    # a step's key is on its button, and the hint says to click the stepper first
    assert "[0]" in lu.locator(".ks-step").first.inner_text()
    assert "Click the stepper first" in lu.locator(".ks-keys").inner_text()
    assert size < 1_500_000


def test_model_text_is_text(page, site):
    url, _, _ = site
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
    page.wait_for_function(f"document.querySelector('#kvmlab-stepper-{LU}').dataset.pos === '2'")
    assert "done" in lu.locator(".ks-cpu").nth(1).locator(".ks-why").inner_text()


def test_blocked_reason_reachable_and_choices_keep_focus(page, site):
    url, _, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    apf.get_by_role("button", name="Step CPU1").click()  # waker: raw_spin_lock(&b->lock)
    cpu0 = apf.locator(".ks-cpu").first
    btn = cpu0.get_by_role("button", name="Step CPU0")
    # aria-disabled, not disabled: the button stays in the tab order and describes its reason
    assert btn.get_attribute("aria-disabled") == "true" and btn.evaluate("(b) => !b.disabled && b.tabIndex >= 0")
    assert "spinning on b->lock (held by CPU1)" in cpu0.locator(".ks-why").inner_text()
    desc = page.evaluate("(b) => document.getElementById(b.getAttribute('aria-describedby')).textContent",
                         btn.element_handle())
    assert "spinning on b->lock" in desc
    btn.click(force=True)  # ignored
    assert apf.get_attribute("data-pos") == "1"
    for _ in range(3):
        apf.get_by_role("button", name="Step CPU1").click()
    cpu1 = apf.locator(".ks-cpu").nth(1)
    choices = cpu1.locator(".ks-choice")
    assert choices.count() == 2
    assert {choices.nth(i).inner_text() for i in range(2)} == {"kmalloc: ok", "kmalloc: fail"}
    # a keyboard user picks an outcome: focus stays on that CPU (its Step button), not on the page
    cpu1.get_by_role("button", name="Step CPU1 with outcome kmalloc: fail").focus()
    page.keyboard.press("Enter")
    assert apf.get_attribute("data-pos") == "5"
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused.startswith("Step CPU1"), focused
    _wait_hash(page, f"stepper-{APF}=1,1,1,1,1:fail")
    # the live region announces only the new step
    live = apf.locator(".ks-sr").inner_text()
    assert live.startswith("Step 5: CPU1 ran") and "\n" not in live.strip()


def test_win_only_for_the_goal_and_par(page, site):
    import kvmlab

    url, _, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    r = kvmlab.check("apf_wake", "unlock_alloc", reduction=False)
    side = r.violation("no_duplicate_token").schedule
    goal = r.violation("no_lost_wakeup").schedule
    # a run that breaks another property first: amber note, no win
    _play(page, APF, side)
    assert _outcome(page, APF) != "win"
    assert "ks-side-amber" in apf.locator(".ks-status").get_attribute("class")
    assert "Also broken" in _status(page, APF) and "no_duplicate_token" in _status(page, APF)
    apf.locator(".ks-bar").get_by_role("button", name=re.compile("^Reset")).click()
    assert "Goal reachable" in _status(page, APF) and str(len(goal)) in _status(page, APF)
    _play(page, APF, goal)
    assert _outcome(page, APF) == "win"
    st = _status(page, APF)
    assert "You found it" in st and "no_lost_wakeup" in st and "asleep in schedule() forever" in st
    assert f"your run: {len(goal)} steps" in st and "par:" in st
    assert "ks-st-win" in apf.locator(".ks-status").get_attribute("class")
    # the solved puzzle is remembered, and shown
    assert "solved" in apf.locator(".ks-solved-badge").inner_text()
    stored = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('kvmlab-solved:'))")
    assert any(k.endswith(":" + APF) for k in stored)


def test_loss_dead_and_fixed(page, site):
    url, _, _ = site
    page.goto(url + f"#stepper-{LU}=0,0,1,1")
    lu = _root(page, LU)
    lu.locator(".ks-cpu").first.wait_for()
    assert _outcome(page, LU) == "lost"
    st = _status(page, LU)
    assert "Run over, goal not reached" in st and "✓" not in st
    back = lu.locator(".ks-goback")
    back.click()
    assert _outcome(page, LU) == "playing"
    # CPU0 ran to the end first: the lost update is impossible from there
    page.goto(url.split("#")[0] + f"#stepper-{LU}=0,0")
    lu = _root(page, LU)
    lu.locator(".ks-cpu").first.wait_for()
    assert _outcome(page, LU) == "dead" and "No longer reachable" in _status(page, LU)
    assert _outcome(page, FIXED) == "safe"
    assert re.search(r"The explorer checked all \d+ states", _status(page, FIXED))
    assert "no schedule reaches the bad state" in _status(page, FIXED)


def test_undo_after_reset_and_show_me(page, site):
    url, _, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    _play(page, APF, ["1", "1", "1"])
    bar = apf.locator(".ks-bar")
    bar.get_by_role("button", name=re.compile("^Reset")).click()
    assert apf.get_attribute("data-pos") == "0"
    bar.get_by_role("button", name=re.compile("^Undo")).click()
    assert apf.get_attribute("data-pos") == "3"
    _wait_hash(page, f"stepper-{APF}=1,1,1")
    # show me replaces the run; undo brings it back
    page.evaluate(f"document.querySelector('#kvmlab-stepper-{APF}').__kvmlabPlayer.opts.delay = 1")
    apf.get_by_role("button", name=re.compile("^Show me")).click()
    page.wait_for_function(f"document.querySelector('#kvmlab-stepper-{APF}').dataset.outcome === 'win'")
    assert "played by Show me: not counted as solved" in _status(page, APF)
    bar.get_by_role("button", name=re.compile("^Undo")).click()
    assert apf.get_attribute("data-pos") == "3"
    assert [apf.locator(".ks-hist-btn").nth(i).inner_text()[:4] for i in range(3)] == ["CPU1", "CPU1", "CPU1"]


def test_a_loop_played_by_hand_is_named(page, site):
    url, _, data = site
    page.goto(url)
    lp = _root(page, LOOP)
    lp.locator(".ks-cpu").first.wait_for()
    cex = data[LOOP]["counterexamples"]["terminates"]
    _play(page, LOOP, cex["schedule"])
    st = _status(page, LOOP)
    assert _outcome(page, LOOP) == "win"
    assert f"you are back in the state of step {cex['loop_start']}: this can repeat forever" in st
    # one more lap: still named, still the win
    _play(page, LOOP, cex["schedule"][cex["loop_start"]:])
    assert _outcome(page, LOOP) == "win"
    assert "terminates" in lp.locator(".ks-prop.ks-bad-goal").inner_text()


def test_run_until_shared_state(page, site):
    url, _, _ = site
    page.goto(url)
    lu = _root(page, LU)
    lu.locator(".ks-cpu").first.wait_for()
    lu.locator(".ks-cpu").first.locator(".ks-run").click()
    assert lu.get_attribute("data-pos") == "2", "load (private), then store (shared): stop after the store"
    assert "counter" in lu.locator(".ks-kv.ks-changed").inner_text()
    assert "CPU0 ran 2 steps and stopped: it changed the shared state" in lu.locator(".ks-sr").inner_text()
    lu.focus()
    page.keyboard.press("Shift+Digit1")
    assert lu.get_attribute("data-pos") == "4"


def test_wide_mode(page, site):
    url, _, _ = site
    page.goto(url)
    four = _root(page, FOUR)
    four.locator(".ks-cpu").first.wait_for()
    w0 = four.bounding_box()["width"]
    four.get_by_role("button", name=re.compile("^Play in the whole window")).click()
    box = four.bounding_box()
    assert box["width"] == DESKTOP["width"] and box["width"] > w0 and box["y"] == 0
    page.keyboard.press("Escape")
    assert four.bounding_box()["width"] == w0


def test_links_open_details_cap_and_cut(page, site, capsys):
    url, _, data = site
    base = url.split("#")[0]
    page.goto(base + f"#stepper-{FOLDED}=0,1")
    fo = _root(page, FOLDED)
    fo.locator(".ks-cpu").first.wait_for(state="visible")
    assert page.evaluate("document.getElementById('fold').open")
    assert fo.get_attribute("data-pos") == "2"
    box = fo.bounding_box()
    assert 0 <= box["y"] < DESKTOP["height"], box
    # an illegal item: a visible notice says where the trace was cut
    page.goto(base + f"#stepper-{LU}=0,1,7,1")
    lu = _root(page, LU)
    lu.locator(".ks-cpu").first.wait_for()
    assert lu.get_attribute("data-pos") == "2"
    assert 'cut at item 3 ("7")' in _status(page, LU)
    # a trace of 6,000 items loads in linear time, capped at 2,000, with a notice
    c = data[LOOP]["counterexamples"]["terminates"]
    items = list(c["schedule"][:c["loop_start"]])
    while len(items) < 6000:
        items += c["schedule"][c["loop_start"]:]
    page.goto("about:blank")
    page.goto(base + f"#stepper-{LOOP}=" + ",".join(items))
    lp = _root(page, LOOP)
    lp.locator(".ks-cpu").first.wait_for()
    assert lp.get_attribute("data-pos") == "2000"
    assert f"has {len(items)} steps: the stepper loaded the first 2000" in _status(page, LOOP)
    ms = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    with capsys.disabled():
        print(f"\n[stepper: page with a {len(items)}-item trace] DOMContentLoaded at {ms:.0f} ms")


def test_version_mismatch_is_refused_visibly(page, site):
    url, _, _ = site
    page.goto(url)
    old = _root(page, OLD)
    assert "format v1" in old.inner_text() and "reads v2" in old.inner_text()
    assert old.locator(".ks-cpu").count() == 0


def _inside(box, vp):
    return box and box["y"] >= 0 and box["y"] + box["height"] <= vp["height"] and box["x"] >= 0 \
        and box["x"] + box["width"] <= vp["width"]


@pytest.mark.parametrize("sid", [LU, APF, FOUR, LOOP])
def test_one_screen_at_1366x900(browser, site, sid):
    """Controls, each CPU's Step button and current line, the status and the shared state: all visible."""
    url, _, _ = site
    ctx, page = _open(browser, DESKTOP)
    page.goto(url)
    root = _root(page, sid)
    root.locator(".ks-cpu").first.wait_for()
    root.evaluate("(r) => r.scrollIntoView({block: 'start'})")
    checks = {"bar": root.locator(".ks-bar"), "status": root.locator(".ks-status"),
              "shared": root.locator(".ks-shared")}
    n = root.locator(".ks-cpu").count()
    assert n == 4 if sid == FOUR else n >= 2
    for t in range(n):
        cpu = root.locator(".ks-cpu").nth(t)
        checks[f"step{t}"] = cpu.locator(".ks-step")
        if cpu.locator(".ks-line.ks-current").count():
            checks[f"line{t}"] = cpu.locator(".ks-line.ks-current")
    # CPUs side by side
    tops = {round(root.locator(".ks-cpu").nth(t).bounding_box()["y"]) for t in range(n)}
    assert len(tops) == 1, f"CPUs are not side by side: {tops}"
    out = {k: loc.bounding_box() for k, loc in checks.items() if not _inside(loc.bounding_box(), DESKTOP)}
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"desktop-{sid}.png"))
    ctx.close()
    assert not out, f"outside the 1366x900 viewport: {out}"


def test_status_does_not_move_the_buttons(page, site):
    url, _, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    def y():  # Step CPU0's place in the stepper (clicks may scroll the page)
        return apf.locator(".ks-step").first.bounding_box()["y"] - apf.bounding_box()["y"]

    y0 = y()
    import kvmlab
    sched = kvmlab.check("apf_wake", "unlock_alloc", reduction=False).violation("no_duplicate_token").schedule
    for k, mv in enumerate(sched):
        _play(page, APF, [mv])
        assert y() == y0, f"Step CPU0 moved at step {k + 1}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_no_overflow_and_touch_targets(browser, site, scheme):
    url, _, _ = site
    ctx, page = _open(browser, PHONE, scheme=scheme, mobile=True)
    page.goto(url)
    _root(page, APF).locator(".ks-cpu").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for sid in (LU, APF, FOUR):
        root = _root(page, sid)
        root.evaluate("(r) => r.scrollIntoView({block: 'start'})")
        for t in range(root.locator(".ks-cpu").count()):
            cpu = root.locator(".ks-cpu").nth(t)
            shown = cpu.locator(".ks-curline").is_visible() or cpu.locator(".ks-line.ks-current").is_visible()
            assert shown or cpu.locator(".ks-why").inner_text().startswith("✓"), "each CPU shows its current line"
            for b in (cpu.locator(".ks-step"), cpu.locator(".ks-run")):
                h = b.bounding_box()["height"]
                assert h >= 44, (sid, t, h)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"phone-{scheme}-{sid}.png"))
    _play(page, APF, ["1", "1"])
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ctx.close()


@pytest.mark.parametrize("mode", ["light", "dark-system", "dark-theme"])
def test_contrast(browser, site, mode):
    url, _, _ = site
    ctx, page = _open(browser, DESKTOP, scheme="dark" if mode == "dark-system" else "light")
    page.goto(url + f"#stepper-{APF}=1,1,1,1,1,0,0&stepper-{LU}=0,0,1,1")
    if mode == "dark-theme":
        page.evaluate("document.documentElement.dataset.theme = 'dark'")
    _root(page, APF).locator(".ks-cpu").first.wait_for()
    for sid in (APF, LU, FIXED, LOOP):
        bad = page.evaluate(CONTRAST_JS, _root(page, sid).element_handle())
        assert not bad, (sid, mode, bad[:8])
    bgc = page.evaluate(f"getComputedStyle(document.querySelector('#kvmlab-stepper-{APF}')).backgroundColor")
    assert bgc == ("rgb(255, 255, 255)" if mode == "light" else "rgb(22, 27, 34)"), bgc
    SHOTS.mkdir(parents=True, exist_ok=True)
    _root(page, APF).screenshot(path=str(SHOTS / f"apf-{mode}.png"))
    ctx.close()


def test_explicit_light_theme_wins_over_dark_system(browser, site):
    url, _, _ = site
    ctx, page = _open(browser, DESKTOP, scheme="dark")
    page.goto(url)
    page.evaluate("document.documentElement.dataset.theme = 'light'")
    bgc = page.evaluate(f"getComputedStyle(document.querySelector('#kvmlab-stepper-{APF}')).backgroundColor")
    assert bgc == "rgb(255, 255, 255)", bgc
    ctx.close()


def test_click_latency(page, site, capsys):
    """A benchmark, not a test of speed: prints the median click-to-update time."""
    url, _, _ = site
    page.goto(url)
    apf = _root(page, APF)
    apf.locator(".ks-cpu").first.wait_for()
    times = page.evaluate(
        """(sid) => {
            const root = document.querySelector('#kvmlab-stepper-' + sid);
            const out = [];
            for (let round = 0; round < 3; round++) {
              [...root.querySelectorAll('.ks-bar .ks-btn')].find(b => b.textContent.includes('Reset')).click();
              for (let k = 0; k < 40; k++) {
                const ok = (x) => x.classList.contains('ks-choice')
                  || (x.getAttribute('aria-disabled') !== 'true' && !x.closest('.ks-cpu').querySelector('.ks-choice'));
                const b = [...root.querySelectorAll('.ks-step, .ks-choice')].find(ok);
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
    med = statistics.median(times)
    p90 = sorted(times)[int(0.9 * len(times))]
    with capsys.disabled():
        print(f"\n[stepper click-to-update, apf_wake unlock_alloc] n={len(times)} "
              f"median={med:.2f} ms p90={p90:.2f} ms max={max(times):.2f} ms")


def test_anywidget_module(page, site):
    url, _, _ = site
    page.goto(url.replace("index.html", "widget.html"))
    page.wait_for_selector("body[data-ready='1']")
    st = page.locator("#out .kvmlab-stepper")
    st.get_by_role("button", name="Step CPU1").click()
    assert "store" in st.locator(".ks-cpu").nth(1).locator(".ks-current").inner_text()
    assert "#" not in page.url  # in a notebook the page URL is the front end's: left alone


def test_console_prints_the_splat_at_its_step(page, site):
    url, _, _ = site
    page.goto(url + "#stepper-apf_wake-original=1,1,1")
    st = _root(page, "apf_wake-original")
    st.locator(".ks-cpu").first.wait_for()
    assert st.locator(".ks-console").inner_text() == "(no kernel messages)"
    assert "GFP_ATOMIC" in _current(page, "apf_wake-original", 1)
    st.get_by_role("button", name="Step CPU1 with outcome kmalloc: ok").click()
    con = st.locator(".ks-console").inner_text()
    assert con.startswith("[step 4] BUG: sleeping function called from invalid context")
    assert "in_atomic(): 1" in con
    assert "You found it" in _status(page, "apf_wake-original")
    assert "⚠" in st.locator(".ks-hist li").nth(3).inner_text()
