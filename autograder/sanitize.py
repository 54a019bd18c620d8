"""Make damaged submissions gradable, and find code that interferes with grading.

Three pieces, used by ``course/nbgrader_config.py``:

- :func:`prepare_submission`, nbgrader's ``Autograde.pre_convert_hook``: before a
  student is graded, every submitted notebook is read. Symbolic links and special
  files in the submission folder are removed (nbgrader would copy what they point
  to into the grading folder). A notebook that can be repaired (bytes that are not
  UTF-8, cells that break the schema, very large outputs) is rewritten, the
  original kept next to it as ``<name>.ipynb.orig``. One that cannot be read at all
  (empty, not JSON, not a notebook, too large) is moved aside as
  ``<name>.ipynb.unreadable`` and replaced by an empty notebook marked unreadable:
  the student is graded, gets zero for every problem, and the feedback says why.
- :class:`SanitizeCells`, first of ``Autograde.sanitize_preprocessors``: matches the
  notebook's cells with the gradebook by what is there. nbgrader metadata that is
  malformed or names an unknown cell is dropped; known cells get their metadata
  back; of duplicated graded cells the last one is kept (copies of test cells are
  removed); a test cell whose ``grade_id`` was changed is recognised by its
  ``gradekit.capture`` call; a missing test cell or locked cell is re-inserted from
  the gradebook (after the cell that defines its problem); a test cell that comes
  before the definition it tests is moved after it; student code typed into a test
  cell is kept in a cell of its own before it; the lines of a test cell merged into
  a student's cell are taken out of it (the test runs from its own cell, after the
  definitions kept there); statements that import or call ``gradekit`` in the
  student's own cells are removed (found with the parser: strings and docstrings
  stay). ``OverwriteCells`` then restores the source of every locked cell. What was
  changed goes to ``nb.metadata["gradekit_sanitize"]``, which the executor copies
  into each problem's feedback.
- :func:`integrity_findings`: a static scan of the student's code cells for the
  constructs that can reach the grader's machinery inside the kernel (frames and
  the garbage collector, ``ctypes``, ``importlib``/``eval``/computed ``getattr``,
  torch's dispatch internals, patching library attributes, processes and threads,
  IPython hooks and magics, tensor and array subclasses that run code when the
  grader reads a value...). The executor scores every problem of a notebook with
  such findings 0 and lists them. Cells identical to the instructor's own cells of
  the source notebook are not scanned.
"""
from __future__ import annotations

import ast
import functools
import json
import logging
import os
import re
import stat
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor

from .notebooks import CAPTURE_RE

log = logging.getLogger(__name__)

CAPTURE_LINE_RE = re.compile(r"^.*\bgradekit\b.*$", re.MULTILINE)
HIDDEN_BLOCK_RE = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)
UNREADABLE_KEY = "gradekit_unreadable"
SANITIZE_KEY = "gradekit_sanitize"
MAX_NOTEBOOK_BYTES = 256 * 2**20
STRIP_OUTPUTS_ABOVE = 16 * 2**20


# =========================================================================== files
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


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return ""


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


# =========================================================================== cells
def _nbgrader(cell) -> dict | None:
    md = cell.get("metadata")
    if not isinstance(md, dict):
        return None
    value = md.get("nbgrader")
    return value if isinstance(value, dict) else None


@functools.lru_cache(maxsize=4096)
def python_source(source: str) -> str:
    """The Python that IPython runs for a cell (magics and ``!`` lines transformed; cached: the
    sanitizer asks for every cell many times)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001
        return source


def defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(python_source(source))
    except (SyntaxError, ValueError):
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _definitions_in(source: str) -> str:
    """The top-level ``def``/``class`` statements (and imports) of ``source``, as text."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            segment = ast.get_source_segment(source, node, padded=False)
            if segment:
                start = node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno
                lines = source.splitlines()
                segment = "\n".join(lines[start - 1:node.end_lineno])
                parts.append(segment)
    return "\n\n".join(parts)


