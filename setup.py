"""Builds the optional C core of the explorer (``kvmlab._core``, via cffi) with the package.

The extension is optional: if it cannot be built (no C compiler), ``pip install``
still succeeds and the explorer runs in pure Python (as it does in Pyodide).
"""

import sys
from pathlib import Path

from setuptools import setup

ext_modules = []
try:
    sys.path.insert(0, str(Path(__file__).parent / "src" / "kvmlab"))
    from _core_build import ffibuilder

    ext = ffibuilder.distutils_extension(tmpdir="build/cffi")
    ext.optional = True  # a failed compile is a warning, not a failed install
    ext_modules.append(ext)
except Exception as e:  # cffi missing: no C core
    print(f"kvmlab: not building the C core ({e}); the explorer will run in pure Python", file=sys.stderr)
finally:
    sys.path.pop(0)

setup(ext_modules=ext_modules)
