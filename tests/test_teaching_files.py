"""CITATION.cff matches the package version; the teaching pages are in the table of contents."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_citation_version_is_the_package_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == version
    import kvmlab
    assert kvmlab.__version__ == version
    assert {"title", "authors", "message"} <= set(cff)
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert cff["repository-code"] == repo


def test_teaching_pages_in_toc():
    toc = (ROOT / "_toc.yml").read_text()
    assert "book/instructors" in toc and "book/drills" in toc and "book/drills-ch*" in toc
    for n in range(7):
        assert (ROOT / "book" / f"drills-ch{n}.md").is_file()