class SanitizeCells(NbGraderPreprocessor):
    """Match the submission's cells with the gradebook (see the module docstring)."""

    def preprocess(self, nb, resources):
        meta = resources["nbgrader"]
        try:
            with Gradebook(meta["db_url"]) as gb:
                known = self._known_cells(gb, meta["notebook"], meta["assignment"])
        except MissingEntry:
            return nb, resources
        source_order = self._source_order(meta)
        notes: list[str] = []
        self._normalise(nb, known, notes)
        self._deduplicate(nb, known, notes)
        self._reclaim(nb, known, notes)
        self._split_code_out_of_tests(nb, known, notes)
        self._take_out_merged_tests(nb, known, notes)
        self._strip_capture_calls(nb, known, notes)
        self._insert_missing(nb, known, source_order, notes)
        self._order_tests(nb, known, notes)
        for cell in nb.cells:
            md = _nbgrader(cell)
            if md and md.get("grade_id") in known:
                cell.metadata["nbgrader"] = self._canonical(known[md["grade_id"]], md)
        nb.metadata[SANITIZE_KEY] = {"notes": notes}
        for note in notes:
            self.log.warning("%s/%s: %s", meta.get("student"), meta.get("notebook"), note)
        return nb, resources

    # ------------------------------------------------------------------ gradebook
    @staticmethod
    def _known_cells(gb, notebook: str, assignment: str) -> dict[str, dict]:
        nb = gb.find_notebook(notebook, assignment)
        known: dict[str, dict] = {}
        for cell in nb.source_cells:
            known[cell.name] = {"name": cell.name, "cell_type": cell.cell_type, "locked": bool(cell.locked),
                                "source": cell.source or "", "grade": False, "solution": False,
                                "task": False, "points": None}
        for cell in nb.grade_cells:
            if cell.name in known:
                known[cell.name].update(grade=True, points=float(cell.max_score))
        for cell in nb.solution_cells:
            if cell.name in known:
                known[cell.name]["solution"] = True
        for cell in nb.task_cells:
            if cell.name in known:
                known[cell.name].update(task=True, points=float(cell.max_score))
        for info in known.values():
            info["test"] = info["grade"] and not info["solution"] and info["cell_type"] == "code"
            info["captures"] = CAPTURE_RE.findall(info["source"]) if info["test"] else []
        return known

    def _source_order(self, meta) -> list[str]:
        """grade_ids in the order of the instructor's source notebook (when it is there)."""
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(parent=self)
            path = Path(coursedir.format_path(coursedir.source_directory, ".", meta["assignment"])) \
                / f"{meta['notebook']}.ipynb"
            source = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001
            return []
        return [md["grade_id"] for c in source.cells if (md := _nbgrader(c)) and "grade_id" in md]

    @staticmethod
    def _canonical(info: dict, old: dict) -> dict:
        md = {"grade": info["grade"], "grade_id": info["name"], "locked": info["locked"],
              "schema_version": 3, "solution": info["solution"], "task": info["task"]}
        if info["grade"] or info["task"]:
            md["points"] = info["points"]
        if "checksum" in old:
            md["checksum"] = old["checksum"]
        return md

    # ------------------------------------------------------------------ steps
    def _normalise(self, nb, known, notes):
        for i, cell in enumerate(nb.cells):
            if not isinstance(cell.get("metadata"), dict):
                cell["metadata"] = nbformat.NotebookNode()
            if not isinstance(cell.get("source"), str):
                cell["source"] = _text(cell.get("source"))
            raw = cell.metadata.get("nbgrader", None)
            if raw is None:
                continue
            md = raw if isinstance(raw, dict) else None
            grade_id = md.get("grade_id") if md else None
            if not isinstance(grade_id, str) or grade_id not in known:
                del cell.metadata["nbgrader"]
                notes.append(f"cell {i + 1}: nbgrader metadata {'for unknown cell ' + repr(grade_id) if md else 'that was not valid'} removed")

    def _deduplicate(self, nb, known, notes):
        last: dict[str, int] = {}
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if md:
                last[md["grade_id"]] = i
        keep = []
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if md and last[md["grade_id"]] != i:
                gid = md["grade_id"]
                if known[gid]["test"]:
                    notes.append(f"a copy of the test cell {gid} was removed")
                    continue
                del cell.metadata["nbgrader"]
                notes.append(f"cell {gid} appears more than once: the last copy is the graded one")
            keep.append(cell)
        nb.cells = keep

    def _reclaim(self, nb, known, notes):
        """Test cells whose grade_id was changed or removed: recognise them by their capture."""
        present = {md["grade_id"] for c in nb.cells if (md := _nbgrader(c))}
        for gid, info in known.items():
            if not info["test"] or gid in present or not info["captures"]:
                continue
            visible = HIDDEN_BLOCK_RE.sub("", info["source"]).strip()
            for cell in reversed(nb.cells):
                if cell.cell_type != "code" or _nbgrader(cell):
                    continue
                names = CAPTURE_RE.findall(cell.source)
                if (names and set(names) == set(info["captures"])) or (visible and cell.source.strip() == visible):
                    cell.metadata["nbgrader"] = self._canonical(info, {})
                    present.add(gid)
                    notes.append(f"the test cell {gid} had lost its grading metadata: restored")
                    break

    def _split_code_out_of_tests(self, nb, known, notes):
        """Definitions typed into a (locked) test cell survive in a cell of their own."""
        cells = []
        for cell in nb.cells:
            md = _nbgrader(cell)
            if md and known[md["grade_id"]]["test"] and cell.source.strip() != known[md["grade_id"]]["source"].strip():
                reference = known[md["grade_id"]]["source"]
                extra = _definitions_in(cell.source)
                if extra and extra.strip() not in reference:
                    extra = "\n".join(line for line in extra.splitlines() if "gradekit" not in line)
                    cells.append(new_code_cell(extra))
                    notes.append(f"code you typed into the test cell {md['grade_id']} was moved to a cell of its own before it")
            cells.append(cell)
        nb.cells = cells

    def _take_out_merged_tests(self, nb, known, notes):
        """A test cell merged into one of the student's cells: its lines are taken out.

        The test itself runs from its own (restored) cell after the definitions; left
        in the student's cell, its visible checks (which may call the very built-in the
        student must not use) would count as the student's code.
        """
        tests = []
        for info in known.values():
            if not info["test"]:
                continue
            # The whole test (hidden part included), else its visible part when that is
            # specific enough (two lines of code or more) not to match ordinary code.
            for block, least in ((info["source"], 1), (HIDDEN_BLOCK_RE.sub("", info["source"]), 2)):
                lines = [line.rstrip() for line in block.strip("\n").splitlines()]
                while lines and not lines[-1].strip():
                    lines.pop()
                if sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#")) >= least:
                    tests.append((info["name"], lines))
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if cell.cell_type != "code" or (md and known[md["grade_id"]]["test"]):
                continue
            for gid, block in tests:
                lines = cell.source.splitlines()
                stripped = [line.rstrip() for line in lines]
                at = _find_run(stripped, block)
                if at is None:
                    continue
                cell.source = "\n".join(lines[:at] + lines[at + len(block):]).strip("\n") + "\n"
                notes.append(f"cell {i + 1}: the test cell {gid} had been merged into it: the test's lines "
                             "were taken out (the test runs from its own cell)")

    def _strip_capture_calls(self, nb, known, notes):
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if cell.cell_type != "code" or (md and known[md["grade_id"]]["test"]):
                continue
            if "gradekit" not in cell.source and "BEGIN HIDDEN TESTS" not in cell.source:
                continue
            source = HIDDEN_BLOCK_RE.sub("", cell.source)
            source = strip_gradekit_statements(source)
            if source != cell.source:
                cell.source = source
                notes.append(f"cell {i + 1}: lines that call the grader (gradekit) were removed from your own cell")

    def _insert_missing(self, nb, known, source_order, notes):
        present = {md["grade_id"] for c in nb.cells if (md := _nbgrader(c))}
        order = source_order or list(known)
        for gid in order:
            info = known.get(gid)
            if info is None or gid in present or not (info["test"] or info["locked"]) or info["solution"]:
                continue
            cell = (new_code_cell if info["cell_type"] == "code" else new_markdown_cell)(info["source"])
            cell.metadata["nbgrader"] = self._canonical(info, {})
            index = self._insert_index(nb, info, order, present)
            nb.cells.insert(index, cell)
            present.add(gid)
            what = "test cell" if info["test"] else "locked cell"
            notes.append(f"the {what} {gid} was missing from the notebook: it was put back")

    @staticmethod
    def _insert_index(nb, info, order, present) -> int:
        if info["test"]:
            defining = [i for i, c in enumerate(nb.cells)
                        if c.cell_type == "code" and defined_names(c.source) & set(info["captures"])]
            if defining:
                return defining[-1] + 1
        if info["name"] in order:
            before = order[:order.index(info["name"])]
            for prev in reversed(before):
                if prev in present:
                    for i, c in enumerate(nb.cells):
                        md = _nbgrader(c)
                        if md and md.get("grade_id") == prev:
                            return i + 1
            if not info["test"]:
                return 0
        return len(nb.cells)

    def _order_tests(self, nb, known, notes):
        """A test cell runs after the last cell that defines what it tests."""
        moved = True
        guard = 0
        while moved and guard < len(nb.cells) + 5:
            moved, guard = False, guard + 1
            for i, cell in enumerate(nb.cells):
                md = _nbgrader(cell)
                if not md or not known[md["grade_id"]]["test"]:
                    continue
                wanted = set(known[md["grade_id"]]["captures"])
                defining = [j for j, c in enumerate(nb.cells)
                            if c.cell_type == "code" and not _nbgrader_test(c, known) and defined_names(c.source) & wanted]
                if defining and defining[-1] > i:
                    nb.cells.insert(defining[-1], nb.cells.pop(i))
                    notes.append(f"the test cell {md['grade_id']} came before the code it tests: it now runs after it")
                    moved = True
                    break


