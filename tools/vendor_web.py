#!/usr/bin/env python3
"""Vendor the runnable labs' browser runtime into ``vendor/web/_kvmlab`` (``make web``).

From the npm registry, pinned by ``web/package-lock.json`` (``npm ci``, run
only when ``web/node_modules`` is missing or older than the lock): Pyodide
(only the files a page loads), and CodeMirror 6 bundled by esbuild into one
script (``editor.js``). Licences are copied beside them. The book build
(:mod:`kvmlab.widgets.labpage`) copies the result into ``_build/html/_kvmlab``
and adds the ``kvmlab`` wheel it builds from the source. Nothing is fetched
when everything is present and up to date.

Exit codes: 0 done, 2 bad input (missing web/ files), 4 a tool failed (npm,
esbuild, I/O).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
OUT = ROOT / "vendor" / "web" / "_kvmlab"
PYODIDE_FILES = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"]
# npm packages whose code ends up in editor.js (their licence files are copied)
EDITOR_PACKAGES = ["codemirror", "@codemirror/autocomplete", "@codemirror/commands", "@codemirror/lang-python",
                   "@codemirror/language", "@codemirror/lint", "@codemirror/search", "@codemirror/state",
                   "@codemirror/view", "@lezer/common", "@lezer/highlight", "@lezer/lr", "@lezer/python",
                   "@marijn/find-cluster-break", "crelt", "style-mod", "w3c-keyname"]


class VendorError(Exception):
    def __init__(self, msg: str, code: int = 4):
        super().__init__(msg)
        self.code = code


def _newer(target: Path, *sources: Path) -> bool:
    """True when ``target`` exists and is at least as new as every source."""
    if not target.exists():
        return False
    t = target.stat().st_mtime
    return all(s.stat().st_mtime <= t for s in sources)


def _run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    try:
        subprocess.run(cmd, cwd=cwd, check=True)
    except FileNotFoundError as e:
        raise VendorError(f"{cmd[0]} not found ({e}); install Node.js/npm (Debian: apt-get install npm)") from e
    except subprocess.CalledProcessError as e:
        raise VendorError(f"{' '.join(cmd)} failed with exit code {e.returncode}") from e


def npm_ci(force: bool) -> None:
    lock = WEB / "package-lock.json"
    stamp = WEB / "node_modules" / ".package-lock.json"
    if not force and _newer(stamp, lock, WEB / "package.json"):
        return
    _run(["npm", "ci", "--no-audit", "--no-fund"], WEB)


def package_dir(name: str) -> Path:
    return WEB / "node_modules" / name


def package_version(name: str) -> str:
    return json.loads((package_dir(name) / "package.json").read_text())["version"]


def bundle_editor(force: bool) -> None:
    out = OUT / "editor.js"
    src = WEB / "editor.mjs"
    if not force and _newer(out, src, WEB / "package-lock.json"):
        return
    esbuild = WEB / "node_modules" / ".bin" / "esbuild"
    _run([str(esbuild), str(src), "--bundle", "--format=iife", "--minify", "--legal-comments=none",
          "--target=es2020", f"--outfile={out}"], WEB)


def copy_pyodide() -> None:
    dst = OUT / "pyodide"
    dst.mkdir(parents=True, exist_ok=True)
    for name in PYODIDE_FILES:
        s, d = package_dir("pyodide") / name, dst / name
        if not s.exists():
            raise VendorError(f"the pyodide npm package has no {name}: is web/package-lock.json intact?")
        if not d.exists() or d.stat().st_size != s.stat().st_size or d.stat().st_mtime < s.stat().st_mtime:
            shutil.copy2(s, d)


def copy_licences() -> list[dict]:
    lic = OUT / "LICENSES"
    lic.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in EDITOR_PACKAGES + ["pyodide"]:
        d = package_dir(name)
        meta = json.loads((d / "package.json").read_text())
        files = sorted(p for p in d.iterdir() if p.name.upper().startswith(("LICEN", "COPYING")))
        safe = name.replace("/", "__").lstrip("@")
        for f in files:
            shutil.copy2(f, lic / f"{safe}-{f.name}")
        rows.append({"package": name, "version": meta["version"], "license": meta.get("license"),
                     "files": [f"{safe}-{f.name}" for f in files]})
    # the pyodide npm package ships no licence file: MPL-2.0 text from Debian's base-files,
    # and CPython's licence (Pyodide contains CPython and its standard library)
    extra = {"pyodide": [(Path("/usr/share/common-licenses/MPL-2.0"), "pyodide-LICENSE-MPL-2.0.txt")],
             "cpython": [(Path(sysconfig.get_path("stdlib")) / "LICENSE.txt", "cpython-LICENSE.txt"),
                         (Path("/usr/lib/python3.11/LICENSE.txt"), "cpython-LICENSE.txt")]}
    for pkg, cands in extra.items():
        for src, dst in cands:
            if src.exists():
                shutil.copy2(src, lic / dst)
                row = next((r for r in rows if r["package"] == pkg), None)
                if row is None:
                    row = {"package": "cpython (inside pyodide)", "version": "see pyodide", "license": "PSF-2.0",
                           "files": []}
                    rows.append(row)
                row["files"].append(dst)
                break
    lines = ["Third-party code served with the book's runnable labs (vendored by tools/vendor_web.py).", ""]
    for r in rows:
        lines.append(f"{r['package']} {r['version']}: {r['license']}  ({', '.join(r['files']) or 'no licence file'})")
    (lic / "README.txt").write_text("\n".join(lines) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="run npm ci and esbuild even when up to date")
    args = ap.parse_args(argv)
    try:
        for need in ("package.json", "package-lock.json", "editor.mjs"):
            if not (WEB / need).exists():
                raise VendorError(f"web/{need} is missing", 2)
        OUT.mkdir(parents=True, exist_ok=True)
        npm_ci(args.force)
        bundle_editor(args.force)
        copy_pyodide()
        rows = copy_licences()
        files = {p.relative_to(OUT).as_posix(): p.stat().st_size for p in sorted(OUT.rglob("*")) if p.is_file()
                 and p.name != "runtime.json"}
        manifest = {"pyodide": package_version("pyodide"), "codemirror": package_version("codemirror"),
                    "packages": rows, "bytes": files}
        (OUT / "runtime.json").write_text(json.dumps(manifest, indent=1) + "\n")
    except VendorError as e:
        print(f"vendor_web: error: {e}", file=sys.stderr)
        return e.code
    except OSError as e:
        print(f"vendor_web: error: {e}", file=sys.stderr)
        return 4
    total = sum(files.values())
    print(f"vendor_web: {OUT.relative_to(ROOT)} ready: Pyodide {manifest['pyodide']}, "
          f"{len(files)} files, {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
