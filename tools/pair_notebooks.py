"""Write an .ipynb twin of every MyST chapter page in book/ (run by ``make book``).

Colab opens only .ipynb files, and Binder and JupyterHub open a MyST .md page as text
unless jupytext is set up there. sphinx-book-theme points its launch buttons at
``book/<page>.ipynb`` when that file sits next to ``book/<page>.md``, so every button
opens a runnable notebook. The twins are **committed** (Colab and Binder read them from
the GitHub repository, so a git-ignored file would be a dead link there); the book build
excludes them (``exclude_patterns`` in ``_config.yml``) and executes the .md.

Each twin, and each lab in notebooks/, starts with the same set-up cell (:data:`SETUP`, tag
``kvmlab-setup``): it installs ``kvmlab`` when it is missing (Colab, a JupyterHub without the
package), from the checkout the notebook sits in if there is one, else from the release tag
of the book's version; where ``kvmlab`` is importable (Binder, the book build) it only checks
the version. Outputs are not stored.

Markdown cells are rewritten from MyST into plain Jupyter Markdown (JupyterLab, Notebook and
Colab show MyST roles and directives as literal text): ``{term}`` -> bold, ``{doc}`` -> the
page's title in italics, ``{ref}`` -> the section title or "Exercise N", ``(label)=`` targets
and ``%`` comments dropped, admonitions -> blockquotes with a bold title, drop-down
admonitions, hints and solutions -> ``<details>``, exercises -> "**Exercise N**" paragraphs,
tab sets -> bold-labelled sections one after the other, list tables -> pipe tables,
definition lists -> term plus blockquote, ``{glue:text}`` values (known only after
execution) -> their name in brackets plus a note. Code (cells, fences, indented blocks,
inline code) is copied unchanged, and cell metadata (``remove-input`` ...) is kept.

    python tools/pair_notebooks.py          # write twins that changed, drop orphans
    python tools/pair_notebooks.py --check  # exit 1 if a twin is missing or stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def _repo() -> str:
    """The book's repository (``repository.url`` in _config.yml): forks set it there only."""
    import yaml
    url = (yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")).get("repository") or {}).get("url")
    if not url:
        raise SystemExit("pair_notebooks: _config.yml has no repository.url")
    return url.rstrip("/")


REPO = _repo()
MARK = "kvmlab_paired_from"

def _version() -> str:
    """The book's kvmlab version (pyproject.toml), which the set-up cell pins."""
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    if not m:
        raise SystemExit("pair_notebooks: no version in pyproject.toml")
    return m[1]


VERSION = _version()
SETUP_TAGS = ["remove-cell", "kvmlab-setup"]
SETUP = f'''\
# Set-up (Colab, a JupyterHub, any Jupyter): install kvmlab {VERSION} where it is missing.
# From the checkout this notebook sits in when there is one, else the book's release tag.
import importlib.util
import subprocess
import sys
from pathlib import Path

KVMLAB_VERSION = "{VERSION}"
if importlib.util.find_spec("kvmlab") is None:
    here = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "src" / "kvmlab").is_dir()), None)
    spec = (f"{{here}}[widgets,diagrams]" if here
            else f"kvmlab[widgets,diagrams] @ git+{REPO}@v{{KVMLAB_VERSION}}")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", spec])
import kvmlab  # noqa: E402

if kvmlab.__version__ != KVMLAB_VERSION:
    print(f"This notebook was written for kvmlab {{KVMLAB_VERSION}}; you have {{kvmlab.__version__}}.")'''



# --- MyST -> plain Jupyter Markdown (for the twins' markdown cells) -------------------------
#
# The .md pages are MyST; JupyterLab, Jupyter Notebook and Colab render CommonMark/GFM plus
# HTML, and show MyST roles and directives as literal text or code blocks. The twins get
# markdown cells rewritten into plain Markdown with the same content: roles become text,
# directives become blockquotes, <details> drop-downs and bold-labelled sections. Fenced and
# indented code blocks and inline code are copied unchanged; code cells are not touched.

FENCE = re.compile(r"^(?P<ind>[ ]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[A-Za-z][\w:.-]*)\}\s*(?P<arg>.*)$")
ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:+.-]*)\}(?P<ticks>`+)")
TARGET = re.compile(r"^\s*\((?P<label>[^\s()]+)\)=\s*$")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
GLUE_NOTE = ("*Names in brackets, such as [`{key}`], stand for values that this notebook's code "
             "computes; the published book prints the values in their place.*")
ADMONITION_TITLES = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
                     "warning": "Warning", "caution": "Caution", "attention": "Attention",
                     "danger": "Danger", "error": "Error", "seealso": "See also", "margin": "Aside",
                     "sidebar": "Aside", "topic": "", "epigraph": "", "pull-quote": "",
                     "highlights": "", "card": "", "grid-item-card": ""}
BODY_ARGUMENT = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
                 "error", "seealso"}  # their argument is the first line of the body, not a title
TRANSPARENT = {"tab-set", "grid", "grid-item", "div", "container", "only", "cssclass", "rst-class"}
DROP = {"toctree", "tableofcontents", "bibliography", "index", "meta", "contents"}


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end >= 0:
            return text[end + 5:]
    return text


class Book:
    """What the conversion needs to know about the other pages: titles, labels, numbers."""

    def __init__(self, root: Path = ROOT):
        self.root = root
        self._titles: dict[Path, str] = {}
        self.labels: dict[str, str] = {}  # label -> text a reference to it shows
        for md in sorted((root / "book").glob("*.md")):
            self._scan_labels(md)

    def title(self, path: Path) -> str | None:
        path = path.resolve()
        if path not in self._titles:
            title = None
            for cand in (path.with_suffix(".md"), path.with_suffix(".ipynb")):
                if not cand.is_file():
                    continue
                if cand.suffix == ".ipynb":
                    nb = nbformat.read(cand, as_version=4)
                    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
                else:
                    text = _strip_front_matter(cand.read_text(encoding="utf-8"))
                toks = MarkdownIt("commonmark").parse(text)
                for a, b in zip(toks, toks[1:]):
                    if a.type == "heading_open" and a.tag == "h1":
                        title = b.content.strip()
                        break
                break
            self._titles[path] = title
        return self._titles[path]

    def _scan_labels(self, md: Path) -> None:
        lines = _strip_front_matter(md.read_text(encoding="utf-8")).splitlines()
        chap = chapter_number(md)
        n = 0
        for i, line in enumerate(lines):
            m = TARGET.match(line)
            if m:
                nxt = next((x for x in lines[i + 1:] if x.strip()), "")
                h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", nxt)
                self.labels[m["label"]] = f"*{inline(h[1], self, md)[0]}*" if h else m["label"]
            m = FENCE.match(line)
            if m and m["fence"][0] != "~" and re.match(r"^\{exercise\}", m["info"]):
                opts, _ = _options(lines[i + 1:i + 12])
                if "nonumber" in opts:
                    continue
                n += 1
                if "label" in opts:
                    self.labels[opts["label"]] = f"Exercise {chap}{n}"


def chapter_number(md: Path) -> str:
    """'3.' for book/ch3-*.md (the numbered part of _toc.yml), '' for chapter 0 and the rest."""
    m = re.match(r"^ch([1-9]\d*)-", md.name)
    return f"{m[1]}." if m else ""


def _role(name: str, content: str, book: Book, page: Path, glue: list[str]) -> str:
    m = EXPLICIT.match(content)
    text, target = (m["text"], m["target"]) if m else (None, content)
    if name == "term":
        return f"**{text or target}**"
    if name == "doc":
        path = (page.parent / target).resolve() if not target.startswith("/") else book.root / target[1:]
        title = book.title(path) or Path(target).name
        if text and not title.lower().startswith(text.lower()):
            return f"{text} (*{title}*)"
        return f"*{title}*"
    if name in ("ref", "numref", "eq", "prf:ref"):
        shown = book.labels.get(target, target)
        if text:
            return text.replace("%s", "").replace("{number}", "").strip() or shown
        return f"({target})" if name == "eq" else shown
    if name.startswith("glue") or name == "glue":
        key = target.split(":", 1)[0]
        glue.append(key)
        return f"[`{key}`]"
    if name == "math":
        return f"${content}$"
    if name in ("sub", "sup", "kbd"):
        return f"<{name}>{content}</{name}>"
    if name == "abbr":
        return re.sub(r"\s*\([^()]*\)\s*$", "", content)
    if name.startswith(("cite", "footcite")):
        return f"[{content}]"
    if name in ("code", "file", "samp", "command", "envvar", "download", "py:func", "py:class",
                "py:mod", "py:meth", "py:attr", "func", "class", "mod", "meth", "attr", "literal"):
        return f"`{text or target}`"
    return text or target  # emphasis-free fallback: the role's text


def inline(text: str, book: Book, page: Path) -> tuple[str, list[str]]:
    """Roles to plain Markdown; code spans are copied unchanged. Returns (text, glue keys)."""
    out, glue, i = [], [], 0
    while i < len(text):
        m = ROLE.match(text, i)
        if m:
            ticks = m["ticks"]
            end = _close_ticks(text, m.end(), len(ticks))
            if end >= 0:
                content = text[m.end():end]
                if len(ticks) > 1:
                    content = content.strip()
                out.append(_role(m["name"], " ".join(content.split()), book, page, glue))
                i = end + len(ticks)
                continue
        if text[i] == "`":
            run = re.match(r"`+", text[i:])[0]
            end = _close_ticks(text, i + len(run), len(run))
            j = end + len(run) if end >= 0 else i + len(run)
            out.append(text[i:j])
            i = j
            continue
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out), glue