def _mentions_gradekit(node) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == "gradekit":
            return True
        if isinstance(sub, ast.Import) and any(a.name.split(".")[0] == "gradekit" for a in sub.names):
            return True
        if isinstance(sub, ast.ImportFrom) and (sub.module or "").split(".")[0] == "gradekit" and not sub.level:
            return True
    return False


def strip_gradekit_statements(source: str) -> str:
    """``source`` without the statements that import or call gradekit.

    Statements are found with the parser, so a docstring or a string that mentions
    gradekit stays (and the code stays valid); a removed statement inside a block
    becomes ``pass``. Code that does not parse loses every line naming gradekit.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return CAPTURE_LINE_RE.sub("", source)
    drop: dict[int, int] = {}  # first line -> last line of each removed statement
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not hasattr(node, "body") and _mentions_gradekit(node):
            drop[node.lineno] = max(drop.get(node.lineno, 0), node.end_lineno or node.lineno)
    if not drop:
        return source
    lines = source.splitlines(keepends=True)
    out, skip_to = [], 0
    for number, line in enumerate(lines, start=1):
        if number <= skip_to:
            continue
        if number in drop:
            skip_to = drop[number]
            indent = line[:len(line) - len(line.lstrip())]
            if indent:  # inside a block: keep it a valid block
                out.append(f"{indent}pass\n")
            continue
        out.append(line)
    return "".join(out)


def _find_run(lines: list[str], block: list[str]) -> int | None:
    """Index where ``block`` occurs as consecutive lines of ``lines`` (or None)."""
    n = len(block)
    if not n or n > len(lines):
        return None
    for start in range(len(lines) - n + 1):
        if lines[start:start + n] == block:
            return start
    return None


def _nbgrader_test(cell, known) -> bool:
    md = _nbgrader(cell)
    return bool(md and known.get(md.get("grade_id"), {}).get("test"))


# =========================================================================== integrity
#: Modules whose import or use is a finding, with what they would allow.
FORBIDDEN_MODULES = {
    "gradekit": "the grader's own module", "ctypes": "raw memory access", "_ctypes": "raw memory access",
    "cffi": "raw memory access", "importlib": "dynamic imports", "imp": "dynamic imports",
    "builtins": "the built-in namespace", "__builtin__": "the built-in namespace",
    "subprocess": "other processes", "_posixsubprocess": "other processes", "multiprocessing": "other processes",
    "pty": "other processes", "pexpect": "other processes", "threading": "background threads",
    "_thread": "background threads", "concurrent": "background workers", "asyncio": "background tasks",
    "signal": "signal handlers", "atexit": "exit hooks", "weakref": "finalizers", "marshal": "code objects",
    "code": "an interpreter", "codeop": "an interpreter", "runpy": "running modules", "site": "start-up hooks",
    "zipimport": "dynamic imports", "pkgutil": "dynamic imports", "sys.monitoring": "tracing",
    "pickle": "code run from bytes", "_pickle": "code run from bytes", "cPickle": "code run from bytes",
    "copyreg": "code run from bytes", "shelve": "code run from bytes", "dill": "code run from bytes",
    "cloudpickle": "code run from bytes", "joblib": "code run from bytes", "torch.package": "code run from bytes",
    "torch.jit": "TorchScript (code compiled from strings)", "torch.hub": "code fetched at run time",
    "operator.attrgetter": "attributes reached by computed names",
    "operator.methodcaller": "methods reached by computed names",
}
#: Attributes of modules (by full dotted path) that are findings.
FORBIDDEN_MODULE_ATTRS = {
    "sys": {"_getframe", "modules", "settrace", "setprofile", "gettrace", "getprofile", "excepthook", "displayhook", "addaudithook",
            "meta_path", "path_hooks", "path_importer_cache", "_current_frames", "call_tracing", "monitoring",
            "breakpointhook", "unraisablehook"},
    "gc": {"get_objects", "get_referrers", "get_referents", "callbacks", "garbage", "freeze"},
    "inspect": {"currentframe", "stack", "trace", "getouterframes", "getinnerframes", "getframeinfo",
                "getmembers", "getmembers_static", "getattr_static", "getclosurevars"},
    "os": {"fork", "forkpty", "system", "popen", "execv", "execve", "execl", "execle", "execlp", "execlpe",
           "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
           "spawnvpe", "posix_spawn", "posix_spawnp", "kill", "killpg", "_exit", "setsid", "setpgid",
           "setpgrp", "setuid", "seteuid", "setgid", "chroot", "register_at_fork", "pidfd_open"},
    "types": {"FunctionType", "CodeType", "ModuleType", "LambdaType", "MethodType", "FrameType"},
    "torch": {"_C", "overrides", "_dynamo", "compile", "library", "_ops", "_guards", "_inductor", "_functorch",
              "_subclasses", "_prims", "_refs", "_decomp", "_tensor", "_utils_internal"},
    "torch.utils": {"_python_dispatch", "_mode_utils"},
    "torch.nn.functional": {"handle_torch_function", "has_torch_function"},
    "IPython": {"get_ipython", "core"},
    "numpy": {"ctypeslib"},
}
#: Attribute names that are findings on any object.
FORBIDDEN_ATTRS = {
    "__dict__", "__globals__", "__code__", "__closure__", "__builtins__", "__subclasses__", "__bases__",
    "__base__", "__mro__", "__getattribute__", "__import__", "__loader__", "__spec__", "__self__", "__func__",
    "__defaults__", "__kwdefaults__", "__traceback__", "__setattr__", "__delattr__", "__reduce_ex__",
    "tb_frame", "tb_next", "f_back", "f_locals", "f_globals", "f_builtins", "f_code", "gi_frame", "cr_frame",
    "ag_frame", "gi_code", "co_code", "showtraceback", "showsyntaxerror", "excepthook", "_getframe",
    "settrace", "setprofile", "DisableTorchFunction", "DisableTorchFunctionSubclass", "_DisableTorchDispatch",
    "_disable_current_modes", "_disable_torch_function", "TorchFunctionMode", "TorchDispatchMode",
    "_make_subclass", "_make_wrapper_subclass", "as_subclass", "_set_torch_function_mode", "_push_mode",
    "_pop_mode", "_get_current_dispatch_mode", "_unset_dispatch_mode", "_set_dispatch_mode",
    "_python_dispatch", "get_ipython", "run_line_magic", "run_cell_magic", "register_at_fork",
    "_exit", "_C",
}
#: Built-in names that are findings when used at all.
FORBIDDEN_NAMES = {
    "eval": "eval()", "exec": "exec()", "compile": "compile()", "__import__": "__import__()",
    "globals": "globals()", "locals": "locals()", "vars": "vars()", "breakpoint": "breakpoint()",
    "get_ipython": "IPython's shell object", "__builtins__": "the built-in namespace",
    "__loader__": "the module loader", "__spec__": "the module spec", "gradekit": "the grader's own module",
}
#: Methods a student class may not define (they run when the grader reads values).
FORBIDDEN_METHODS = {
    "__del__", "__getattribute__", "__torch_function__", "__torch_dispatch__", "__array__",
    "__array_function__", "__array_ufunc__", "__array_finalize__", "__array_wrap__", "__array_interface__",
    "__array_priority__", "__array_struct__", "__instancecheck__", "__subclasscheck__", "__init_subclass__",
    "__reduce__", "__reduce_ex__", "__set_name__",
}
#: Base classes a student class may not have (the grader reads such values as plain data).
FORBIDDEN_BASES = {
    "Tensor", "Parameter", "ndarray", "int", "float", "complex", "bool", "str", "bytes", "list", "tuple",
    "dict", "set", "frozenset", "type", "ModuleType", "TorchFunctionMode", "TorchDispatchMode",
}
#: Library attributes students may set.
ALLOWED_ASSIGN_PREFIXES = ("torch.backends.", "matplotlib.rcParams", "matplotlib.pyplot.rcParams",
                           "pandas.options.")
#: IPython magics students may use.
ALLOWED_MAGICS = {"matplotlib", "time", "timeit", "precision", "pinfo", "pinfo2", "psearch", "who", "whos",
                  "pprint", "capture", "config_inline"}
#: Strings that are findings when they appear in a string constant.
FORBIDDEN_STRINGS = ("gradekit", "DisableTorch", "_disable_current_modes", "_python_dispatch", "_getframe",
                     "__globals__", "__builtins__", "__subclasses__", "f_locals", "f_back", "showtraceback")


def _const_str(node, depth: int = 0) -> str | None:
    """The value of a string expression built from constants only (``"grade" + "kit"``,
    ``f"{'grade'}kit"``, ``"".join(["grade", "kit"])``), else None."""
    if depth > 50:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left, depth + 1), _const_str(node.right, depth + 1)
        return None if left is None or right is None or len(left) + len(right) > 10000 else left + right
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            inner = value.value if isinstance(value, ast.FormattedValue) else value
            if isinstance(value, ast.FormattedValue) and (value.conversion != -1 or value.format_spec):
                return None
            text = _const_str(inner, depth + 1)
            if text is None:
                return None
            parts.append(text)
        return "".join(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], (ast.List, ast.Tuple)):
        sep = _const_str(node.func.value, depth + 1)
        parts = [_const_str(e, depth + 1) for e in node.args[0].elts]
        if sep is None or any(p is None for p in parts):
            return None
        return sep.join(parts)
    return None


def _imported_name(node) -> str | None:
    """``importlib.import_module("x.y")`` / ``import_module(...)`` / ``__import__("x.y", fromlist=...)``
    with a constant (or constant-built) name: the module it returns."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__"):
        return None
    module = _const_str(node.args[0])
    if not module:
        return None
    if name == "__import__":
        fromlist = node.args[3] if len(node.args) > 3 else next(
            (k.value for k in node.keywords if k.arg == "fromlist"), None)
        if fromlist is None or (isinstance(fromlist, (ast.List, ast.Tuple)) and not fromlist.elts):
            return module.split(".")[0]
    return module


