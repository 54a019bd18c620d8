"""Submitted files made gradable: damaged notebooks repaired or replaced, links removed.

:func:`prepare_submission`, nbgrader's ``Autograde.pre_convert_hook``: before a
student is graded, every submitted notebook is read. Symbolic links and special
files in the submission folder are removed (nbgrader would copy what they point
to into the grading folder). A notebook that can be repaired (bytes that are not
UTF-8, cells that break the schema, very large outputs) is rewritten, the
original kept next to it as ``<name>.ipynb.orig``. One that cannot be read at all
(empty, not JSON, not a notebook, too large) is moved aside as
``<name>.ipynb.unreadable`` and replaced by an empty notebook marked unreadable:
the student is graded, gets zero for every problem, and the feedback says why.
"""
from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from .cell_source import _text

log = logging.getLogger(__name__)

UNREADABLE_KEY = "gradekit_unreadable"
MAX_NOTEBOOK_BYTES = 256 * 2**20
STRIP_OUTPUTS_ABOVE = 16 * 2**20


def parse_notebook(raw: bytes):
    """``(notebook, problem, repaired)`` from a file's bytes.

    ``notebook`` is ``None`` when nothing can be graded (``problem`` says why);
    ``repaired`` lists what had to be fixed for it to be read.
    """
    repaired: list[str] = []
    if not raw.strip():
        return None, "the file is empty", repaired
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        repaired.append(f"bytes that are not UTF-8 (first at offset {exc.start}) were replaced")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"the file is not valid JSON ({exc.msg}, line {exc.lineno})", repaired
    except RecursionError:
        return None, "the file is not valid JSON (nested too deeply)", repaired
    if not isinstance(data, dict) or not ("cells" in data or "worksheets" in data):
        return None, "the file is JSON but not a notebook (no cells)", repaired
    major = data.get("nbformat")
    if major not in (3, 4):
        if "cells" in data and isinstance(data["cells"], list):
            data["nbformat"], data["nbformat_minor"] = 4, 5
            repaired.append(f"unsupported nbformat {major!r} read as version 4")
        else:
            return None, f"unsupported notebook format {major!r}", repaired
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
        nbformat.validate(nb)
        return nb, None, repaired
    except Exception as exc:  # noqa: BLE001  (schema errors, conversion errors)
        problem = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    cells = data.get("cells")
    if cells is None and isinstance(data.get("worksheets"), list):
        cells = [c for ws in data["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])]
    nb = _salvage(cells if isinstance(cells, list) else [])
    if nb is None:
        return None, f"the notebook is damaged beyond repair ({problem})", repaired
    repaired.append(f"cells that broke the notebook format were rebuilt ({problem})")
    return nb, None, repaired


def _salvage(cells: list):
    """A valid v4 notebook from whatever cell dictionaries are there (no outputs)."""
    new = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = _text(cell.get("source", cell.get("input", "")))
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        metadata = {k: v for k, v in metadata.items() if k == "nbgrader" and isinstance(v, dict)}
        kind = cell.get("cell_type")
        if kind == "code":
            new.append(new_code_cell(source, metadata=metadata))
        elif kind == "raw":
            new.append(new_raw_cell(source, metadata=metadata))
        else:
            new.append(new_markdown_cell(source, metadata=metadata))
    nb = new_notebook(cells=new)
    try:
        nbformat.validate(nb)
    except Exception:  # noqa: BLE001
        return None
    return nb


def unreadable_placeholder(reason: str):
    nb = new_notebook()
    nb.metadata[UNREADABLE_KEY] = reason
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _remove_links(folder: Path) -> list[str]:
    """Remove symbolic links and special files under ``folder`` (never following links)."""
    removed = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                try:
                    path.unlink()
                    removed.append(str(path.relative_to(folder)))
                except OSError:
                    pass
    return removed


def prepare_file(path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> str | None:
    """Repair or replace one submitted notebook in place; return what was done (or None)."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    repaired: list[str] = []
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        nb, problem = None, "the submitted notebook is a link or a special file, not a file"
    elif info.st_size > max_bytes:
        nb, problem = None, f"the file is larger than {max_bytes // 2**20} MiB ({info.st_size // 2**20} MiB)"
    else:
        raw = path.read_bytes()
        nb, problem, repaired = parse_notebook(raw)
        if nb is not None and info.st_size > STRIP_OUTPUTS_ABOVE:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
                cell.pop("attachments", None)
            repaired.append(f"outputs removed from a {info.st_size // 2**20} MiB notebook")
    if nb is None:
        aside = path.with_name(path.name + ".unreadable")
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
            path.unlink()
        else:
            os.replace(path, aside)
        nbformat.write(unreadable_placeholder(problem), path)
        return f"unreadable, graded as zero: {problem}"
    if repaired:
        os.replace(path, path.with_name(path.name + ".orig"))
        nbformat.write(nb, path)
        return "repaired: " + "; ".join(repaired)
    return None


def prepare_submission(assignment=None, student=None, notebooks=(), **_):
    """nbgrader ``pre_convert_hook``: repair or replace the notebooks about to be graded."""
    folders = {Path(p).parent for p in notebooks}
    for folder in folders:
        removed = _remove_links(folder)
        if removed:
            log.warning("%s: removed links and special files from the submission: %s", folder, removed)
    for nb_path in notebooks:
        try:
            done = prepare_file(Path(nb_path))
        except Exception as exc:  # noqa: BLE001  (never stop the class for one file)
            log.error("%s: could not check the notebook (%s)", nb_path, exc)
            continue
        if done:
            log.warning("%s: %s", nb_path, done)