def _close_ticks(text: str, start: int, n: int) -> int:
    for m in re.finditer(r"`+", text[start:]):
        if len(m[0]) == n:
            return start + m.start()
    return -1


def _find_close(lines: list[str], start: int, fence: str) -> int:
    """Index of the line closing `fence` (opened just before `start`), or len(lines)."""
    char, n = fence[0], len(fence)
    i = start
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m["fence"][0] == char and len(m["fence"]) >= n and not m["info"].strip():
            return i
        if m and char == ":" and m["fence"][0] != ":":  # skip code fences inside colon fences
            i = _find_close(lines, i + 1, m["fence"]) + 1
            continue
        i += 1
    return len(lines)


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    if body and body[0].strip() == "---":  # YAML option block
        end = next((k for k in range(1, len(body)) if body[k].strip() == "---"), None)
        if end is not None:
            for line in body[1:end]:
                k, _, v = line.partition(":")
                opts[k.strip()] = v.strip()
            return opts, body[end + 1:]
    k = 0
    while k < len(body):
        m = re.match(r"^\s*:([\w-]+):\s*(.*)$", body[k])
        if not m:
            break
        opts[m[1]] = m[2].strip()
        k += 1
    return opts, body[k:]


def _quote(text: str, title: str = "") -> str:
    lines = ([f"**{title}**", ""] if title else []) + text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(f"> {x}" if x.strip() else ">" for x in lines)


