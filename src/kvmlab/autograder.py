"""A Gradescope autograder bundle for a lab: ``kvmlab autograder LAB -o DIR``.

Gradescope unpacks the bundle into ``/autograder/source``, runs ``setup.sh`` once when it
builds the image, then ``run_autograder`` for every submission, with the student's files in
``/autograder/submission``; the score is read from ``/autograder/results/results.json``.
``run_autograder`` finds the submitted notebook (or ``.py`` file) and runs
``kvmlab grade LAB FILE --format gradescope -o /autograder/results/results.json``.

The bundle carries kvmlab itself (pure Python, no third-party dependencies) as source in
``kvmlab/``, so neither script needs the network for kvmlab; ``setup.sh`` only makes sure a
Python >= 3.11 is there. Both scripts honour ``KVMLAB_AUTOGRADER_ROOT`` in place of
``/autograder`` (for testing the bundle anywhere).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path

from .engine import KvmlabError

ENV_ROOT = "KVMLAB_AUTOGRADER_ROOT"
GRADE_TIMEOUT = 600  # seconds for the whole grade of one submission (kvmlab grade --timeout)

SETUP_SH = r"""#!/usr/bin/env bash
# kvmlab {version} autograder for {lab} ({title}): run once by Gradescope when it builds the image.
# It makes sure a Python >= 3.11 exists; kvmlab itself is in ./kvmlab (pure Python, no dependencies).
set -euo pipefail
ROOT="${{KVMLAB_AUTOGRADER_ROOT:-/autograder}}"
SRC="$ROOT/source"

find_python() {{
  for p in python3.13 python3.12 python3.11 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$p"
      return 0
    fi
  done
  return 1
}}

