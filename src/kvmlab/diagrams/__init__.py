"""Diagrams drawn with Graphviz ``dot``, returned as inline SVG for notebooks and the static book.

* :func:`timeline`: an interleaving, a lane per CPU and one for the shared
  state (its values where they change), steps downward, lock hand-offs and
  wake-ups as arrows, the step that printed a splat marked;
* :func:`state_graph`: a small configuration's whole state graph, bad states
  and the shortest counterexample marked;
* :func:`lock_nesting`: which locks are taken while which are held, from an
  exploration of every interleaving (raw spinning locks vs sleeping locks);
* :func:`storyboard`: several small drawings side by side at one scale.

Every function returns a :class:`Diagram` (``_repr_svg_``, ``_repr_html_``,
``.svg``, ``.source``, ``.save(path)``). The SVG carries no external font,
stylesheet or URL, and is shown at its natural size (text about 13 px),
scrolling sideways in its box rather than shrinking. Its colours follow the
page's light or dark mode through :mod:`.theme`. A timeline or state graph
drawn on a page that has a stepper for the same configuration links to it
(:mod:`.links`).
"""

from __future__ import annotations

import html
import itertools
import re

from ..engine import Blocked, KvmlabError, Result, System, Trace, Violation
from ..engine.model import _fmt
from ..engine.trace import replay_moves
from ..engine.world import parse_move

__all__ = ["Diagram", "lock_nesting", "state_graph", "storyboard", "timeline"]

FONT = "DejaVu Sans Mono"
_counter = itertools.count(1)
_BAD_FILL = "#ffd7d5"
_BAD_LINE = "#cf222e"
_HANDOFF = "#0550ae"
_WAKE = "#1a7f37"
_LINE = "#8c959f"
_MUTED = "#57606a"
_HEAD = "#eaeef2"
STEP_WRAP = 48  # characters of C per line in a timeline box


def _q(s: str) -> str:
    """A dot string body (the graphviz package adds the quotes)."""
    return str(s).replace("\\", "\\\\")


def render_svg(source: str) -> str:
    """Graphviz ``source`` as inline SVG: no XML prolog, no comments, no ``<title>`` tooltips (the
    graph's "%3", node names), class ``kvmlab-svg``, ids made unique in the page."""
    import graphviz
    try:
        raw = graphviz.Source(source).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise KvmlabError("Graphviz 'dot' is not installed (apt-get install graphviz)") from None
    raw = re.sub(r"<\?xml[^>]*\?>\s*", "", raw)
    raw = re.sub(r"<!DOCTYPE[^>]*>\s*", "", raw)
    raw = re.sub(r"<!--.*?-->\s*", "", raw, flags=re.S)
    raw = re.sub(r"<title>.*?</title>\s*", "", raw, flags=re.S)
    pre = f"kvd{next(_counter)}_"
    raw = re.sub(r'\bid="', f'id="{pre}', raw)
    raw = re.sub(r"<svg\b", '<svg class="kvmlab-svg"', raw, count=1)
    return raw.strip()


class Diagram:
    """A Graphviz drawing; displays as SVG (inline in HTML output).

    ``link`` (set by :func:`timeline` and :func:`state_graph`) is the JSON
    that ties the drawing to a stepper of the same configuration on the page.
    """

    def __init__(self, source: str, title: str = "", *, kind: str = "", link: str | None = None):
        self.source = source
        self.title = title
        self.kind = kind
        self.link = link
        self._svg: str | None = None

    @property
    def svg(self) -> str:
        if self._svg is None:
            self._svg = render_svg(self.source)
        return self._svg

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        from . import links, theme
        label = html.escape(self.title or "diagram")
        cls = "kvmlab-out kvmlab-diagram" + (f" kvmlab-{self.kind}" if self.kind else "")
        if self.link is None:
            return f'{theme.style_tag()}<div class="{cls}" role="img" aria-label="{label}">{self.svg}</div>'
        return (f'{theme.style_tag()}<div class="{cls}" role="figure" aria-label="{label}" '
                f'data-kvmlab-link="{html.escape(self.link)}">{self.svg}</div>{links.script_tag()}')

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def __repr__(self) -> str:
        return f"<Diagram {self.title!r}: {len(self.source)} bytes of dot>"


# ---------------------------------------------------------------------------------------- timeline
def _resolve_system(system) -> System | None:
    if system is None or isinstance(system, System):
        return system
    if isinstance(system, Result):
        from ..api import load
        try:
            return load(system.model, system.variant, system.config, system.params)
        except KvmlabError:
            return None
    if isinstance(system, tuple | list):
        from ..api import load
        return load(*system)
    raise KvmlabError(f"timeline: system must be a System or a Result, not {type(system).__name__}")