def _details(summary: str, text: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{text.strip()}\n\n</details>"


class Converter:
    def __init__(self, book: Book, page: Path):
        self.book, self.page = book, page
        self.glue: list[str] = []
        self.exercises = 0
        self.ex_labels: dict[str, str] = {}

    def cell(self, source: str) -> str:
        self.glue = []
        text = self.block(source).strip("\n")
        if self.glue:  # explain the placeholders once, after the paragraph of the first one
            first = text.find(f"[`{self.glue[0]}`]")
            end = text.find("\n\n", first) if first >= 0 else -1
            end = len(text) if end < 0 else end
            text = f"{text[:end]}\n\n{GLUE_NOTE.format(key=self.glue[0])}{text[end:]}"
        return text

    def block(self, source: str) -> str:
        lines = source.splitlines()
        pieces: list[tuple[bool, str]] = []  # (is a converted directive, text)
        run: list[str] = []
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            d = DIRECTIVE.match(m["info"].strip()) if m else None
            if not m or (m["fence"][0] == ":" and not d):
                run.append(lines[i])
                i += 1
                continue
            close = _find_close(lines, i + 1, m["fence"])
            if run:
                pieces.append((False, self.text(run)))
                run = []
            if d and m["fence"][0] != "~":
                ind = m["ind"]
                body = [x[len(ind):] if x.startswith(ind) else x.lstrip() for x in lines[i + 1:close]]
                conv = self.directive(d["name"], d["arg"].strip(), body).strip("\n")
                pieces.append((True, "\n".join(ind + x if x.strip() else "" for x in conv.split("\n"))))
            else:  # a code block: unchanged
                pieces.append((False, "\n".join(lines[i:close + 1])))
            i = close + 1
        if run:
            pieces.append((False, self.text(run)))
        out = ""
        prev_directive = False
        for is_directive, text in pieces:
            if is_directive and not text:
                continue
            if out and (is_directive or prev_directive):  # a blank line on each side
                out = out.rstrip("\n") + "\n\n" + text.lstrip("\n")
            else:
                out = f"{out}\n{text}" if out else text
            prev_directive = is_directive
        return out

    def text(self, lines: list[str]) -> str:
        """Plain Markdown lines: drop targets/comments, convert roles and definition lists."""
        src = "\n".join(lines)
        verbatim = set()
        for tok in MarkdownIt("commonmark").parse(src):
            if tok.type in ("code_block", "fence") and tok.map:
                verbatim.update(range(*tok.map))
        keep: list[str] = []
        for k, line in enumerate(lines):
            if k in verbatim:
                keep.append(("V", line))
            elif TARGET.match(line) or re.match(r"^\s*%", line):
                continue
            else:
                keep.append(("T", line))
        res: list[str] = []
        k = 0
        while k < len(keep):
            kind, line = keep[k]
            if kind == "V":
                res.append(line)
                k += 1
                continue
            j = k
            while j < len(keep) and keep[j][0] == "T":
                j += 1
            chunk, glue = inline("\n".join(x for _, x in keep[k:j]), self.book, self.page)
            self.glue += glue
            res.append(_deflists(chunk))
            k = j
        return "\n".join(res)

    def directive(self, name: str, arg: str, body: list[str]) -> str:
        opts, content = _options(body)
        if name in BODY_ARGUMENT and arg:
            content, arg = [arg, *content], ""
        classes = opts.get("class", "").split()
        inner = self.block("\n".join(content)).strip("\n")
        title = inline(arg, self.book, self.page)[0] if arg else ""
        if name == "admonition" or name in ADMONITION_TITLES or name == "dropdown":
            title = title or ADMONITION_TITLES.get(name, "")
            if name == "dropdown" or "dropdown" in classes or "toggle" in classes:
                return _details(f"<strong>{title or 'Details'}</strong>", inner)
            return _quote(inner, title)
        if name in ("exercise", "prf:exercise"):
            if "nonumber" in opts:
                return "**Exercise**" + (f" ({title})" if title else "") + f"\n\n{inner}"
            self.exercises += 1
            num = f"{chapter_number(self.page)}{self.exercises}"
            if "label" in opts:
                self.ex_labels[opts["label"]] = num
            head = f"**Exercise {num}**" + (f" ({title})" if title else "")
            return f"{head}\n\n{inner}"
        if name in ("solution", "prf:solution"):
            num = self.ex_labels.get(arg.strip())
            summary = f"Solution to Exercise {num}" if num else "Solution"
            return _details(f"<strong>{summary}</strong>", inner)
        if name == "tab-item":
            return f"**{title}**\n\n{inner}"
        if name in TRANSPARENT:
            return inner
        if name in DROP:
            return ""
        if name.startswith("glue"):
            key = arg.split(":", 1)[0].strip()
            cap = f"\n>\n> {inner}" if inner else ""
            return (f"> *[`{key}`]: a result that this notebook's code computes; the published book "
                    f"displays it here.*{cap}")
        if name in ("math",):
            return f"$$\n{chr(10).join(content).strip()}\n$$"
        if name in ("code-block", "code", "sourcecode", "code-cell"):
            return f"```{arg.split()[0] if arg else ''}\n" + "\n".join(content) + "\n```"
        if name in ("figure", "image"):
            alt = opts.get("alt", "")
            img = f"![{alt}]({arg})"
            return f"{img}\n\n*{inner}*" if inner else img
        if name == "list-table":
            return self.list_table(content, opts, title)
        if name == "raw":
            return "\n".join(content) if arg.strip() in ("html", "markdown") else ""
        # unknown directive: its title in bold, then its content
        return f"**{title}**\n\n{inner}" if title else inner

    def list_table(self, content: list[str], opts: dict[str, str], title: str) -> str:
        rows: list[list[list[str]]] = []
        for line in content:
            if re.match(r"^\*\s+-\s?", line) or line.strip() == "* -":
                rows.append([[re.sub(r"^\*\s+-\s?", "", line)]])
            elif re.match(r"^\s{2}-\s?", line) and rows:
                rows[-1].append([re.sub(r"^\s{2}-\s?", "", line)])
            elif rows:
                rows[-1][-1].append(line.strip())
        cells = [[self._cell_text(c) for c in row] for row in rows]
        if not cells:
            return ""
        width = max(len(r) for r in cells)
        cells = [r + [""] * (width - len(r)) for r in cells]
        head = int(opts.get("header-rows", "0") or 0)
        header = cells[0] if head else [""] * width
        body = cells[1:] if head else cells
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * width]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return (f"**{title}**\n\n" if title else "") + "\n".join(lines)

    def _cell_text(self, lines: list[str]) -> str:
        paras, cur = [], []
        for x in lines:
            if x.strip():
                cur.append(x.strip())
            elif cur:
                paras.append(" ".join(cur))
                cur = []
        if cur:
            paras.append(" ".join(cur))
        text = inline("<br><br>".join(paras), self.book, self.page)
        self.glue += text[1]
        return text[0].replace("|", "\\|")


