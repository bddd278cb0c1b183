"""Teaching subcommands of ``kvmlab``: ``quiz`` (drill sets) and ``autograder`` (Gradescope bundles).

``cli.py`` adds them with ``cli_teach.add_parsers(sub)``; ``python -m kvmlab.cli_teach`` runs
them on their own. Exit codes: 0 success, 2 bad input, 4 the tool failed (I/O).
"""

from __future__ import annotations

import argparse
import json
import sys

from .engine.errors import KvmlabError, ModelError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"kvmlab: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def cmd_quiz(a) -> int:
    from . import drills
    q = drills.quiz(a.chapter, a.seed, a.count)
    text = json.dumps(q, indent=2) + "\n" if a.json else drills.quiz_markdown(q)
    if a.output:
        try:
            with open(a.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            print(f"kvmlab: cannot write {a.output}: {e.strerror}", file=sys.stderr)
            return 4
    else:
        sys.stdout.write(text)
    return 0


def cmd_autograder(a) -> int:
    from . import autograder
    try:
        out = autograder.write_bundle(a.lab, a.output, zip_it=a.zip, force=a.force)
    except OSError as e:
        print(f"kvmlab: cannot write the bundle: {e}", file=sys.stderr)
        return 4
    print(f"wrote {out}")
    return 0


def add_parsers(sub) -> None:
    """Add ``quiz`` and ``autograder`` to an ``add_subparsers()`` object."""
    s = sub.add_parser("quiz", help="a per-student 'predict the verdict' set with its answer key")
    s.add_argument("chapter", help="ch0 .. ch6 (or 0 .. 6)")
    s.add_argument("--seed", type=int, required=True, help="one number per student: the same seed, the same set")
    s.add_argument("--count", type=int, default=5, help="questions in the set (default 5)")
    s.add_argument("--json", action="store_true", help="JSON instead of markdown")
    s.add_argument("-o", "--output", default=None, help="write to FILE instead of standard output")
    s.set_defaults(func=cmd_quiz)

    s = sub.add_parser("autograder", help="write a Gradescope autograder bundle for a lab")
    s.add_argument("lab", help="lab0 .. lab6")
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    s.add_argument("--zip", action="store_true", help="also write DIR.zip, ready to upload")
    s.add_argument("--force", action="store_true", help="overwrite a non-empty DIR")
    s.set_defaults(func=cmd_autograder)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="kvmlab", description="kvmlab teaching commands")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    add_parsers(sub)
    a = p.parse_args(argv)
    try:
        return a.func(a)
    except ModelError as e:
        print(f"kvmlab: model error: {e}", file=sys.stderr)
        return 2
    except KvmlabError as e:
        print(f"kvmlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