def _steps_and_system(obj, system):
    """(step dicts, system or None, violation or None) for what timeline() accepts."""
    if isinstance(obj, Trace):
        return obj.steps, obj.sys, None
    if isinstance(obj, Result):
        if not obj.violations:
            raise KvmlabError("timeline: this result has no counterexample to draw")
        return _steps_and_system(obj.violations[0], system if system is not None else obj)
    if isinstance(obj, Violation):
        sys = _resolve_system(system)
        if sys is not None:
            return _replay(sys, obj.schedule), sys, obj
        return obj.trace, None, obj
    if isinstance(obj, list | tuple):
        if obj and isinstance(obj[0], dict):
            return list(obj), _resolve_system(system), None
        sys = _resolve_system(system)
        if sys is None:
            raise KvmlabError("timeline: a bare schedule needs a system")
        return _replay(sys, obj), sys, None
    raise KvmlabError(f"timeline: cannot draw a {type(obj).__name__}")


def _replay(sys: System, schedule) -> list[dict]:
    try:
        return replay_moves(sys, schedule).steps
    except KvmlabError as e:
        raise KvmlabError(f"timeline: the schedule does not replay on {type(sys.model).name} / {sys.variant.name} "
                          f"with config {sys.config} and params {sys.params} (is it the system the violation "
                          f"came from?): {e}") from None


def _arrows(sys: System, steps: list[dict]) -> list[tuple[int, int, str, str]]:
    """(from step, to step, label, kind) for lock hand-offs and wake-ups (steps 1-based)."""
    locks = list(getattr(sys, "lock_types", {}) or {})
    key = sys.initial
    keys = [key]
    for st in steps:
        w = sys.run(key, st["thread"], parse_move(st["move"])[1])
        key = w.key()
        keys.append(key)
    shared_ix = {n: i for i, n in enumerate(sys.shared_names)}
    nxt: dict[int, dict[int, int]] = {}  # step -> thread -> its next step number
    for i in range(len(steps) + 1):
        nxt[i] = {}
        for j in range(i, len(steps)):
            t = steps[j]["thread"]
            nxt[i].setdefault(t, j + 1)
    out = []
    # lock hand-offs: released by a at step i, next taken by b != a at step j
    for lk in locks:
        ix = shared_ix[lk]
        for i in range(1, len(keys)):
            before, after = keys[i - 1][0][ix], keys[i][0][ix]
            if before is not None and after is None:
                a = before
                for j in range(i + 1, len(keys)):
                    b0, b1 = keys[j - 1][0][ix], keys[j][0][ix]
                    if b0 is None and b1 is not None:
                        if b1 != a:
                            out.append((i, j, lk, "handoff"))
                        break
    # wake-ups: another thread could not move (asleep/halted) before the step, can after
    for i, st in enumerate(steps, start=1):
        me = st["thread"]
        for x in range(sys.nthreads):
            if x == me or keys[i][2 + x] is None:
                continue
            try:
                sys.run(keys[i - 1], x)
                continue
            except Blocked as b:
                why = b.reason
            except Exception:
                continue
            if any(lk in why for lk in locks) and ("spinning" in why or "held by" in why):
                continue  # a lock hand-off, drawn above
            try:
                sys.run(keys[i], x)
            except Blocked:
                continue
            except Exception:
                continue
            j = nxt[i].get(x)
            if j is not None:
                out.append((i, j, "wake-up" if "asleep" in why else "unblocks", "wake"))
    return out


def _end_states(steps, sys, n) -> list[str]:
    if not steps:
        return []
    last = steps[-1]["state"]["threads"]
    out = []
    key = None
    if sys is not None:
        key = sys.initial
        for st in steps:
            key = sys.run(key, st["thread"], parse_move(st["move"])[1]).key()
    for t in range(n):
        th = last[t] if t < len(last) else None
        if th is None or th.get("done"):
            out.append("✓ done")
            continue
        why = th.get("status", "")
        why = "" if why == "running" else f"blocked: {why}"
        if key is not None:
            try:
                sys.run(key, t)
                why = "(could still run)"
            except Blocked as b:
                why = f"blocked: {b.reason}"
            except Exception:
                pass
        out.append((_wrap_code(f"at: {th.get('line', '')}", STEP_WRAP) + "\n" + _wrap(why, STEP_WRAP)).rstrip())
    return out


