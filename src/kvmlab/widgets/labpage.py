"""Sphinx extension: every lab page of the static book gets a runnable "try it here" box.

``extensions: [kvmlab.widgets.labpage]``. A page is a lab page when its
document name is a lab's notebook path (``kvmlab.labs.get(id).notebook``
without ``.ipynb``), so a lab notebook needs nothing extra. The box goes right
after the notebook's answer cell (tag ``answer``, else ``starter``), or before
its ``grade`` cell, or at the end of the page. It holds the lab's starter
(``Lab.starter``); labpage.js grades it with ``kvmlab.labs.grade_source`` on
Pyodide in a Web Worker (:mod:`kvmlab.widgets.webrun`).

At the end of the build, ``_build/html/_kvmlab/`` receives the runtime that
``tools/vendor_web.py`` vendored (``kvmlab_web_dir``: Pyodide, the editor,
licences), a ``kvmlab`` wheel built here from the installed package, and the
page scripts. Without the vendored runtime the box says how to get it and the
build still succeeds.

Every page with steppers also gets a "Change the set-up" panel above each one
(``static/stepper-panel.js``; ``kvmlab_stepper_panels: false`` turns it off):
it re-explores the model with other settings in the same worker.

The ``kvmlab-try`` directive gives a chapter exercise that asks for a new
variant the same box (see :func:`_try_directive`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import posixpath
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

ASSET_DIR = "_kvmlab"
STATIC = ["labpage.js", "labpage.css", "lab-worker.js", "stepper.js", "stepper.css", "stepper-panel.js"]
_STEPPER_MODEL = re.compile(r'class="kvmlab-stepper-data">\{"v":\d+,"id":[^,]*,"model":"([A-Za-z0-9_]+)"')
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _labs() -> list:
    """The lab registry's labs, or [] when ``kvmlab.labs`` is not available."""
    try:
        from .. import labs
    except ImportError:
        return []
    seq = labs.LABS.values() if isinstance(labs.LABS, dict) else labs.LABS
    return [labs.get(x) if isinstance(x, str) else x for x in seq]


def lab_docs() -> dict[str, str]:
    """Document name (notebook path without ``.ipynb``) -> lab id."""
    out = {}
    for lab in _labs():
        nb = str(lab.notebook).replace("\\", "/")
        out[nb[:-len(".ipynb")] if nb.endswith(".ipynb") else nb] = lab.id
    return out