def _deflists(text: str) -> str:
    """MyST definition lists (term line, then ': definition') -> term, then a blockquote."""
    lines = text.split("\n")
    out: list[str] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        if re.match(r"^:\s+\S", line) and out and out[-1].strip():
            body = [line[1:].strip()]
            k += 1
            while k < len(lines) and (re.match(r"^\s{2,}\S", lines[k])):
                body.append(lines[k].strip())
                k += 1
            out += ["", _quote("\n".join(body))]
            if k < len(lines) and lines[k].strip():
                out.append("")
            continue
        out.append(line)
        k += 1
    return "\n".join(out)


def is_notebook_page(md: Path) -> bool:
    head = md.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "kernelspec:" in head and "jupytext:" in head


def twin_of(md: Path, book: Book | None = None) -> str:
    nb = jupytext.read(md)
    conv = Converter(book or Book(), md)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = conv.cell(cell.source)
    setup = nbformat.v4.new_code_cell(SETUP)
    setup.metadata["tags"] = list(SETUP_TAGS)
    nb.cells.insert(0, setup)
    nb.metadata.pop("jupytext", None)
    nb.metadata[MARK] = md.name
    nb.metadata.setdefault("language_info", {"name": "python"})
    for i, cell in enumerate(nb.cells):  # stable ids so unchanged pages give identical files
        cell["id"] = f"c{i:03d}"
    return jupytext.writes(nb, fmt="ipynb")


