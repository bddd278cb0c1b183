"""One palette for every kvmlab output (diagrams, verdict tables, grade reports), light and dark.

The palette is a set of CSS custom properties (``--kv-fg``, ``--kv-bad``, ...),
light by default and dark under pydata's ``html[data-theme=dark]``,
JupyterLab's ``body[data-jp-theme-light=false]``, VS Code's ``body.vscode-dark``, or a dark
``prefers-color-scheme`` where the page has no theme of its own. Graphviz
SVGs (class ``kvmlab-svg``) keep their literal colours as attributes; the
stylesheet maps each colour the diagrams use onto the palette, so a diagram
follows the page's mode without a colour-inverting filter.

The static book gets this stylesheet once, from ``book/_static/kvmbook.css``
(a generated block: ``python -m kvmlab.diagrams.theme --write FILE``;
``--check FILE`` exits 1 when the block is stale). Outside the book every
output carries it inline (:func:`style_tag`).
"""

from __future__ import annotations

import os
import re
import sys

LIGHT = {
    "fg": "#1f2328", "muted": "#57606a", "line": "#8c959f", "surface": "#ffffff",
    "head-bg": "#eaeef2", "code-bg": "#f6f8fa",
    "bad": "#b3261e", "bad-bg": "#ffd7d5", "ok": "#116329", "ok-bg": "#dafbe1",
    "info": "#0550ae", "info-bg": "#ddf4ff", "warn": "#7d4e00", "warn-bg": "#fff8c5",
    "current": "#bf8700",
}
DARK = {
    "fg": "#ced6dd", "muted": "#9ca4af", "line": "#768390", "surface": "#1c2128",
    "head-bg": "#2d333b", "code-bg": "#22272e",
    "bad": "#ff8a80", "bad-bg": "#5a1e1e", "ok": "#7ee787", "ok-bg": "#12361f",
    "info": "#79c0ff", "info-bg": "#0c2d4a", "warn": "#e3b341", "warn-bg": "#3d2e00",
    "current": "#e3b341",
}

# Graphviz colour literal in the diagrams -> palette entry (fill and stroke alike)
SVG_COLOURS = {
    "black": "fg", "#000000": "fg", "white": "surface", "#ffffff": "surface",
    "#8c959f": "line", "#7f7f7f": "line", "#57606a": "muted",
    "#eaeef2": "head-bg", "#eeeeee": "head-bg",
    "#ffd7d5": "bad-bg", "#cf222e": "bad", "#0550ae": "info", "#ddf4ff": "info-bg",
    "#1a7f37": "ok", "#fff8c5": "warn-bg",
}

DARK_SELECTORS = "html[data-theme=dark],body[data-jp-theme-light=false],body.vscode-dark"
AUTO_DARK = "html:not([data-theme]) body:not([data-jp-theme-light]):not(.vscode-light)"

BEGIN = "/* BEGIN kvmlab output theme"
END = "/* END kvmlab output theme */"


def _vars(p: dict) -> str:
    return ";".join(f"--kv-{k}:{v}" for k, v in p.items())


def _svg_rules() -> str:
    out = ["svg.kvmlab-svg text:not([fill]){fill:var(--kv-fg)}"]
    for lit, name in SVG_COLOURS.items():
        out.append(f'svg.kvmlab-svg [fill="{lit}"]{{fill:var(--kv-{name})}}')
        out.append(f'svg.kvmlab-svg [stroke="{lit}"]{{stroke:var(--kv-{name})}}')
    return "\n".join(out)