PY="$(find_python || true)"
if [ -z "$PY" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 || true
  PY="$(find_python || true)"
fi
if [ -z "$PY" ]; then
  echo "setup.sh: kvmlab needs Python >= 3.11 and none could be found or installed" >&2
  exit 1
fi
echo "$PY" > "$SRC/.python"
PYTHONPATH="$SRC" "$PY" -c 'import kvmlab, sys
v = kvmlab.__version__
sys.exit(0 if v == "{version}" else f"kvmlab {{v}} in the bundle, expected {version}")'
echo "setup.sh: kvmlab {version} ready with $PY"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# kvmlab {version} autograder for {lab} ({title}): run by Gradescope for every submission.
set -uo pipefail
ROOT="${{KVMLAB_AUTOGRADER_ROOT:-/autograder}}"
SRC="$ROOT/source"
SUB="$ROOT/submission"
RES="$ROOT/results"
OUT="$RES/results.json"
mkdir -p "$RES"
PY="$(cat "$SRC/.python" 2>/dev/null || command -v python3)"

fail() {{  # a results.json with score 0 and the reason, for the student to read
  "$PY" - "$OUT" "$1" <<'PYEOF'
import json, sys
json.dump({{"score": 0.0, "output": sys.argv[2], "visibility": "visible", "stdout_visibility": "visible",
           "tests": [{{"name": "{lab}: {title}", "score": 0.0, "max_score": 1.0, "output": sys.argv[2],
                      "visibility": "visible"}}]}}, open(sys.argv[1], "w"), indent=2)
PYEOF
}}

# The submission: the lab's notebook by name, else the one notebook, else the one .py file.
FILE=""
if [ -f "$SUB/{notebook}" ]; then
  FILE="$SUB/{notebook}"
else
  for ext in ipynb py; do
    mapfile -t found < <(find "$SUB" -maxdepth 2 -type f -name "*.$ext" ! -path "*/.ipynb_checkpoints/*" | sort)
    if [ "${{#found[@]}}" -eq 1 ]; then FILE="${{found[0]}}"; break; fi
    if [ "${{#found[@]}}" -gt 1 ]; then
      fail "Found ${{#found[@]}} .$ext files; submit only {notebook} (or one .py file defining {names})."
      exit 0
    fi
  done
fi
if [ -z "$FILE" ]; then
  fail "No submission found: upload {notebook} (or one .py file defining {names})."
  exit 0
fi

PYTHONPATH="$SRC" "$PY" -m kvmlab.cli grade {lab} "$FILE" --format gradescope --timeout {timeout} -o "$OUT" \
  2> "$RES/grader-stderr.txt"
rc=$?
if [ ! -s "$OUT" ]; then
  fail "The grader could not grade this submission (exit $rc): $(tail -c 1500 "$RES/grader-stderr.txt")"
fi
exit 0
"""

README = """# kvmlab autograder for {lab}: {title}

Upload `{zipname}` (or a zip of this folder's contents: `setup.sh` and `run_autograder` must be
at the top level) as the autograder of a Gradescope programming assignment (Ubuntu base image;
see https://gradescope-autograders.readthedocs.io/en/latest/specs/).

- Students submit `{notebook}` (the lab notebook with their answer in the cells tagged
  `answer`) or one `.py` file defining {names}.
- `run_autograder` runs `kvmlab grade {lab} FILE --format gradescope`: the lab's sealed
  configurations and properties, the same as the notebook's grade cell. A pass scores full
  marks; the test output names the first violated property and its shortest counterexample.
- kvmlab {version} is in `kvmlab/` as source: nothing is downloaded when grading.
- Try it locally: `KVMLAB_AUTOGRADER_ROOT=/tmp/ag` with `/tmp/ag/source` (this folder),
  `/tmp/ag/submission/` (a submission) and `/tmp/ag/results/`; run `source/setup.sh` once,
  then `source/run_autograder`, and read `results/results.json`.
"""

REQUIREMENTS = """\
# kvmlab {version}: vendored as source in kvmlab/ (pure Python, no third-party dependencies).
# Nothing else is needed to grade; nothing is installed from a package index.
kvmlab=={version}
"""


def _lab(lab_id: str):
    try:
        from . import labs
    except ImportError as e:  # pragma: no cover - labs.py ships with the package
        raise KvmlabError(f"this kvmlab has no lab registry: {e}") from None
    return labs.get(lab_id)


def _copy_package(dest: Path) -> None:
    src = Path(__file__).resolve().parent
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))


def write_bundle(lab_id: str, out: str | Path, *, zip_it: bool = False, force: bool = False) -> Path:
    """Write the bundle for ``lab_id`` into folder ``out`` (and ``out.zip`` with ``zip_it``)."""
    from ._version import __version__
    lab = _lab(lab_id)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise KvmlabError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise KvmlabError(f"{out} is not empty (use --force to overwrite it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    names = " or ".join(f"`{n}`" for n in lab.names) or "the lab's answer"
    fields = {"lab": lab.id, "title": lab.title.replace('"', "'"), "version": __version__,
              "notebook": Path(lab.notebook).name, "names": names.replace("`", ""), "timeout": GRADE_TIMEOUT,
              "zipname": f"{out.name}.zip"}
    (out / "setup.sh").write_text(SETUP_SH.format(**fields), encoding="utf-8")
    (out / "run_autograder").write_text(RUN_AUTOGRADER.format(**fields), encoding="utf-8")
    (out / "requirements.txt").write_text(REQUIREMENTS.format(**fields), encoding="utf-8")
    (out / "README.md").write_text(README.format(**{**fields, "names": names}), encoding="utf-8")
    for f in ("setup.sh", "run_autograder"):
        p = out / f
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    _copy_package(out / "kvmlab")
    if zip_it:
        z = out.with_suffix(".zip")
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(out.rglob("*")):
                if p.is_file():
                    info = zipfile.ZipInfo.from_file(p, p.relative_to(out).as_posix())
                    with p.open("rb") as fh:
                        zf.writestr(info, fh.read(), zipfile.ZIP_DEFLATED)
        return z
    return out