def timeline(violation_or_trace, system=None, *, title: str | None = None) -> Diagram:
    """An interleaving: a lane per CPU and one for the shared state, steps downward.

    Accepts a :class:`Violation` (with ``system``: a :class:`System` or the
    :class:`Result` it came from, to draw hand-offs and wake-ups), a
    :class:`Result` (its first counterexample), a :class:`Trace`, or a
    schedule with a system. The shared-state lane shows each value where it
    changes (the initial values in its header when the system is known).
    """
    steps, sys, viol = _steps_and_system(violation_or_trace, system)
    if sys is not None:
        threads = [(p.label, p.title) for p in sys.programs]
    else:
        seen: dict[int, str] = {}
        for st in steps:
            seen.setdefault(st["thread"], st["label"])
        if steps:
            for th in steps[0]["state"]["threads"]:
                seen.setdefault(th["id"], th["label"])
        threads = [(seen.get(i, f"thread {i}"), "") for i in range(max(seen) + 1 if seen else 0)]
    n = len(threads)
    lines = ["digraph timeline {", 'graph [rankdir=TB, bgcolor="transparent", nodesep=0.25, ranksep=0.12, '
             f'fontname="{FONT}", newrank=true];',
             f'node [fontname="{FONT}", fontsize=10, shape=box, style="rounded", height=0.3, margin="0.08,0.03"];',
             f'edge [fontname="{FONT}", fontsize=9];']
    for t, (label, ttl) in enumerate(threads):
        lab = label + (f"\\n{_q(ttl)}" if ttl else "")
        lines.append(f'h{t} [label="{_esc(lab, raw=True)}", shape=box, style="bold,filled", fillcolor="{_HEAD}"];')
    # the shared state: initial values in the header, then each value in the row where it changes
    prev = _initial_shared(sys)
    head = "shared state" + ("\\n" + _esc(_shared_text(prev), raw=True) if prev else "")
    lines.append(f'hs [label="{head}\\l", shape=box, style="filled", fillcolor="{_HEAD}", color="{_LINE}"];')
    lines.append("{rank=same; " + " ".join(f"h{t};" for t in range(n)) + " hs;}")
    for t in range(n):
        lines.append(f"h{t} -> h{t + 1 if t + 1 < n else 's'} [style=invis];")
    for r, st in enumerate(steps, start=1):
        row = []
        for t in range(n):
            name = f"c{r}_{t}"
            row.append(name)
            if t == st["thread"]:
                num = f"{st['n']}. "
                text = num + _wrap_code(st["c"], STEP_WRAP).replace("\n", "\n" + " " * len(num))
                if st.get("choices"):
                    text += f"\n[{', '.join(st['choices'])}]"
                tip = f"step {st['n']}, {st['label']}: {st['fn']}()"
                attrs = f'label="{_left(text)}", tooltip="{_esc(tip)}", id="step{r}", class="kvs_step"'
                if st.get("splats"):
                    ttl = "; ".join(s["title"] for s in st["splats"])
                    label = _left(text + "\n⚠ " + _wrap(ttl, STEP_WRAP))
                    attrs = (f'label="{label}", tooltip="{_esc(tip)}", '
                             f'id="step{r}", class="kvs_step", style="rounded,filled,bold", fillcolor="{_BAD_FILL}", '
                             f'color="{_BAD_LINE}", penwidth=2')
                lines.append(f"{name} [{attrs}];")
            else:
                lines.append(f'{name} [shape=point, width=0.01, height=0.01, label="", color="{_LINE}"];')
        now = dict(st["state"].get("shared", {}))
        changed = {k: v for k, v in now.items() if prev is None or prev.get(k) != v}
        prev = now
        if changed:
            lines.append(f'v{r} [label="{_esc(_shared_text(changed), raw=True)}\\l", shape=plaintext, '
                         f'fontcolor="{_HANDOFF}", height=0.2, id="state{r}"];')
        else:
            lines.append(f'v{r} [shape=point, width=0.01, height=0.01, label="", color="{_LINE}"];')
        row.append(f"v{r}")
        lines.append("{rank=same; " + " ".join(f"{x};" for x in row) + "}")
        for a, b in zip(row, row[1:]):
            lines.append(f"{a} -> {b} [style=invis];")
    for t in range(n):
        chain = [f"h{t}"] + [f"c{r}_{t}" for r in range(1, len(steps) + 1)]
        for a, b in zip(chain, chain[1:]):
            lines.append(f'{a} -> {b} [arrowhead=none, color="{_LINE}", weight=100];')
    chain = ["hs"] + [f"v{r}" for r in range(1, len(steps) + 1)]
    for a, b in zip(chain, chain[1:]):
        lines.append(f'{a} -> {b} [arrowhead=none, color="{_LINE}", style=dotted, weight=100];')
    # where every CPU ends: done, or its line and why it cannot go on
    ends = _end_states(steps, sys, n)
    if ends:
        row = []
        for t in range(n):
            name = f"end_{t}"
            row.append(name)
            lines.append(f'{name} [label="{_esc(ends[t])}", shape=plaintext, fontcolor="{_MUTED}"];')
        lines.append("{rank=same; " + " ".join(f"{x};" for x in row) + "}")
        for t in range(n):
            prev_node = f"c{len(steps)}_{t}" if steps else f"h{t}"
            lines.append(f'{prev_node} -> end_{t} [arrowhead=none, color="{_LINE}", style=dotted, weight=100];')
    if sys is not None:
        for i, j, label, kind in _arrows(sys, steps):
            a = f"c{i}_{steps[i - 1]['thread']}"
            b = f"c{j}_{steps[j - 1]['thread']}"
            if kind == "handoff":
                lines.append(f'{a} -> {b} [constraint=false, color="{_HANDOFF}", fontcolor="{_HANDOFF}", '
                             f'penwidth=1.4, label="{_esc(label)}"];')
            else:
                lines.append(f'{a} -> {b} [constraint=false, color="{_WAKE}", fontcolor="{_WAKE}", '
                             f'style=dashed, penwidth=1.4, label="{_esc(label)}"];')
    if viol is not None:
        last = f"end_{steps[-1]['thread']}" if steps and ends else "h0"
        msg = f"✗ {viol.property}: {viol.message}"
        lines.append(f'verdict [label="{_esc(_wrap(msg, 70))}", shape=box, style="filled,bold", '
                     f'fillcolor="{_BAD_FILL}", color="{_BAD_LINE}"];')
        lines.append(f'{last} -> verdict [style=dotted, color="{_BAD_LINE}", weight=0];')
    lines.append("}")
    from . import links
    default = "interleaving" if viol is None else f"shortest counterexample for {viol.property}"
    link = links.link_meta("timeline", sys, [st["move"] for st in steps]) if sys is not None else None
    return Diagram("\n".join(lines), title or default, kind="timeline", link=link)