def _dotted(node) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str], findings: list[str], where: str):
        self.aliases = aliases
        self.findings = findings
        self.where = where
        self.allowed_calls: set[int] = set()
        self.allowed_names: set[int] = set()

    def flag(self, node, what: str) -> None:
        line = getattr(node, "lineno", None)
        text = f"{self.where}{f', line {line}' if line else ''}: {what}"
        if text not in self.findings:
            self.findings.append(text)

    def resolve(self, parts: list[str]) -> str:
        head = self.aliases.get(parts[0], parts[0])
        return ".".join([head] + parts[1:])

    def check_path(self, node, path: str) -> None:
        for module, why in FORBIDDEN_MODULES.items():
            if path == module or path.startswith(module + "."):
                self.flag(node, f"uses {module} ({why})")
                return
        for module, attrs in FORBIDDEN_MODULE_ATTRS.items():
            if path.startswith(module + "."):
                rest = path[len(module) + 1:].split(".")[0]
                if rest in attrs:
                    self.flag(node, f"uses {module}.{rest}")
                    return

    # ---------------------------------------------------------------- visitors
    def visit_Import(self, node):
        for alias in node.names:
            self.check_path(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        module = ("." * node.level) + (node.module or "")
        self.check_path(node, module)
        for alias in node.names:
            if alias.name == "*":
                continue
            self.check_path(node, f"{module}.{alias.name}")
            if alias.name in FORBIDDEN_ATTRS:
                self.flag(node, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_Name(self, node):
        if id(node) not in self.allowed_names:
            if node.id in FORBIDDEN_NAMES:
                self.flag(node, f"uses {FORBIDDEN_NAMES[node.id]}")
            elif node.id in ("getattr", "setattr", "delattr", "hasattr") and id(node) not in self.allowed_calls:
                self.flag(node, f"uses {node.id} in a way the grader cannot check (a computed attribute name)")
            elif node.id in self.aliases:
                self.check_path(node, self.aliases[node.id])

    def visit_Attribute(self, node):
        if node.attr in FORBIDDEN_ATTRS:
            self.flag(node, f"uses the attribute {node.attr}")
        parts = _dotted(node)
        if parts and parts[0] in self.aliases:
            self.check_path(node, self.resolve(parts))
        self.generic_visit(node)

    def _built_string(self, node, built):
        """Flag a string built from pieces that names the grader's internals."""
        for text in FORBIDDEN_STRINGS if built is not None else ():
            if text in built:
                self.flag(node, f"builds the string {text!r} (the grader's internals)")
                return
        self.generic_visit(node)

    def visit_BinOp(self, node):
        self._built_string(node, _const_str(node) if isinstance(node.op, ast.Add) else None)

    def visit_JoinedStr(self, node):
        self._built_string(node, _const_str(node))

    def visit_Constant(self, node):
        if isinstance(node.value, str) and len(node.value) < 10000:
            for text in FORBIDDEN_STRINGS:
                if text in node.value:
                    self.flag(node, f"has the string {text!r} (the grader's internals)")
                    break

    def _allowed_magic(self, node) -> bool:
        """``get_ipython().run_line_magic('time', ...)`` for an allowed magic."""
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic")
                and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "get_ipython" and node.args
                and isinstance(node.args[0], ast.Constant)):
            return False
        if node.args[0].value not in ALLOWED_MAGICS:
            self.flag(node, f"uses the IPython magic %{node.args[0].value}")
            return True  # flagged once, not again as get_ipython
        if func.attr == "run_cell_magic" and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
            body = node.args[2].value
            if isinstance(body, str):
                scan_source(body, self.aliases, self.findings, self.where)
        return True

    def visit_Call(self, node):
        func = node.func
        if self._allowed_magic(node):
            self.allowed_names.add(id(func.value.func))
            self.allowed_calls.add(id(func.value.func))
            for arg in node.args[1:2]:
                self.visit(arg)
            return
        if isinstance(func, ast.Attribute) and func.attr == "system" and isinstance(func.value, ast.Call) \
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython":
            self.flag(node, "runs a shell command (!)")
            self.allowed_names.add(id(func.value.func))
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "delattr", "hasattr"):
            name_ok = len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
            on_self = bool(node.args) and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"
            if name_ok or on_self:
                self.allowed_calls.add(id(func))
            if name_ok and node.args[1].value in FORBIDDEN_ATTRS:
                self.flag(node, f"uses the attribute {node.args[1].value}")
            if name_ok and node.args:
                parts = _dotted(node.args[0])
                if parts and parts[0] in self.aliases:
                    self.check_path(node, self.resolve(parts) + "." + node.args[1].value)
            if func.id in ("setattr", "delattr") and node.args:
                parts = _dotted(node.args[0])
                if parts and parts[0] in self.aliases:
                    self.flag(node, f"changes an attribute of {self.resolve(parts)} (patches a library)")
        self.generic_visit(node)

    def _check_target(self, target) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_target(element)
        elif isinstance(target, ast.Starred):
            self._check_target(target.value)
        elif isinstance(target, ast.Attribute):
            parts = _dotted(target)
            if parts and parts[0] in self.aliases and len(parts) > 1:
                path = self.resolve(parts)
                if not path.startswith(ALLOWED_ASSIGN_PREFIXES):
                    self.flag(target, f"assigns to {path} (patches a library)")

    def visit_Assign(self, node):
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        for base in node.bases:
            parts = _dotted(base)
            if parts and parts[-1] in FORBIDDEN_BASES:
                self.flag(node, f"class {node.name} subclasses {parts[-1]} (the grader reads values as plain data)")
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self.flag(node, f"class {node.name} has a metaclass")
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in FORBIDDEN_METHODS:
                self.flag(item, f"class {node.name} defines {item.name}")
            if isinstance(item, ast.Assign):
                for target in item.targets:
                    if isinstance(target, ast.Name) and target.id in FORBIDDEN_METHODS:
                        self.flag(item, f"class {node.name} defines {target.id}")
        self.generic_visit(node)