def lab_with_setup(path: Path) -> str:
    """A lab notebook whose set-up cell (the first code cell, tag ``kvmlab-setup``) is :data:`SETUP`."""
    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if "kvmlab-setup" in c.metadata.get("tags", [])), None)
    if cell is None:
        cell = nbformat.v4.new_code_cell(SETUP)
        first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        nb.cells.insert(first_code, cell)
    cell.source = SETUP
    cell.metadata["tags"] = list(SETUP_TAGS)
    cell.outputs = []
    cell.execution_count = None
    for i, c in enumerate(nb.cells):
        c["id"] = c.get("id") or f"c{i:03d}"
    return nbformat.writes(nb) + "\n"


ANSWER, GRADE, HINTS, PREAMBLE = "answer", "grade", "hints", "preamble"


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _set_tag(cell, tag: str, drop: tuple[str, ...] = ("starter",)) -> None:
    tags = [t for t in _tags(cell) if t not in drop]
    if tag not in tags:
        tags.append(tag)
    cell.metadata["tags"] = tags


def grade_source(lab) -> str:
    """The grade cell: the sealed registry, on the class (or function) the lab names."""
    what = lab.names[0] if len(lab.names) == 1 else "globals()"
    return f'from kvmlab.labs import grade\n\nreport = grade("{lab.id}", {what})\nreport'