def _initial_shared(sys: System | None) -> dict | None:
    if sys is None:
        return None
    return {k: str(v) for k, v in sys.model.describe_state(sys.load(sys.initial)).items()}


def _shared_text(d: dict, width: int = 40) -> str:
    """``name = value`` lines (left-justified in dot), long values wrapped."""
    out = []
    for k, v in d.items():
        out.extend(_wrap(f"{k} = {v}", width).split("\n"))
    return "\\l".join(_esc(x) for x in out)


def _wrap_code(c: str, width: int) -> str:
    """A C line wrapped at spaces only (never inside an identifier or an operator).

    A short head such as ``if`` stays with a long word after it (the line runs
    over ``width``) rather than being left alone on its line.
    """
    out = []
    for line in str(c).split("\n"):
        cur = ""
        for word in line.split(" "):
            if cur.strip() and len(cur) + 1 + len(word) > width and len(cur) >= width // 3:
                out.append(cur)
                cur = word
            else:
                cur = f"{cur} {word}" if cur else word
        out.append(cur)
    return "\n".join(out)


def _wrap(s: str, width: int) -> str:
    out, cur = [], ""
    for word in s.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    out.append(cur)
    return "\n".join(out)


def _esc(s: str, raw: bool = False) -> str:
    """Escape for a double-quoted dot string; newlines become centred line breaks."""
    s = str(s)
    if not raw:
        s = s.replace("\\", "\\\\")
    return s.replace('"', '\\"').replace("\n", "\\n")


def _left(s: str) -> str:
    """Escape for dot with every line left-justified (code reads as code)."""
    return "".join(_esc(line) + "\\l" for line in str(s).split("\n"))


