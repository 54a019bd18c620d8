"""What the kernel recorded, moved out of its reach test cell by test cell, and the judge's inputs
released to the kernel just before their test cell."""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
from pathlib import Path

from gradekit.capture import WORKDIR_NAME

from ..isolation.sandbox.files import remove_tree

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _open_dir(parent_fd: int, name: str, create: bool) -> int | None:
    """Open ``name`` under ``parent_fd`` as a directory, never through a link.

    With ``create``, anything else in its place (a link, a file) is removed and a
    directory made.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except OSError as exc:
        if not create:
            return None
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise
    try:
        os.unlink(name, dir_fd=parent_fd)
    except OSError:
        pass
    os.mkdir(name, 0o755, dir_fd=parent_fd)
    return os.open(name, flags, dir_fd=parent_fd)


#: What a record's digest becomes when more than one (or a malformed one) arrived.
DUPLICATE_DIGEST = "duplicate"
#: Characters of digests the grader keeps for one notebook (honest ones need a few KiB).
DIGEST_BYTES = 16 * 2**20


class Recordings:
    """What the kernel recorded, moved out of its reach test cell by test cell.

    While a test cell runs, the kernel publishes the SHA-256 digests of each record
    it writes (:meth:`receive`, from :meth:`JudgedExecute.output`); :meth:`take`
    writes what arrived to ``private/digests/<name>.json``, out of the kernel's reach,
    where the judge checks the copied records against them
    (:func:`autograder.judge.record_problem`). Exactly one digest per record counts:
    a second one for the same record (output imitating the grader's) spoils it.
    """

    def __init__(self, workdir, private: Path, max_bytes: int, owner: int | None = None):
        """``workdir``: the kernel's working folder as the grader sees it, or a callable
        returning it (the sandbox's :meth:`~autograder.isolation.sandbox.core.Sandbox.view`)."""
        self._workdir = workdir
        self.private = private
        self.max_bytes = max_bytes
        self.owner = owner
        self.oversize: set[str] = set()
        #: name -> record index -> its files' digests, or DUPLICATE_DIGEST
        self.digests: dict[str, dict[int, dict | str]] = {}
        self._open: set[str] = set()  # names whose test cell is running
        self._digest_budget = DIGEST_BYTES  # characters of digests kept, all names together
        #: an error of the grader's own folders (disk full...): not the student's doing
        self.infrastructure: OSError | None = None

    @property
    def workdir(self) -> Path:
        return Path(self._workdir() if callable(self._workdir) else self._workdir)

    def _out_fd(self, create: bool) -> int | None:
        root = os.open(self.workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            base = _open_dir(root, WORKDIR_NAME, create)
            if base is None:
                return None
            try:
                return _open_dir(base, "out", create)
            finally:
                os.close(base)
        finally:
            os.close(root)

    def clear(self, name: str) -> None:
        """Before the test cell runs: no stale or planted results for ``name``."""
        try:
            out = self._out_fd(create=True)
        except OSError as exc:  # the sandbox is gone: the cell will not record anything
            log.debug("cannot clear the recordings of %s: %s", name, exc)
            out = None
        if out is not None:
            try:
                remove_tree(name, dir_fd=out)
                os.mkdir(name, 0o755, dir_fd=out)
                if self.owner is not None:
                    os.chown(name, self.owner, self.owner, dir_fd=out, follow_symlinks=False)
            except OSError as exc:
                log.warning("cannot clear the recordings of %s: %s", name, exc)
            finally:
                os.close(out)
        self._private(lambda: remove_tree(self.private / "out" / name))
        self.digests[name] = {}
        self._open.add(name)

    def receive(self, content) -> None:
        """A digest message from the kernel: ``{"name", "index", "files": {file: sha256}}``."""
        if not isinstance(content, dict):
            return
        name, index, files = content.get("name"), content.get("index"), content.get("files")
        if not isinstance(name, str) or name not in self._open or not isinstance(index, int) \
                or isinstance(index, bool) or not 0 <= index < 100_000 or self._digest_budget <= 0:
            return  # (past the budget, later records have no digest: refused)
        table = self.digests[name]
        if index in table:
            table[index] = DUPLICATE_DIGEST
        elif isinstance(files, dict) and 0 < len(files) <= 100_000 and all(
                isinstance(k, str) and _SAFE_NAME.match(k) and isinstance(v, str) and len(v) <= 128
                for k, v in files.items()):
            self._digest_budget -= sum(len(k) + len(v) for k, v in files.items())
            table[index] = dict(files)
        else:
            table[index] = DUPLICATE_DIGEST

    def _private(self, action) -> None:
        """Run ``action`` on the grader's own folder; its failure is the grader's."""
        try:
            left = action()
        except OSError as exc:
            self._failed(exc)
            return
        if left:
            self._failed(OSError(errno.EIO, f"could not remove {left[:3]}"))

    def _failed(self, exc: OSError) -> None:
        log.error("the grader's scratch folder failed: %s", exc)
        if self.infrastructure is None:
            self.infrastructure = exc

    def take(self, name: str) -> None:
        """After the test cell: copy plain files of ``name``'s results to the private folder."""
        dest = self.private / "out" / name
        self._private(lambda: remove_tree(dest))
        self._open.discard(name)
        digests = {str(i): entry for i, entry in self.digests.get(name, {}).items()}
        self._private(lambda: (self.private / "digests").mkdir(parents=True, exist_ok=True))
        self._private(lambda: (self.private / "digests" / f"{name}.json").write_text(
            json.dumps({"records": digests}), encoding="utf-8") and None)
        folder = self._kernel_folder(name)
        if folder is None:
            return
        try:
            dest.mkdir(parents=True)
        except OSError as exc:
            os.close(folder)
            self._failed(exc)
            return
        self._copy_records(name, folder, dest)
        # Taken: the kernel's copy goes (its tmpfs holds one test cell's recordings at a time).
        try:
            out = self._out_fd(create=False)
            if out is not None:
                try:
                    remove_tree(name, dir_fd=out)
                finally:
                    os.close(out)
        except OSError:
            pass
        if name in self.oversize or self.infrastructure is not None:
            remove_tree(dest)

    def _kernel_folder(self, name: str) -> int | None:
        """The kernel's folder of ``name``'s results, open (None when there is none)."""
        try:
            out = self._out_fd(create=False)
        except OSError as exc:  # the sandbox is gone (the kernel died): nothing recorded
            log.debug("cannot read the recordings of %s: %s", name, exc)
            return None
        if out is None:
            return None
        try:
            folder = _open_dir(out, name, create=False)
        except OSError:
            folder = None
        finally:
            os.close(out)
        return folder

    def _copy_records(self, name: str, folder: int, dest: Path) -> None:
        """Copy the regular files of the kernel's ``folder`` (closed here) to ``dest``, within
        :attr:`max_bytes` (past it, ``name`` is oversize)."""
        budget = self.max_bytes
        try:
            for entry in sorted(os.listdir(folder)):
                if not _SAFE_NAME.match(entry):
                    continue
                try:
                    fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
                except OSError:
                    continue
                try:
                    info = os.fstat(fd)
                    if not stat.S_ISREG(info.st_mode):
                        continue
                    if info.st_size > budget:
                        self.oversize.add(name)
                        break
                    budget -= info.st_size
                    if not self._copy_file(fd, dest / entry):
                        break
                finally:
                    os.close(fd)
        except OSError as exc:  # listing the kernel's folder failed: nothing more recorded
            log.debug("cannot read the recordings of %s: %s", name, exc)
        finally:
            os.close(folder)

    def _copy_file(self, fd: int, path: Path) -> bool:
        """Copy the open file ``fd`` to ``path``; False when ``path`` cannot be made (then copying stops)."""
        try:
            target = open(path, "wb")
        except OSError as exc:
            self._failed(exc)
            return False
        with target as f, os.fdopen(os.dup(fd), "rb") as src:
            while True:
                try:
                    chunk = src.read(1 << 20)
                except OSError:  # the kernel's side went away
                    break
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as exc:
                    self._failed(exc)
                    break
        return True


def release_cases(name: str, staged: Path, visible: Path) -> None:
    """Move problem ``name``'s requests and their arrays from ``staged`` to where the kernel reads them."""
    pattern = re.compile(rf"^{re.escape(name)}(\.json|_\d+\.npy)$")
    for entry in os.listdir(staged):
        if pattern.match(entry):
            os.rename(staged / entry, visible / entry)
