"""The seed of a notebook's hidden cases: secret, per student, and the same at every regrade.

A fresh random seed per grading made a regrade of unchanged work change its partial credit,
and sequential and parallel grading disagree. The seed is instead derived with HMAC-SHA256
from a secret kept with the course (never in the repository, never in the sandbox) and the
assignment, the student and the notebook: students cannot predict their inputs (nor share
them: each student has their own), and any grader holding the secret, on any machine,
draws the same cases for the same notebook.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

#: The secret's file name in the course root (``JudgedExecute.secret_file`` overrides the path).
SECRET_FILE = ".grading-secret"


def course_secret(path: Path) -> bytes:
    """The secret in ``path``, created (32 random bytes, hex, mode 0600) when there is none."""
    path = Path(path)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another grader process wrote it first: use theirs
            return course_secret(path)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
    if len(text) < 32:
        raise ValueError(f"{path}: the grading secret is too short (at least 32 characters)")
    return text.encode()


def grading_seed(secret: bytes, assignment: str, student: str, notebook: str) -> int:
    """A 31-bit seed from HMAC-SHA256(secret, assignment / student / notebook)."""
    message = "\0".join((assignment, student, notebook)).encode()
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big") % 2**31