_COMPONENTS = """\
.kvmlab-out{color:var(--kv-fg)}
.kvmlab-diagram{overflow-x:auto;max-width:100%;margin:.5rem 0}
.kvmlab-diagram svg{max-width:none;height:auto;display:block}
.kvmlab-diagram .kv-caption{font-size:.85rem;color:var(--kv-muted);margin:.2rem 0}
.kvmlab-diagram g.kvs-linked{cursor:pointer}
.kvmlab-diagram g.kvs-linked :is(polygon,path,ellipse){pointer-events:all}
.kvmlab-diagram g.kvs-linked:hover polygon,.kvmlab-diagram g.kvs-linked:focus polygon,
.kvmlab-diagram g.kvs-linked:hover path,.kvmlab-diagram g.kvs-linked:focus path{stroke:var(--kv-info);stroke-width:2.5}
.kvmlab-diagram g.kvs-current polygon,.kvmlab-diagram g.kvs-current path{stroke:var(--kv-current);stroke-width:4}
.kvmlab-summary{margin:.5rem 0;font-size:.9rem;max-width:100%;overflow-x:auto}
.kvmlab-summary .kv-table,.kvmlab-grade .kv-table{border-collapse:collapse;margin:.4rem 0}
.kvmlab-summary .kv-table th,.kvmlab-summary .kv-table td,.kvmlab-grade .kv-table th,.kvmlab-grade .kv-table td
{border:1px solid var(--kv-line);padding:.2rem .5rem;text-align:left;vertical-align:top;color:var(--kv-fg)}
.kvmlab-summary .kv-violated,.kvmlab-summary td.kv-violated *{color:var(--kv-bad)}
.kvmlab-summary .kv-holds,.kvmlab-summary td.kv-holds *{color:var(--kv-ok)}
.kvmlab-summary .kv-unknown,.kvmlab-summary td.kv-unknown *{color:var(--kv-warn)}
.kvmlab-summary .kv-splat,.kvmlab-grade pre{font-size:.8rem;white-space:pre-wrap;max-height:18rem;overflow:auto;
background:var(--kv-code-bg);color:var(--kv-fg);padding:.4rem}
.kvmlab-grade{border:2px solid var(--kv-line);border-radius:6px;padding:.5rem .75rem;margin:.5rem 0;color:var(--kv-fg);
max-width:100%;overflow-x:auto}
.kvmlab-grade.kv-pass{border-color:var(--kv-ok)}.kvmlab-grade.kv-notyet{border-color:var(--kv-bad)}
.kvmlab-grade.kv-pass .kv-headline{color:var(--kv-ok)}.kvmlab-grade.kv-notyet .kv-headline{color:var(--kv-bad)}
.kvmlab-grade .kv-table{font-size:.9rem}
.kvmlab-storyboard{display:flex;flex-wrap:wrap;gap:.75rem 1.25rem;align-items:flex-start;margin:.5rem 0}
.kvmlab-storyboard .kv-frame{margin:0;max-width:100%;overflow-x:auto}
.kvmlab-storyboard .kv-frame svg{max-width:none;height:auto;display:block}
.kvmlab-storyboard figcaption{font-size:.85rem;color:var(--kv-fg);max-width:32rem}"""


def css() -> str:
    """The stylesheet: palette (light, dark), Graphviz colour map, output components."""
    return "\n".join([
        f":root{{{_vars(LIGHT)}}}",
        f"{DARK_SELECTORS}{{{_vars(DARK)}}}",
        f"@media (prefers-color-scheme:dark){{{AUTO_DARK}{{{_vars(DARK)}}}}}",
        _svg_rules(),
        _COMPONENTS,
    ])


def static_mode() -> bool:
    """True when building the static book (``KVMLAB_STATIC`` set to 1/yes/true)."""
    return os.environ.get("KVMLAB_STATIC", "").strip().lower() in ("1", "yes", "true", "y")


def style_tag() -> str:
    """``<style>`` with :func:`css`, or nothing in the static book (its kvmbook.css has it)."""
    if static_mode():
        return ""
    return f'<style class="kvmlab-theme">{css()}</style>'


def block() -> str:
    """The generated block for a stylesheet file."""
    return (f"{BEGIN}: generated by `python -m kvmlab.diagrams.theme --write <this file>`; do not edit */\n"
            f"{css()}\n{END}\n")


def splice(text: str) -> str:
    """``text`` with its generated block replaced (or appended)."""
    pat = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    if pat.search(text):
        return pat.sub(lambda m: block(), text, count=1)
    return text.rstrip("\n") + "\n\n" + block()


def main(argv: list[str] | None = None) -> int:
    """``--write FILE`` updates FILE's block; ``--check FILE`` exits 1 if it is stale; no args prints it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stdout.write(css() + "\n")
        return 0
    if len(args) != 2 or args[0] not in ("--write", "--check"):
        sys.stderr.write("usage: python -m kvmlab.diagrams.theme [--write FILE | --check FILE]\n")
        return 2
    path = args[1]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        sys.stderr.write(f"kvmlab.diagrams.theme: cannot read {path}: {e.strerror}\n")
        return 2
    new = splice(text)
    if args[0] == "--check":
        if new != text:
            sys.stderr.write(f"{path}: the kvmlab output theme block is stale; run --write\n")
            return 1
        return 0
    if new != text:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
        except OSError as e:
            sys.stderr.write(f"kvmlab.diagrams.theme: cannot write {path}: {e.strerror}\n")
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