def build_wheel(dest_dir: Path) -> Path:
    """Write a pure-Python wheel of the installed ``kvmlab`` package into ``dest_dir``.

    Built with ``zipfile`` (reproducible: fixed timestamps, sorted entries), so
    no build backend or network is needed at book-build time.
    """
    from .._version import __version__ as version
    pkg = Path(__file__).resolve().parent.parent  # kvmlab/
    # pure Python for Pyodide: not the compiled core (its C source, build script, or binary)
    files = sorted(p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix not in (".pyc", ".pyo", ".so", ".pyd", ".c")
                   and p.name != "_core_build.py")
    dist = f"kvmlab-{version}.dist-info"
    meta = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: kvmlab\nVersion: {version}\n"
                            "Summary: KVM concurrency, stepped through (browser build of the book's labs)\n"
                            "License: GPL-2.0-only\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: kvmlab.widgets.labpage\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"kvmlab-{version}-py3-none-any.whl"
    tmp = path.with_suffix(".tmp")
    record = []

    def add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
        zi = zipfile.ZipInfo(name, _ZIP_TIME)
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.external_attr = 0o644 << 16
        zf.writestr(zi, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")

    with zipfile.ZipFile(tmp, "w") as zf:
        for f in files:
            add(zf, "kvmlab/" + f.relative_to(pkg).as_posix(), f.read_bytes())
        for name, text in meta.items():
            add(zf, name, text.encode())
        record.append(f"{dist}/RECORD,,")
        zf.writestr(zipfile.ZipInfo(f"{dist}/RECORD", _ZIP_TIME), "\n".join(record) + "\n")
    if path.exists() and path.read_bytes() == tmp.read_bytes():
        tmp.unlink()  # unchanged: keep the old file (and its mtime, for HTTP caching)
    else:
        tmp.replace(path)
    return path


def _json_for_script(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def box_html(lab_id: str, base: str, *, timeout: int, runtime: bool, wheel: str) -> str:
    """The lab box's HTML for a page whose path to ``_kvmlab/`` is ``base``."""
    from .webrun import lab_page_data
    data = lab_page_data(lab_id)
    data["timeout"] = timeout
    e = html.escape
    if not runtime:
        return ('<div class="kvmlab-lab kvmlab-lab-missing"><p><strong>Try it here</strong>: this lab can run in '
                'your browser, but this copy of the book was built without the browser runtime '
                '(<code>make web</code> vendors it; <code>make book</code> does it for you). Use the notebook '
                'instead.</p></div>\n')
    return (f'<link rel="stylesheet" href="{e(base)}labpage.css">\n'
            f'<div class="kvmlab-lab" id="kvmlab-lab-{e(lab_id)}" data-kvmlab-base="{e(base)}" '
            f'data-kvmlab-wheel="{e(wheel)}">'
            f'<script type="application/json" class="kvmlab-lab-data">{_json_for_script(data)}</script>'
            f'<noscript><p>This lab can run in your browser; it needs JavaScript.</p></noscript>'
            f'<p class="kvmlab-lab-fallback">Loading the runnable lab…</p></div>\n'
            f'<script src="{e(base)}editor.js" defer></script>\n'
            f'<script src="{e(base)}labpage.js" defer></script>\n')


def try_box_html(spec: dict, starter: str, base: str, *, box_id: str, title: str, timeout: int, runtime: bool,
                 wheel: str) -> str:
    """A chapter exercise's "try it here" box: the learner's variant, checked by :func:`.webrun.try_variant`."""
    e = html.escape
    if not runtime:
        return ('<div class="kvmlab-lab kvmlab-lab-missing"><p><strong>Try it here</strong>: this exercise can '
                'run in your browser, but this copy of the book was built without the browser runtime '
                '(<code>make web</code>).</p></div>\n')
    bounds = "; ".join(" ".join(f"{k}={v}" for k, v in {**c, **p}.items()) or "defaults"
                       for c in (spec.get("configs") or [{}]) for p in (spec.get("params") or [{}]))
    data = {"id": box_id, "kind": "try", "title": title, "starter": starter, "names": [spec["name"]],
            "bounds": bounds, "spec": spec, "timeout": timeout}
    return (f'<link rel="stylesheet" href="{e(base)}labpage.css">\n'
            f'<div class="kvmlab-lab kvmlab-try" id="kvmlab-lab-{e(box_id)}" data-kvmlab-base="{e(base)}" '
            f'data-kvmlab-wheel="{e(wheel)}">'
            f'<script type="application/json" class="kvmlab-lab-data">{_json_for_script(data)}</script>'
            f'<noscript><p>This exercise can run in your browser; it needs JavaScript.</p></noscript>'
            f'<p class="kvmlab-lab-fallback">Loading the runnable exercise…</p></div>\n'
            f'<script src="{e(base)}editor.js" defer></script>\n'
            f'<script src="{e(base)}labpage.js" defer></script>\n')


def _parse_sets(text: str | None, what: str) -> list[dict] | None:
    """``"cpus=2 loops=1; cpus=3"`` -> ``[{"cpus": "2", "loops": "1"}, {"cpus": "3"}]``."""
    if not text:
        return None
    out = []
    for part in text.split(";"):
        d = {}
        for item in part.split():
            k, sep, v = item.partition("=")
            if not sep or not k:
                raise ValueError(f"{what}: {item!r} is not NAME=VALUE")
            d[k] = v
        out.append(d)
    return out


def _try_directive():
    from docutils import nodes
    from docutils.parsers.rst import directives
    from sphinx.util.docutils import SphinxDirective

    class TryDirective(SphinxDirective):
        """``{kvmlab-try} MODEL``: a runnable box for an exercise that asks for a new variant.

        Options: ``:variant:`` (the base variant), ``:program:`` (the program role the answer
        replaces), ``:name:`` (the class the answer defines), ``:params:`` and ``:configs:``
        (sets separated by ``;``, e.g. ``cpus=2; cpus=3`` and ``PREEMPT_RT=y; PREEMPT_RT=n``),
        ``:title:``. The content is the starter code.
        """

        required_arguments = 1
        has_content = True
        option_spec = {"variant": directives.unchanged_required, "program": directives.unchanged_required,
                       "name": directives.unchanged_required, "params": directives.unchanged,
                       "configs": directives.unchanged, "title": directives.unchanged}

        def run(self):
            from .. import api
            from ..engine import KvmlabError
            model = self.arguments[0]
            try:
                mcls = api.model(model)
                variant = self.options.get("variant") or next(iter(mcls.variants))
                v = mcls.variant(variant)
                role = self.options["program"]
                if role not in v.programs:
                    raise KvmlabError(f"program {role!r}: not a program of {model}/{variant} "
                                      f"(known: {', '.join(v.programs)})")
                params = _parse_sets(self.options.get("params"), "params")
                configs = _parse_sets(self.options.get("configs"), "configs")
                for p in params or [{}]:
                    for c in configs or [{}]:
                        api.load(model, variant, config=c, params=p)  # validates names and bounds
            except (KvmlabError, KeyError, ValueError) as e:
                raise self.error(f"kvmlab-try: {e}") from None
            if "name" not in self.options:
                raise self.error("kvmlab-try: the :name: option (the class the answer defines) is required")
            spec = {"model": model, "variant": variant, "program": role, "name": self.options["name"],
                    "params": params, "configs": configs}
            env = self.env
            n = env.temp_data.get("kvmlab_try_n", 0) + 1
            env.temp_data["kvmlab_try_n"] = n
            box_id = f"try-{env.docname.replace('/', '-')}-{n}"
            base = posixpath.relpath(ASSET_DIR, posixpath.dirname(env.docname) or ".") + "/"
            raw = try_box_html(spec, "\n".join(self.content) + "\n", base, box_id=box_id,
                               title=self.options.get("title") or f"a new variant of {model}",
                               timeout=env.config.kvmlab_lab_timeout, runtime=_runtime_ok(env.app),
                               wheel=_wheel_name())
            return [nodes.raw("", raw, format="html")]

    return TryDirective


def _web_dir(app) -> Path:
    return Path(app.confdir) / app.config.kvmlab_web_dir


def _runtime_ok(app) -> bool:
    d = _web_dir(app)
    return (d / "pyodide" / "pyodide.asm.wasm").exists() and (d / "editor.js").exists()


def _wheel_name() -> str:
    from .._version import __version__
    return f"kvmlab-{__version__}-py3-none-any.whl"


def _insert_point(doctree):
    """(parent, index) where the box goes: after the answer cell, before the grade cell, or at the end."""
    from docutils import nodes

    def tagged(tag):
        return [n for n in doctree.findall(nodes.Element) if f"tag_{tag}" in n.get("classes", ())]

    for tag in ("answer", "starter"):
        found = tagged(tag)
        if found:
            n = found[-1]
            return n.parent, n.parent.index(n) + 1
    found = tagged("grade")
    if found:
        n = found[0]
        return n.parent, n.parent.index(n)
    sections = list(doctree.findall(nodes.section))
    parent = sections[0] if sections else doctree
    return parent, len(parent.children)


def panel_html(models: list[str], base: str, *, wheel: str, timeout: int) -> str:
    """The set-up panels' data and scripts for a page whose steppers show ``models``."""
    from .. import api
    specs = {}
    for m in api.list_models():
        if m["name"] in models:
            specs[m["name"]] = {"variants": [{"name": v["name"], "desc": v["desc"]} for v in m["variants"]],
                                "configs": m["configs"], "params": m["params"]}
    meta = {"base": base, "wheel": wheel, "timeout": timeout, "max_states": 20000, "models": specs}
    e = html.escape
    return (f'<link rel="stylesheet" href="{e(base)}labpage.css">\n'
            f'<script type="application/json" id="kvmlab-models">{_json_for_script(meta)}</script>\n'
            f'<script src="{e(base)}labpage.js" defer></script>\n'
            f'<script src="{e(base)}stepper-panel.js" defer></script>\n')


def _doctree_resolved(app, doctree, docname):
    if app.builder.format != "html":
        return
    from docutils import nodes
    base = posixpath.relpath(ASSET_DIR, posixpath.dirname(docname) or ".") + "/"
    if app.config.kvmlab_stepper_panels and _runtime_ok(app):
        models = sorted({m for n in doctree.findall(nodes.raw) for m in _STEPPER_MODEL.findall(n.astext())})
        if models:
            doctree.append(nodes.raw("", panel_html(models, base, wheel=_wheel_name(),
                                                    timeout=app.config.kvmlab_lab_timeout), format="html"))
    lab_id = lab_docs().get(docname)
    if lab_id is None:
        return
    raw = box_html(lab_id, base, timeout=app.config.kvmlab_lab_timeout, runtime=_runtime_ok(app),
                   wheel=_wheel_name())
    parent, ix = _insert_point(doctree)
    parent.insert(ix, nodes.raw("", raw, format="html"))


def _env_get_outdated(app, env, added, changed, removed):
    # a lab page shows kvmlab.labs' starter: re-read it every build (its cells come from the cache)
    return [d for d in lab_docs() if d in env.found_docs]


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def _build_finished(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    out = Path(app.outdir) / ASSET_DIR
    out.mkdir(parents=True, exist_ok=True)
    from .stepper import asset  # stepper.js is the player's parts joined
    for name in STATIC:
        (out / name).write_text(asset(name), encoding="utf-8")
    if not _runtime_ok(app):
        from sphinx.util import logging
        logging.getLogger(__name__).info(
            "kvmlab: no browser runtime in %s (run tools/vendor_web.py): lab pages are not runnable",
            _web_dir(app))
        return
    src = _web_dir(app)
    for f in sorted(src.rglob("*")):
        if f.is_file():
            _copy_if_changed(f, out / f.relative_to(src))
    build_wheel(out)


def setup(app):
    app.add_config_value("kvmlab_web_dir", "vendor/web/_kvmlab", "html")
    app.add_config_value("kvmlab_lab_timeout", 20, "html")
    app.add_config_value("kvmlab_stepper_panels", True, "html")
    app.add_directive("kvmlab-try", _try_directive(), override=True)  # several builds in one process
    app.connect("doctree-resolved", _doctree_resolved)
    app.connect("env-get-outdated", _env_get_outdated)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
