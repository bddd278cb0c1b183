"""Sphinx extension for the static book: ``extensions: [kvmlab.widgets.sphinx]``.

It sets ``KVMLAB_STATIC=1`` so the kernels myst-nb starts render steppers as
self-contained HTML (never as ipywidgets, which need a widget manager from a
CDN), and makes ``text/html`` the preferred output for HTML builders.
"""

from __future__ import annotations

import os

MIME_OVERRIDES = [
    ("html", "text/html", 0),
    ("dirhtml", "text/html", 0),
    ("singlehtml", "text/html", 0),
]


def _config_inited(app, config):
    cur = list(getattr(config, "nb_mime_priority_overrides", None) or [])
    have = {(b, m) for b, m, _ in cur}
    cur += [o for o in MIME_OVERRIDES if (o[0], o[1]) not in have]
    config.nb_mime_priority_overrides = cur


def setup(app):
    os.environ["KVMLAB_STATIC"] = "1"
    app.connect("config-inited", _config_inited, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
