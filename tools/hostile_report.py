"""Grade every hostile answer in tests/hostile and print a markdown table (lab, case, verdict, message).

    .venv/bin/python tools/hostile_report.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kvmlab import labs

HERE = Path(__file__).resolve().parents[1] / "tests" / "hostile"


def main() -> int:
    print("| lab | answer | expected | verdict | message (first line) | s |")
    print("|---|---|---|---|---|---|")
    for p in sorted(HERE.glob("lab*.py")):
        expect = p.read_text().splitlines()[0].removeprefix("# expect: ")
        lab = p.name.split("_")[0]
        t0 = time.perf_counter()
        try:
            rep = labs.grade_source(lab, p.read_text(), step_timeout=1.0)
            verdict = "PASS" if rep.passed else "FAIL"
            msg = rep.message().splitlines()[0]
        except labs.SubmissionError as e:
            verdict, msg = "not loaded (exit 2)", str(e).splitlines()[0]
        dt = time.perf_counter() - t0
        msg = msg.replace("|", "\\|")
        if len(msg) > 150:
            msg = msg[:147] + "..."
        print(f"| {lab} | {p.stem.split('_', 1)[1]} | {expect} | {verdict} | {msg} | {dt:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