# ------------------------------------------------------------------------------------ state graph
def state_graph(model, variant=None, config: dict | None = None, params: dict | None = None,
                max_states: int = 300, *, prop: str | None = None, title: str | None = None) -> Diagram:
    """A small configuration's whole state graph: bad states and the counterexample path marked.

    A node lists each thread's next step (its name, or ``✓`` when done) and
    the shared state; bad states are red double octagons; ``prop`` picks
    which shortest counterexample is drawn in red (default: the first found).
    Beside a stepper of the same configuration, the stepper's current state
    is outlined and a click on a state plays a shortest schedule to it.
    """
    from ..api import make_system
    from ..engine.graph import explore
    sys = make_system(model, variant, config, params)
    g = explore(sys, max_states)
    cex = g.counterexamples()
    chosen = cex.get(prop) if prop else (next(iter(cex.values())) if cex else None)
    if prop and chosen is None:
        raise KvmlabError(f"state_graph: {prop!r} is not violated in this configuration")
    on_path = g.path_nodes(chosen["schedule"]) if chosen else []
    path_edges = set(zip(on_path, on_path[1:]))
    path_set = set(on_path)
    splat_targets = {e.target for row in g.edges for e in row if e.events}
    labels = [p.label for p in sys.programs]
    lines = ["digraph states {", f'graph [bgcolor="transparent", rankdir=TB, fontname="{FONT}", nodesep=0.2, '
             'ranksep=0.3];',
             f'node [fontname="{FONT}", fontsize=10, shape=box, style=rounded, height=0.25, margin="0.06,0.03"];',
             f'edge [fontname="{FONT}", fontsize=9, arrowsize=0.6, color="{_MUTED}", fontcolor="{_MUTED}"];']
    for i, key in enumerate(g.keys):
        w = sys.load(key)
        parts = []
        for t in range(sys.nthreads):
            th = w.thread(t)
            if th is None:
                parts.append(f"{labels[t]} ✓")
                continue
            prog = sys.programs[t]
            loc = " ".join(f"{k}={_fmt(th[k])}" for k in (getattr(prog, "locals", None) or {}) if k in th)
            parts.append(f"{labels[t]} {prog.steps[th['_pc']].name}" + (f" ({loc})" if loc else ""))
        desc = sys.model.describe_state(w)
        shared = _wrap(", ".join(f"{k}={v}" for k, v in desc.items()), 32)
        lab = ("init: " if i == 0 else f"s{i}: ") + "\n".join(parts + [shared])
        tip = f"state {i}: " + "; ".join(f"{k} = {v}" for k, v in desc.items())
        bad = i in g.bad or i in g.fatal or i in splat_targets
        attrs = [f'label="{_esc(lab)}"', f'id="state{i}"', 'class="kvs_state"']
        if bad:
            why = "; ".join(p for p, _, _ in g.bad.get(i, [])) or "after a kernel report"
            attrs.append(f'shape=doubleoctagon, style=filled, fillcolor="{_BAD_FILL}", color="{_BAD_LINE}"')
            tip = f"BAD ({why}) | {tip}"
        attrs.append(f'tooltip="{_esc(tip)}"')
        if i in path_set:
            attrs.append("penwidth=2.2")
        lines.append(f"s{i} [{', '.join(attrs)}];")
    for i, row in enumerate(g.edges):
        for e in row:
            lab = labels[e.tid] + (f" {e.choice}" if e.choice else "")
            attrs = [f'label="{_esc(lab)}"']
            if (i, e.target) in path_edges:
                attrs.append(f'color="{_BAD_LINE}", fontcolor="{_BAD_LINE}", penwidth=2.4')
            if e.events:
                attrs.append('style=bold')
            lines.append(f"s{i} -> s{e.target} [{', '.join(attrs)}];")
    lines.append("}")
    from . import links
    what = f"{type(sys.model).name} / {sys.variant.name}: {len(g.keys)} states"
    if chosen:
        what += f", shortest counterexample for {chosen['property']} in red"
    return Diagram("\n".join(lines), title or what, kind="states", link=links.link_meta("states", sys))