def lab_from_registry(nb, lab) -> None:
    """Make ``nb``'s preamble, answer and grade cells the registry's; tag the hint cells.

    The answer cell is the one tagged ``answer`` (or, in older notebooks, ``starter``, or else
    the first cell defining what the lab names); the
    preamble is the code cell just before it unless that is the set-up cell; the grade cell is
    the one tagged ``grade`` or else the first code cell after the answer.
    """
    cells = nb.cells
    idx = [i for i, c in enumerate(cells) if c.cell_type == "code"
           and (ANSWER in _tags(c) or "starter" in _tags(c))]
    if not idx:  # an untagged notebook: the cell that defines what the lab names
        defines = re.compile(r"^(class|def)\s+(" + "|".join(map(re.escape, lab.names)) + r")\b", re.M)
        idx = [i for i, c in enumerate(cells) if c.cell_type == "code" and defines.search(c.source)][:1]
    if not idx:
        raise SystemExit(f"pair_notebooks: {lab.notebook}: no cell tagged answer (or starter)")
    a = idx[0]
    for i in reversed(idx[1:]):  # one answer cell holds the whole starter
        del cells[i]
    cells[a].source = lab.starter.rstrip("\n")
    _set_tag(cells[a], ANSWER)
    pre = next((i for i in range(a - 1, -1, -1) if cells[i].cell_type == "code"), None)
    if pre is None or "kvmlab-setup" in _tags(cells[pre]):
        cells.insert(a, nbformat.v4.new_code_cell(""))
        pre, a = a, a + 1
    cells[pre].source = lab.preamble.rstrip("\n")
    _set_tag(cells[pre], PREAMBLE)
    g = next((i for i, c in enumerate(cells) if c.cell_type == "code" and GRADE in _tags(c)), None)
    if g is None:
        g = next((i for i in range(a + 1, len(cells)) if cells[i].cell_type == "code"), None)
    if g is None:
        cells.append(nbformat.v4.new_code_cell(""))
        g = len(cells) - 1
    cells[g].source = grade_source(lab)
    _set_tag(cells[g], GRADE)
    for c in cells:
        if c.cell_type == "markdown" and re.search(r"<summary>\s*Hint|^#+\s*Hints?\b", c.source, re.M):
            _set_tag(c, HINTS)


def lab_notebook(path: Path) -> str:
    """A lab notebook with the shared set-up cell and, once kvmlab.labs exists, the registry's cells."""
    text = lab_with_setup(path)
    try:
        from kvmlab import labs
    except ImportError:
        return text
    lab = next((x for x in labs.LABS.values() if Path(x.notebook).name == path.name), None) \
        if isinstance(labs.LABS, dict) else next((x for x in labs.LABS if Path(x.notebook).name == path.name), None)
    if lab is None:
        return text
    nb = nbformat.reads(text, as_version=4)
    lab_from_registry(nb, lab)
    for i, c in enumerate(nb.cells):
        c["id"] = c.get("id") or f"c{i:03d}"
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report stale or missing twins, write nothing")
    a = ap.parse_args(argv)
    wanted: dict[Path, str] = {}
    book = Book()
    for md in sorted(BOOK.glob("*.md")):
        if is_notebook_page(md):
            wanted[md.with_suffix(".ipynb")] = twin_of(md, book)
    bad = []
    for lab in sorted((ROOT / "notebooks").glob("lab*.ipynb")):
        wanted[lab] = lab_notebook(lab)
    for path, text in wanted.items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            bad.append(path)
            if not a.check:
                path.write_text(text, encoding="utf-8")
    for path in sorted(BOOK.glob("*.ipynb")):  # twins whose page is gone
        if path in wanted:
            continue
        try:
            meta = nbformat.read(path, as_version=4).metadata
        except Exception:  # noqa: BLE001 - not ours, leave it alone
            continue
        if MARK in meta:
            bad.append(path)
            if not a.check:
                path.unlink()
    verb = "stale or missing" if a.check else "updated"
    for p in bad:
        print(f"pair_notebooks: {verb}: {p.relative_to(ROOT)}")
    if not bad:
        print(f"pair_notebooks: {len(wanted)} notebook twins and labs up to date")
    return 1 if (a.check and bad) else 0


if __name__ == "__main__":
    sys.exit(main())
