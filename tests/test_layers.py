"""The package's layers: imports between kvmlab's parts form no cycle, and the engine imports only itself.

Every module under ``src/kvmlab`` is parsed with :mod:`ast`; every import
counts (module level or inside a function, relative or absolute, and
``importlib.import_module`` of a literal name). A *unit* is a top-level part
of the package: a subpackage (``engine``, ``models``, ``widgets``, ...), a
top-level module (``api``, ``lab``, ``cli``, ...), or ``kvmlab`` itself (the
package's ``__init__``, the facade).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PKG = "kvmlab"

# the engine may use its optional compiled core (kvmlab._core, built by cffi from _core.c: C that imports nothing)
ENGINE_MAY_IMPORT = {"engine", "_core"}


def _modules(src: Path, pkg: str) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (source file, is a package), for every ``.py`` file under ``src/pkg``."""
    mods = {}
    for p in sorted((src / pkg).rglob("*.py")):
        parts = list(p.relative_to(src).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        mods[".".join(parts)] = (p, is_pkg)
    return mods


def _is_module(name: str, mods, src: Path) -> bool:
    if name in mods:
        return True
    p = src.joinpath(*name.split("."))
    return p.is_dir() or any(p.with_name(p.name + s).exists() for s in EXTENSION_SUFFIXES)


def _imported(node, package: str, mods, src: Path) -> list[str]:
    """The dotted module names an import node (or ``importlib.import_module("...")`` call) brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # "from pkg import name": the submodule pkg.name if there is one, else pkg itself
        return [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}", mods, src) else base for a in node.names]
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
                 or isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))):
        return [node.args[0].value]
    return []


def _unit(name: str, pkg: str) -> str:
    parts = name.split(".")
    return pkg if len(parts) == 1 else parts[1]


def import_graph(src: Path = SRC, pkg: str = PKG) -> dict[tuple[str, str], list[str]]:
    """(unit, unit it imports) -> the import sites ``file:line``, between different units of ``pkg``."""
    mods = _modules(src, pkg)
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, (path, is_pkg) in mods.items():
        package = name if is_pkg else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            for target in _imported(node, package, mods, src):
                if target != pkg and not target.startswith(pkg + "."):
                    continue
                u, v = _unit(name, pkg), _unit(target, pkg)
                site = f"{path.relative_to(src)}:{node.lineno}"
                if u != v and site not in edges[u, v]:
                    edges[u, v].append(site)
    return dict(edges)


def tangles(edges) -> list[tuple[list[str], list[str]]]:
    """Each set of units that import each other in a cycle (a strongly connected component of more
    than one unit), with one of its shortest cycles ``[a, b, ..., a]``."""
    succ: dict[str, list[str]] = defaultdict(list)
    for u, v in sorted(edges):
        succ[u].append(v)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    sccs: list[set[str]] = []

    def visit(u):  # Tarjan; the graph has a few dozen units, recursion is fine
        index[u] = low[u] = len(index)
        stack.append(u)
        on.add(u)
        for v in succ[u]:
            if v not in index:
                visit(v)
                low[u] = min(low[u], low[v])
            elif v in on:
                low[u] = min(low[u], index[v])
        if low[u] == index[u]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == u:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    for u in sorted({x for e in edges for x in e}):
        if u not in index:
            visit(u)
    out = []
    for comp in sccs:  # a shortest cycle through the component's first unit (BFS inside it)
        start = min(comp)
        prev = {start: None}
        queue = [start]
        end = None
        while queue and end is None:
            u = queue.pop(0)
            for v in succ[u]:
                if v == start:
                    end = u
                    break
                if v in comp and v not in prev:
                    prev[v] = u
                    queue.append(v)
        path = []
        while end is not None:
            path.append(end)
            end = prev[end]
        out.append((sorted(comp), path[::-1] + [start]))
    return out


def describe(units: list[str], cycle: list[str], edges) -> str:
    def site(u, v):
        return f"  {u} -> {v}  ({', '.join(edges[u, v][:4])}{' ...' if len(edges[u, v]) > 4 else ''})"
    inner = sorted((u, v) for u, v in edges if u in units and v in units and (u, v) not in zip(cycle, cycle[1:]))
    return "\n".join([f"{{{', '.join(units)}}} import each other; a cycle: {' -> '.join(cycle)}"]
                     + [site(u, v) for u, v in zip(cycle, cycle[1:])]
                     + (["  other imports among them:"] + [site(u, v) for u, v in inner] if inner else []))


def cycles(edges) -> list[list[str]]:
    return [c for _, c in tangles(edges)]


def test_units_import_each_other_without_cycles():
    edges = import_graph()
    found = tangles(edges)
    assert not found, "import cycles between kvmlab's parts:\n" + "\n\n".join(describe(u, c, edges) for u, c in found)


def test_engine_imports_only_itself():
    edges = import_graph()
    out = {(u, v): w for (u, v), w in edges.items() if u == "engine" and v not in ENGINE_MAY_IMPORT}
    assert not out, "the engine imports outside itself:\n" + "\n".join(
        f"  engine -> {v}  ({', '.join(w)})" for (_, v), w in sorted(out.items()))


def engine_module_graph(src: Path = SRC, pkg: str = PKG) -> dict[tuple[str, str], list[str]]:
    """(module, module it imports) -> import sites, between the engine's own modules."""
    mods = _modules(src, pkg)
    prefix = f"{pkg}.engine."
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, (path, is_pkg) in mods.items():
        if not name.startswith(prefix) or is_pkg:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            for target in _imported(node, name.rpartition(".")[0], mods, src):
                if target.startswith(prefix) and target != name:
                    edges[name[len(prefix):], target[len(prefix):]].append(f"{path.relative_to(src)}:{node.lineno}")
    return dict(edges)


def test_engine_modules_import_each_other_without_cycles():
    edges = engine_module_graph()
    assert ("explorer", "ccore") in edges and ("ccore", "search") in edges  # the scan sees them
    found = tangles(edges)
    assert not found, "import cycles inside the engine:\n" + "\n\n".join(describe(u, c, edges) for u, c in found)


def test_the_scan_sees_every_kind_of_import():
    edges = import_graph()
    # module level, relative (kvmlab/api.py: from . import models as registry)
    assert any(w.endswith("api.py:" + str(_line("api.py", "from . import models"))) for w in edges["api", "models"])
    # inside a function (the facade's explore() takes the control panel from widgets)
    assert ("kvmlab", "widgets") in edges
    # absolute, from a file that is not a module of the package's tree of __init__s (the labs' starters)
    assert ("labdata", "kvmlab") in edges
    assert ("engine", "_core") in edges  # a compiled module, named by a relative import


def _line(rel: str, text: str) -> int:
    lines = (SRC / PKG / rel).read_text(encoding="utf-8").splitlines()
    return next(i for i, s in enumerate(lines, 1) if s.startswith(text))


@pytest.mark.parametrize("hidden", ["in_function", "importlib", "from_package"])
def test_a_cycle_hidden_in_any_import_is_found(tmp_path, hidden):
    pkg = tmp_path / "demo"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "base.py").write_text({
        "in_function": "def f():\n    from ..high import g\n    return g\n",
        "importlib": "import importlib\nhigh = importlib.import_module('demo.high')\n",
        "from_package": "from demo import high\n",
    }[hidden])
    (pkg / "high.py").write_text("from .low.base import f\n")
    edges = import_graph(tmp_path, "demo")
    assert cycles(edges) == [["high", "low", "high"]]
    assert "high -> low" in describe(*tangles(edges)[0], edges)
    (pkg / "low" / "base.py").write_text("def f():\n    return 1\n")
    assert cycles(import_graph(tmp_path, "demo")) == []