# ------------------------------------------------------------------------------------ lock nesting
def lock_nesting(model, variant=None, config: dict | None = None, params: dict | None = None,
                 max_states: int = 20000, *, title: str | None = None) -> Diagram:
    """Which locks are taken while which are held, over every interleaving.

    An edge ``A -> B`` means some step took ``B`` while holding ``A``. Raw
    spinning locks are boxes, locks that may sleep (``mutex``; ``spinlock_t``
    on PREEMPT_RT) ellipses; a sleeping lock taken under a raw one is red. A
    report of sleeping in atomic context while a lock is held adds an edge to
    the "may sleep" node, labelled with the C line.
    """
    from ..api import make_system
    from ..engine.graph import explore
    sys = make_system(model, variant, config, params)
    nest: dict[tuple[str, str], str] = {}
    sleeps: dict[tuple[str, str], str] = {}

    g = explore(sys, max_states)
    for i, row in enumerate(g.edges):
        w0 = sys.load(g.keys[i])
        for e in row:
            before = w0.thread(e.tid)
            if before is None or "_held" not in before:
                continue
            held_before = [h for h, _ in before["_held"]]
            after = sys.load(g.keys[e.target]).thread(e.tid)
            held_after = [h for h, _ in after["_held"]] if after is not None else []
            site = sys.programs[e.tid].steps[before["_pc"]].text
            for lk in held_after[len(held_before):]:
                for h in held_before:
                    nest.setdefault((h, lk), site)
            for ev in e.events:
                if ev.prop in ("no_sleep_in_atomic", "no_invalid_wait_context"):
                    for h in held_before:
                        sleeps.setdefault((h, ev.title), site)
    kinds = dict(getattr(sys, "lock_types", {}) or {})
    rt = bool(sys.config.get("PREEMPT_RT"))

    def sleeping(lk):
        k = kinds.get(lk)
        return k == "mutex" or (k == "spinlock_t" and rt)

    lines = ["digraph locks {", f'graph [bgcolor="transparent", rankdir=LR, fontname="{FONT}"];',
             f'node [fontname="{FONT}", fontsize=10];', f'edge [fontname="{FONT}", fontsize=9];']
    for lk, k in kinds.items():
        how = "sleeps" if sleeping(lk) else "spins"
        shape = "ellipse" if sleeping(lk) else "box"
        lines.append(f'"{_esc(lk)}" [label="{_esc(lk)}\\n{k} ({how})", shape={shape}];')
    for (a, b), site in nest.items():
        red = not sleeping(a) and sleeping(b)
        col = f', color="{_BAD_LINE}", fontcolor="{_BAD_LINE}", penwidth=2' if red else ""
        lines.append(f'"{_esc(a)}" -> "{_esc(b)}" [label="{_esc(site)}"{col}];')
    for i, ((a, ttl), site) in enumerate(sleeps.items()):
        lines.append(f'sleep{i} [label="may sleep:\\n{_esc(_wrap(ttl, 40))}", shape=octagon, style=filled, '
                     f'fillcolor="{_BAD_FILL}", color="{_BAD_LINE}"];')
        lines.append(f'"{_esc(a)}" -> sleep{i} [label="{_esc(site)}", color="{_BAD_LINE}", '
                     f'fontcolor="{_BAD_LINE}", penwidth=2];')
    if not nest and not sleeps:
        lines.append('note [shape=plaintext, label="no lock is taken while another is held"];')
    lines.append("}")
    return Diagram("\n".join(lines), title or f"lock nesting in {type(sys.model).name} / {sys.variant.name}")


# -------------------------------------------------------------------------------------- storyboard
class Storyboard:
    """Several drawings side by side, each at its natural size: one scale across frames."""

    def __init__(self, frames: list[tuple[str, Diagram]], title: str = ""):
        self.frames = frames
        self.title = title

    def _repr_html_(self) -> str:
        from . import theme
        cells = []
        for caption, d in self.frames:
            cells.append(f'<figure class="kv-frame">{d.svg}<figcaption>{html.escape(caption)}</figcaption></figure>')
        label = html.escape(self.title or f"{len(self.frames)} frames")
        return (f'{theme.style_tag()}<div class="kvmlab-out kvmlab-storyboard" role="group" aria-label="{label}">'
                + "".join(cells) + "</div>")

    def __repr__(self) -> str:
        return f"<Storyboard {self.title!r}: {len(self.frames)} frames>"


def storyboard(frames, *, title: str = "") -> Storyboard:
    """Frames ``[(caption, dot source or Diagram), ...]`` drawn at one scale, wrapping onto rows.

    No frame is shrunk to fit: every drawing keeps Graphviz's natural size, so
    the same box or font is the same size in every frame; a frame wider than
    the column scrolls sideways inside its own box.
    """
    out = []
    for item in frames:
        try:
            caption, d = item
        except (TypeError, ValueError):
            raise KvmlabError("storyboard: frames are (caption, dot source or Diagram) pairs") from None
        if isinstance(d, str):
            d = Diagram(d, caption)
        elif not isinstance(d, Diagram):
            raise KvmlabError(f"storyboard: a frame is a dot source or a Diagram, not {type(d).__name__}")
        out.append((str(caption), d))
    return Storyboard(out, title)
