"""``python -m autograder.classgrade ASSIGNMENT``: grade a class one student at a time (:mod:`.sequential`)."""
import sys

from .sequential import main

if __name__ == "__main__":
    sys.exit(main())
