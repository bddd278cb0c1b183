"""Write an .ipynb twin of every MyST chapter page in book/ (run by ``make book``).

Colab opens only .ipynb files, and Binder and JupyterHub open a MyST .md page as text
unless jupytext is set up there. sphinx-book-theme points its launch buttons at
``book/<page>.ipynb`` when that file sits next to ``book/<page>.md``, so every button
opens a runnable notebook. The twins are **committed** (Colab and Binder read them from
the GitHub repository, so a git-ignored file would be a dead link there); the book build
excludes them (``exclude_patterns`` in ``_config.yml``) and executes the .md.

Each twin starts with one set-up cell that installs ``kvmlab`` when it is missing
(Colab, a JupyterHub without the package); where ``kvmlab`` is importable (Binder, a
local checkout, the book build) the cell does nothing. Outputs are not stored.

    python tools/pair_notebooks.py          # write twins that changed, drop orphans
    python tools/pair_notebooks.py --check  # exit 1 if a twin is missing or stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
REPO = "https://github.com/kvmlab/kvm-concurrency-book"  # forks: also set _config.yml repository.url
MARK = "kvmlab_paired_from"

SETUP = f'''\
# Set-up for Colab or a JupyterHub: install kvmlab if it is missing (does nothing otherwise).
import importlib.util
import subprocess
import sys
from pathlib import Path

PUBLISHED = "kvmlab[widgets,diagrams] @ git+{REPO}"
if importlib.util.find_spec("kvmlab") is None:
    here = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "src" / "kvmlab").is_dir()), None)
    spec = f"{{here}}[widgets,diagrams]" if here else PUBLISHED
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", spec])'''


def is_notebook_page(md: Path) -> bool:
    head = md.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "kernelspec:" in head and "jupytext:" in head


def twin_of(md: Path) -> str:
    nb = jupytext.read(md)
    setup = nbformat.v4.new_code_cell(SETUP)
    setup.metadata["tags"] = ["remove-cell", "kvmlab-setup"]
    nb.cells.insert(0, setup)
    nb.metadata.pop("jupytext", None)
    nb.metadata[MARK] = md.name
    nb.metadata.setdefault("language_info", {"name": "python"})
    for i, cell in enumerate(nb.cells):  # stable ids so unchanged pages give identical files
        cell["id"] = f"c{i:03d}"
    return jupytext.writes(nb, fmt="ipynb")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report stale or missing twins, write nothing")
    a = ap.parse_args(argv)
    wanted: dict[Path, str] = {}
    for md in sorted(BOOK.glob("*.md")):
        if is_notebook_page(md):
            wanted[md.with_suffix(".ipynb")] = twin_of(md)
    bad = []
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
        print(f"pair_notebooks: {len(wanted)} notebook twins up to date")
    return 1 if (a.check and bad) else 0


if __name__ == "__main__":
    sys.exit(main())