def collect_aliases(sources: list[str]) -> dict[str, str]:
    """Names bound by imports in ``sources`` -> what they refer to (dotted path)."""
    aliases: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(python_source(source))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        aliases[head] = head
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                # m = importlib.import_module("pkg.mod"): m names that module.
                module = _imported_name(node.value)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if module:
                    for target in targets:
                        if isinstance(target, ast.Name):
                            aliases[target.id] = module
    # Well-known modules are modules whatever the student calls them.
    for name in ("sys", "os", "gc", "inspect", "torch", "numpy", "types", "builtins"):
        aliases.setdefault(name, name)
    return aliases


def scan_source(source: str, aliases: dict[str, str], findings: list[str], where: str) -> None:
    code = python_source(source)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return  # IPython cannot run it either
    try:
        _Scanner(aliases, findings, where).visit(tree)
    except RecursionError:
        findings.append(f"{where}: code nested too deeply to check")


def integrity_findings(cells: list[tuple[str, str]], context: list[str] = ()) -> list[str]:
    """Findings for ``cells`` (``(where, source)`` pairs); ``context``: other cells
    (instructor-provided) whose imports define names used in ``cells``."""
    aliases = collect_aliases(list(context) + [source for _, source in cells])
    findings: list[str] = []
    for where, source in cells:
        scan_source(source, aliases, findings, where)
    return findings
