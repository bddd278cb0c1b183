"""The stepper's live face in a real JupyterLab, driven by headless Chromium.

Starts ``jupyter lab`` on a free 127.0.0.1 port with a token, in a temporary
root holding a generated notebook (never the repository: JupyterLab writes
checkpoints next to the notebooks it opens), runs all cells, plays the
stepper (step a CPU, back, "show me" to the goal banner), then saves the
notebook and reloads the page: the saved output must still be a working
stepper (the reason the live face is HTML by default, see
``kvmlab.widgets.stepper``). A second cell displays the anywidget face
(``KVMLAB_LIVE=widget``) and steps it through anywidget's own front end.
No request may leave 127.0.0.1 and the page may log no console error.

Skipped, with the reason, when ``jupyterlab`` is not importable (it is not in
``requirements.txt``) or there is no ``/usr/bin/chromium``. About 20-30 s.
The unit tests at the end check the live mime bundle without a front end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
NB = "live.ipynb"
# the notebook a student would write: a stepper, then the same stepper as the anywidget
CELLS = [
    "from kvmlab.widgets import Stepper\n\n"
    "Stepper('lost_update', 'plain', goal='Lose an update.', goal_property='no_lost_update')",
    "import os\n\nos.environ['KVMLAB_LIVE'] = 'widget'\n"
    "Stepper('lost_update', 'plain', goal_property='no_lost_update')",
    # the classroom control panel: variant, configs and params re-run the explorer
    "import kvmlab\n\nkvmlab.explore('lost_update')",
]
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
        return r.status


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install jupyterlab): "
                        "the live JupyterLab test needs it; it is not in requirements.txt")
    pytest.importorskip("anywidget", reason="anywidget is not installed")
    if not os.path.exists(CHROMIUM):
        pytest.skip("no /usr/bin/chromium")
    import nbformat

    root = tmp_path_factory.mktemp("jlab")
    work = root / "notebooks"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, work / NB)
    settings = root / "settings"
    for plugin, value in [("docmanager-extension/plugin", {"autosave": False}),
                          ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False})]:
        f = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("KVMLAB_STATIC", None)
    env.pop("KVMLAB_LIVE", None)
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited ({proc.returncode}): {(root / 'server.log').read_text()[-2000:]}")
            try:
                if _get(f"{base}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("jupyter lab did not answer within 60 s")
            time.sleep(0.3)
        yield {"base": base, "token": token, "root": work}
    finally:
        try:  # a clean stop also shuts the kernels down
            req = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=5)  # noqa: S310 - 127.0.0.1 only
        except OSError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def page(lab):
    sync_api = pytest.importorskip("playwright.sync_api")
    errors, outside = [], []
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = b.new_page(viewport={"width": 1300, "height": 1000})
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))

        def route(r):
            if r.request.url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")):
                try:
                    r.continue_()
                except Exception:  # noqa: BLE001 - the page navigated away: nothing to continue
                    pass
            else:
                outside.append(r.request.url)
                r.abort()

        pg.route("**/*", route)
        pg.errors, pg.outside = errors, outside
        yield pg
        b.close()
    assert not outside, f"requests leaving 127.0.0.1: {outside}"


def _open(pg, lab):
    pg.goto(f"{lab['base']}/lab/tree/{NB}?token={lab['token']}")
    pg.wait_for_selector(f"{PANEL} .jp-Cell", timeout=60000)
    pg.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')",
                         timeout=60000)


def _cur_lines(st):
    return st.evaluate("(s) => [...s.querySelectorAll('.ks-cpu')].map(c => "
                       "[...c.querySelectorAll('.ks-line')].findIndex(l => l.classList.contains('ks-current')))")


def _play(pg, st):
    """Step CPU0: its highlighted line moves; back; "show me" reaches the goal banner."""
    st.scroll_into_view_if_needed()
    assert _cur_lines(st) == [0, 0]
    st.locator(".ks-step").first.click()
    pg.wait_for_function("(s) => s.querySelector('.ks-counter').textContent.startsWith('step 1')",
                         arg=st.element_handle(), timeout=5000)
    assert _cur_lines(st) == [1, 0]
    st.locator("button", has_text="Back").click()
    assert _cur_lines(st) == [0, 0]
    st.locator(".ks-show").click()
    st.locator(".ks-banner-bad").wait_for(timeout=15000)
    assert "Goal reached" in st.locator(".ks-banner").inner_text()
    assert "no_lost_update" in st.locator(".ks-banner").inner_text()


@pytest.mark.browser
def test_live_stepper_in_jupyterlab(page, lab):
    pg = page
    _open(pg, lab)
    pg.wait_for_function("() => document.body.innerText.includes('| Idle')", timeout=60000)
    pg.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    cells = pg.locator(f"{PANEL} .jp-CodeCell")
    html_out, widget_out = (cells.nth(i).locator(".jp-OutputArea") for i in (0, 1))
    html_st = html_out.locator(".kvmlab-stepper")
    widget_st = widget_out.locator(".kvmlab-stepper")
    html_st.locator(".ks-cpu").first.wait_for(timeout=60000)
    widget_st.locator(".ks-cpu").first.wait_for(timeout=60000)

    # the default live face: the HTML, rendered by JupyterLab (trusted output: its scripts ran)
    assert html_out.locator(".jp-OutputArea-output[data-mime-type='text/html']").count() == 1
    assert html_st.get_attribute("data-kvmlab-live") == "1"
    _play(pg, html_st)
    assert "stepper-" not in pg.url, "a notebook stepper must leave JupyterLab's URL alone"
    html_st.screenshot(path="/tmp/kvmlab-live-jupyterlab-html.png")

    # the anywidget face, through anywidget's front end in JupyterLab's widget manager
    assert widget_out.locator(".jp-OutputArea-output[data-mime-type='text/html']").count() == 0
    _play(pg, widget_st)
    widget_st.screenshot(path="/tmp/kvmlab-live-jupyterlab-widget.png")

    assert not pg.errors, f"console errors: {pg.errors}"

    # save, reload: the HTML output still plays, from the saved notebook alone (the widget output
    # now waits for a model that is gone: ipywidgets logs "widget model not found" for it)
    pg.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = lab["root"] / NB
    deadline = time.monotonic() + 20
    while "kvmlab-stepper" not in saved.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.3)
    _open(pg, lab)
    again = pg.locator(f"{PANEL} .jp-CodeCell").first.locator(".kvmlab-stepper")
    again.locator(".ks-cpu").first.wait_for(timeout=30000)
    _play(pg, again)
    pg.screenshot(path="/tmp/kvmlab-live-jupyterlab-page.png")
    errors = [e for e in pg.errors if "model not found" not in e]
    assert not errors, f"console errors after the reload: {errors}"


@pytest.mark.browser
def test_control_panel_in_jupyterlab(page, lab):
    """kvmlab.explore(): pick another variant in the panel, see the verdict and the stepper change."""
    pg = page
    seen = len(pg.errors)
    _open(pg, lab)
    pg.wait_for_function("() => document.body.innerText.includes('| Idle')", timeout=60000)
    # the saved notebook may hold an earlier panel (a widget view with no model): clear it first
    pg.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    pg.wait_for_function("() => !document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .kvmlab-panel')",
                         timeout=10000)
    pg.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    panel = pg.locator(f"{PANEL} .jp-CodeCell").nth(2).locator(".kvmlab-panel")
    verdict = panel.locator(".kvmlab-panel-verdict")
    # the verdict line is re-rendered on every change: wait by text, never on an old element
    panel.locator(".kvmlab-panel-verdict", has_text="breaks no_lost_update").wait_for(timeout=60000)
    assert "cpus=2" in verdict.inner_text()
    panel.locator(".kvmlab-stepper .ks-cpu").first.wait_for(timeout=30000)
    assert "Shortest counterexample" in panel.inner_text()

    panel.locator("select").first.select_option(label="spinlock")
    panel.locator(".kvmlab-panel-verdict", has_text="all properties hold").wait_for(timeout=30000)
    assert "spinlock" in verdict.inner_text()
    pg.wait_for_function("() => { const p = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                         ".kvmlab-panel'); return p.length === 1 && "
                         "!p[0].innerText.includes('Shortest counterexample'); }", timeout=10000)
    st = panel.locator(".kvmlab-stepper")
    st.locator(".ks-cpu").first.wait_for(timeout=30000)
    assert "spin_lock(&lock);" in st.inner_text()

    # a parameter: 3 CPUs (the slider's handle, moved with the keyboard)
    slider = panel.locator(".widget-slider", has_text="cpus").locator(".noUi-handle, .slider-handle, [role=slider]")
    slider.first.focus()
    pg.keyboard.press("ArrowRight")
    panel.locator(".kvmlab-panel-verdict", has_text="cpus=3").wait_for(timeout=30000)
    assert "all properties hold" in verdict.inner_text()
    panel.screenshot(path="/tmp/kvmlab-live-jupyterlab-panel.png")
    errors = [e for e in pg.errors[seen:] if "model not found" not in e]
    assert not errors, f"console errors: {errors}"


# -- the live mime bundle, without a front end ------------------------------------------------------

def test_live_bundle_is_html_that_leaves_the_url_alone(monkeypatch):
    from kvmlab.widgets import Stepper
    from kvmlab.widgets import stepper as mod

    monkeypatch.delenv("KVMLAB_STATIC", raising=False)
    monkeypatch.delenv("KVMLAB_LIVE", raising=False)
    monkeypatch.setattr(mod, "_in_kernel", lambda: True)
    s = Stepper("lost_update", "plain")
    b = s._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in b
    h = b["text/html"]
    assert 'data-kvmlab-live="1"' in h and 'id="kvmlab-stepper-js"' in h, "each live output inlines the player"
    assert 'class="ks-placeholder"' in h and "<noscript>" not in h
    assert s._repr_mimebundle_()["text/html"].count('id="kvmlab-stepper-js"') == 1  # and the next one too
    static = s.to_html(assets=False)
    assert "data-kvmlab-live" not in static and "<noscript>" in static and "ks-placeholder" not in static


def test_live_bundle_widget_on_request(monkeypatch):
    pytest.importorskip("anywidget")
    from kvmlab.widgets import Stepper
    from kvmlab.widgets import stepper as mod

    monkeypatch.delenv("KVMLAB_STATIC", raising=False)
    monkeypatch.setenv("KVMLAB_LIVE", "widget")
    monkeypatch.setattr(mod, "_in_kernel", lambda: not mod.static_mode())
    s = Stepper("lost_update", "plain")
    b = s._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in b
    assert b["text/plain"] == repr(s)
    assert 'data-kvmlab-live="1"' in b["text/html"]  # the fallback for front ends without a widget manager
    monkeypatch.setenv("KVMLAB_STATIC", "1")  # building the book wins over KVMLAB_LIVE
    assert "application/vnd.jupyter.widget-view+json" not in Stepper("lost_update", "plain")._repr_mimebundle_()
