"""Sphinx extension for the static book: ``extensions: [kvmlab.widgets.sphinx]``.

It sets ``KVMLAB_STATIC=1`` so the kernels myst-nb starts render steppers as
self-contained HTML (never as ipywidgets, which need a widget manager from a
CDN), and makes ``text/html`` the preferred output for HTML builders.

It also builds the puzzle index: a page holding ``<div class="kvmlab-puzzles">``
gets, at write time, a table of every stepper in the book (found in the
executed pages' outputs by their ``data-kvmlab-puzzle`` summary), by page and
section, with its difficulty (the fewest context switches and steps of a
solution) and, read from the reader's browser, whether it is solved. The pages
named in ``kvmlab_puzzle_pages`` are re-read on every build, so the index
follows the chapters.
"""

from __future__ import annotations

import html
import json
import os
import re
from html.parser import HTMLParser

from docutils import nodes

MIME_OVERRIDES = [
    ("html", "text/html", 0),
    ("dirhtml", "text/html", 0),
    ("singlehtml", "text/html", 0),
]
PLACEHOLDER = re.compile(r'<div class="kvmlab-puzzles"[^>]*>.*?</div>', re.S)


def _config_inited(app, config):
    cur = list(getattr(config, "nb_mime_priority_overrides", None) or [])
    have = {(b, m) for b, m, _ in cur}
    cur += [o for o in MIME_OVERRIDES if (o[0], o[1]) not in have]
    config.nb_mime_priority_overrides = cur


class _Visible(HTMLParser):
    """The ``data-kvmlab-puzzle`` summaries of an HTML fragment that no ``hidden`` element encloses."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-kvmlab-puzzle" in a and not any(h for _, h in self.stack) and "hidden" not in a:
            self.found.append(a["data-kvmlab-puzzle"] or "")
        if tag not in self.VOID:
            self.stack.append((tag, "hidden" in a))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break


def puzzles_in(doctree) -> list[dict]:
    """The steppers a reader can see in a page's doctree (none inside a ``hidden`` element, e.g. a
    drill's answer), in order, each with the section it sits in."""
    out = []
    for node in doctree.findall(nodes.raw):
        text = node.astext()
        if "data-kvmlab-puzzle" not in text:
            continue
        sec = node.parent
        while sec is not None and not isinstance(sec, nodes.section):
            sec = sec.parent
        section = sec[0].astext() if sec is not None and len(sec) and isinstance(sec[0], nodes.title) else ""
        parser = _Visible()
        parser.feed(text)
        for raw in parser.found:
            try:
                p = json.loads(raw)
            except ValueError:
                continue
            p["section"] = section
            out.append(p)
    return out


def _outdated(app, env, added, changed, removed):
    return [d for d in app.config.kvmlab_puzzle_pages if d in env.found_docs]


def _collect(app, env):
    pages = []
    for doc in sorted(env.found_docs):
        if doc in app.config.kvmlab_puzzle_pages:
            continue
        try:
            tree = env.get_doctree(doc)
        except Exception:  # a page without a pickled doctree: nothing to list
            continue
        found = puzzles_in(tree)
        if found:
            title = env.titles[doc].astext() if doc in env.titles else doc
            pages.append((doc, title, found))
    env.kvmlab_puzzles = pages


def difficulty(p: dict) -> tuple[str, int]:
    """A label and a sort key: the fewest context switches of a solution (then its steps)."""
    par = p.get("par")
    if par:
        sw, steps = par["switches"], par["steps"]
        label = ("warm-up" if sw <= 1 else "easy" if sw == 2 else "medium" if sw == 3 else "hard")
        return f"{label}: {sw} switch{'es' if sw != 1 else ''}, {steps} steps", sw
    if p.get("goal_property"):
        return f"unbreakable: {p['states']} states, none breaks it", 98
    if p.get("goal") and not p.get("breaks"):
        return f"walk-through: nothing breaks in {p['states']} states", 97
    return "free play", 99


def index_html(pages: list[tuple[str, str, list[dict]]], uri) -> str:
    """The index table; ``uri(docname)`` is the page's link relative to the index."""
    if not pages:
        return '<p class="kvmlab-puzzles-empty">No stepper in this book yet.</p>'
    rows = []
    n = 0
    for doc, title, found in pages:
        rows.append(f'<tr class="kp-page"><th colspan="4" scope="rowgroup">{html.escape(title)}</th></tr>')
        base = uri(doc)
        page_key = os.path.basename(base.split("#")[0]).rsplit(".", 1)[0]
        for p in found:
            n += 1
            label, _ = difficulty(p)
            goal = p.get("goal") or ("break " + p["goal_property"] if p.get("goal_property") else "explore")
            sid = html.escape(p["id"], quote=True)
            rows.append(
                f'<tr data-solved-key="kvmlab-solved:{html.escape(page_key, quote=True)}:{sid}">'
                f'<td><a href="{html.escape(base, quote=True)}#kvmlab-stepper-{sid}">{html.escape(p["title"])}</a>'
                f'<div class="kp-section">{html.escape(p.get("section", ""))}</div></td>'
                f'<td>{html.escape(goal)}</td><td>{html.escape(label)}</td>'
                f'<td class="kp-solved">not yet</td></tr>')
    script = ("<script>(function(){var rows=document.querySelectorAll('tr[data-solved-key]');"
              "for(var i=0;i<rows.length;i++){var v=null;try{v=JSON.parse(localStorage.getItem("
              "rows[i].getAttribute('data-solved-key')));}catch(e){}"
              "if(v){var c=rows[i].querySelector('.kp-solved');c.textContent='\\u2713 solved ('+v.steps+' steps)';"
              "c.className='kp-solved kp-yes';}}})();</script>")
    style = ("<style>.kp-table{width:100%;border-collapse:collapse;font-size:.9rem}"
             ".kp-table th,.kp-table td{text-align:left;vertical-align:top;padding:.3rem .4rem;"
             "border-bottom:1px solid var(--pst-color-border,#c8d1da)}"
             ".kp-page th{padding-top:1rem;font-size:1rem}.kp-section{font-size:.8rem;"
             "color:var(--pst-color-text-muted,#57606a)}.kp-yes{font-weight:700;"
             "color:var(--pst-color-success-text,var(--pst-color-text-base))}"
             "@media (max-width:40rem){.kp-table thead{display:none}.kp-table tr{display:block}"
             ".kp-table td{display:block;border:none;padding:.1rem .4rem}"
             ".kp-table tr[data-solved-key]{border-bottom:1px solid var(--pst-color-border,#c8d1da)}}</style>")
    return (f'{style}<div class="kvmlab-puzzles" data-count="{n}"><table class="kp-table">'
            '<thead><tr><th scope="col">Stepper</th><th scope="col">Goal</th>'
            '<th scope="col">Difficulty</th><th scope="col">Solved (in this browser)</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{script}')


def _page_context(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if not body or 'class="kvmlab-puzzles"' not in body:
        return
    pages = getattr(app.env, "kvmlab_puzzles", [])

    def uri(doc):
        return app.builder.get_relative_uri(pagename, doc)

    context["body"] = PLACEHOLDER.sub(lambda m: index_html(pages, uri), body, count=1)


def setup(app):
    os.environ["KVMLAB_STATIC"] = "1"
    app.add_config_value("kvmlab_puzzle_pages", ["book/puzzles"], "env")
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-updated", _collect)
    app.connect("html-page-context", _page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
