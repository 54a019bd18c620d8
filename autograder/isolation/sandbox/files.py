"""Files on their way into the sandbox, and out of the grader's scratch folder.

:func:`safe_copytree` copies the submission folder into the scratch folder (regular files
and folders only, code Python could import withheld); :func:`remove_tree` removes a tree
whatever the kernel left in it; :func:`tree_size` sizes the working folder's tmpfs.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path

from gradekit.capture import WORKDIR_NAME

from .limits import GiB

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

#: Files beside the notebook that Python or the kernel could run or import. They never
#: reach the working folder: only the code in the notebook's cells runs as the student's.
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyw", ".pyd", ".pyi", ".so", ".pth", ".egg-link", ".dylib", ".dll")
CODE_FILES = re.compile(r"^((ipython|jupyter)[A-Za-z0-9_-]*_config\.(py|json)|matplotlibrc|\.pythonrc.*)$")
CODE_DIRS = ("__pycache__", ".ipython", ".jupyter", ".config", ".local", ".ipynb_checkpoints")


def safe_copytree(src: Path, dest: Path, ignore=(".ipynb", ".unreadable", ".orig"), skip_dirs=(WORKDIR_NAME,),
                  max_bytes: int = 2 * GiB, max_depth: int = 32, max_entries: int = 100_000,
                  withheld: list[str] | None = None, withhold_code: bool = True) -> list[str]:
    """Copy regular files and folders only (no links, devices, fifos); returns what was skipped.

    Iterative (any depth of folders in the source is fine; copies stop at ``max_depth``
    and ``max_entries``). Code Python could import or the kernel could load at start-up
    (:data:`CODE_SUFFIXES`, :data:`CODE_FILES`, :data:`CODE_DIRS`) is left out and
    listed in ``withheld`` (relative paths) when given, unless ``withhold_code`` is false.
    """
    skipped: list[str] = []
    budget = max_bytes
    entries_left = max_entries
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stack = [(src, dest, 0)]
    while stack:
        folder, out, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            entries_left -= 1
            if entries_left < 0:
                skipped.append(f"{folder} (more than {max_entries} files)")
                stack.clear()
                break
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            rel = os.path.relpath(entry.path, src)
            if stat.S_ISDIR(mode):
                if entry.name in skip_dirs and depth == 0:
                    continue
                if withhold_code and entry.name in CODE_DIRS:
                    if withheld is not None:
                        withheld.append(rel + "/")
                    continue
                if depth + 1 >= max_depth:
                    skipped.append(f"{entry.path} (folders nested deeper than {max_depth})")
                    continue
                (out / entry.name).mkdir(exist_ok=True)
                stack.append((Path(entry.path), out / entry.name, depth + 1))
            elif stat.S_ISREG(mode):
                if entry.name.endswith(ignore) or (entry.name in skip_dirs and depth == 0):
                    continue
                if withhold_code and (entry.name.endswith(CODE_SUFFIXES) or CODE_FILES.match(entry.name)):
                    if withheld is not None:
                        withheld.append(rel)
                    continue
                size = entry.stat(follow_symlinks=False).st_size
                if size > budget:
                    skipped.append(entry.path)
                    continue
                budget -= size
                shutil.copyfile(entry.path, out / entry.name, follow_symlinks=False)
            else:
                skipped.append(entry.path)
    return skipped


def remove_tree(path, dir_fd: int | None = None) -> list[str]:
    """Remove ``path`` (relative to ``dir_fd`` when given) and everything under it.

    Unlike :func:`shutil.rmtree` it does not recurse (a chain of 100,000 folders is
    fine), never builds a path longer than one name (no ``ENAMETOOLONG``), never
    follows a symbolic link, and makes protected folders (``chmod 0``) writable
    before emptying them. It walks down with ``O_NOFOLLOW`` folder descriptors and
    back up through ``..``, checking that ``..`` is the folder it came from. Returns
    what it could not remove (empty when everything went); it raises only when the
    tree changed under it in a way that could make it leave ``path``.
    """
    if dir_fd is None:
        path = os.path.abspath(os.fspath(path))
        parent_path, name = os.path.split(path)
        try:
            parent = os.open(parent_path or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
    else:
        name = os.fspath(path)
        parent = os.dup(dir_fd)
    try:
        return _remove_under(parent, name)
    finally:
        os.close(parent)


def _remove_under(parent: int, name: str) -> list[str]:
    """:func:`remove_tree` of ``name`` in the open folder ``parent``: empties it folder by
    folder, from the deepest up, and removes it."""
    failed: list[str] = []
    fd = -1
    try:
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return []
        if not stat.S_ISDIR(info.st_mode):
            try:
                os.unlink(name, dir_fd=parent)
            except OSError as exc:
                failed.append(f"{name}: {exc.strerror}")
            return failed
        try:
            os.chmod(name, 0o700, dir_fd=parent)
        except OSError:
            pass
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            return [f"{name}: {exc.strerror}"]
        ids = [(os.fstat(fd).st_dev, os.fstat(fd).st_ino)]  # the folders from ``name`` down to fd
        names = [name]
        stuck: set[tuple[int, int]] = set()   # folders that could not be emptied
        while True:
            sub = _scan(fd, ids, names, stuck, failed)
            if sub is not None:
                child, again = _open_child(fd, sub, names, stuck, failed)
                if again:
                    continue
                if child is not None:
                    st = os.fstat(child)
                    ids.append((st.st_dev, st.st_ino))
                    names.append(sub)
                    os.close(fd)
                    fd = child
                    continue
            # ``fd`` holds nothing more that can be removed: remove it, one level up.
            if len(ids) == 1:
                os.close(fd)
                fd = -1
                try:
                    os.rmdir(name, dir_fd=parent)
                except OSError as exc:
                    failed.append(f"{name}: {exc.strerror}")
                return failed
            fd = _climb(fd, ids, names, stuck, failed)
    finally:
        if fd >= 0:
            os.close(fd)


def _scan(fd: int, ids: list, names: list[str], stuck: set, failed: list[str]) -> str | None:
    """Unlink everything in the folder ``fd`` that is not a folder; the name of a subfolder
    that is not stuck, if there is one."""
    sub = None
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if (st.st_dev, st.st_ino) not in stuck:
                        sub = entry.name
                        break
                    continue
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    key = (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
                    if key not in stuck:
                        failed.append(f"{'/'.join(names[-3:])}/{entry.name}: {exc.strerror}")
                    stuck.add(key)
    except OSError as exc:
        failed.append(f"{'/'.join(names[-3:])}: {exc.strerror}")
        stuck.add(ids[-1])
    return sub


def _open_child(fd: int, sub: str, names: list[str], stuck: set, failed: list[str]) -> tuple[int | None, bool]:
    """Open the subfolder ``sub`` of ``fd``, made writable first: ``(its descriptor, False)``.
    When it cannot be opened: ``(None, True)`` once it is marked stuck (look again), or
    ``(None, False)`` when it cannot even be told apart (give up on ``fd``)."""
    try:
        os.chmod(sub, 0o700, dir_fd=fd)  # a folder (checked above), not a link
    except OSError:
        pass
    try:
        return os.open(sub, _DIR_FLAGS, dir_fd=fd), False
    except OSError as exc:
        failed.append(f"{'/'.join(names[-3:])}/{sub}: {exc.strerror}")
        try:
            st = os.stat(sub, dir_fd=fd, follow_symlinks=False)
            stuck.add((st.st_dev, st.st_ino))
            return None, True
        except OSError:
            return None, False  # cannot tell it apart: give up on this folder


def _climb(fd: int, ids: list, names: list[str], stuck: set, failed: list[str]) -> int:
    """From the emptied folder ``fd`` (closed here) up to its parent (returned), checking that
    ``..`` is the folder it came from; the emptied folder is removed there."""
    up = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    st = os.fstat(up)
    if (st.st_dev, st.st_ino) != ids[-2]:
        os.close(up)
        raise OSError(errno.ESTALE, f"the tree under {names[0]} moved while it was being removed")
    os.close(fd)
    done = names.pop()
    gone = ids.pop()
    try:
        os.rmdir(done, dir_fd=up)
    except FileNotFoundError:
        pass
    except OSError as exc:
        failed.append(f"{'/'.join(names[-3:])}/{done}: {exc.strerror}")
        stuck.add(gone)
    return up


def tree_size(path) -> int:
    """Bytes of the regular files under ``path`` (iterative, links not followed)."""
    total, stack = 0, [os.fspath(path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                pass
    return total
