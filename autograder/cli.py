"""``cnn-course``: one entry point for the course's commands.

    cnn-course demo                      a full grading cycle (see autograder.demo)
    cnn-course grade ASSIGNMENT          autograde a class (see autograder.classgrade)
    cnn-course report ASSIGNMENT...      the per-student, per-problem table
    cnn-course sync|check [ASSIGNMENT]   solution cells vs solutions/ (see autograder.notebooks)
"""
from __future__ import annotations

import sys
from pathlib import Path


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from .demo import main as run
    elif command == "grade":
        from .classgrade.sequential import main as run
    elif command in ("sync", "check"):
        from .notebooks import main as notebooks_main

        return notebooks_main([command, *rest])
    elif command == "report":
        from .notebooks import COURSE
        from .classgrade.report import class_table

        print(class_table(Path(COURSE), rest))
        return 0
    else:
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
