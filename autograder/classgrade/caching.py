"""``JudgedExecute`` with a store of executed notebooks (what parallel grading resumes from).

The key of a stored notebook is the hash of the sanitised submission, the assignment, the
student, the grader's code and the references (:func:`grader_digest`) and the seed: a
notebook is reused only when grading it again would compute the same thing.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import nbformat
from traitlets import Enum, Unicode

from ..integration.execute import JudgedExecute
from .sequential import REPO


class CachingExecute(JudgedExecute):
    """``JudgedExecute`` that can store its executed notebooks, or reuse stored ones.

    With ``cache_mode="off"`` (the default) it is exactly ``JudgedExecute``.
    """

    cache_mode = Enum(["off", "write", "read", "reuse"], "off",
                      help="Store executed notebooks ('write'), use stored ones ('read'), or use a stored "
                           "one when there is one and store the others ('reuse').").tag(config=True)
    cache_dir = Unicode("", help="Folder of the stored notebooks.").tag(config=True)

    def _key(self, nb, resources) -> str:
        meta = resources.get("nbgrader", {})
        text = "\0".join((nbformat.writes(nb), str(meta.get("assignment")), str(meta.get("student")),
                          grader_digest(), str(self.seed if self.seed is not None else self._seed(resources))))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def preprocess(self, nb, resources):
        if self.cache_mode == "off" or not self.cache_dir:
            return super().preprocess(nb, resources)
        path = Path(self.cache_dir) / f"{self._key(nb, resources)}.ipynb"
        if self.cache_mode in ("read", "reuse") and path.exists():
            self.log.info("Using the executed notebook from %s", path)
            return nbformat.read(path, as_version=4), resources
        nb, resources = super().preprocess(nb, resources)
        if self.cache_mode in ("write", "reuse"):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            nbformat.write(nb, tmp)
            tmp.replace(path)
        return nb, resources


@functools.lru_cache(maxsize=1)
def grader_digest() -> str:
    """A hash of the grader's code and the references: a cached grading is reused only by the same grader."""
    sha = hashlib.sha256()
    for folder in ("autograder", "solutions", "gradekit"):
        for path in sorted((REPO / folder).rglob("*.py")):
            sha.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()
