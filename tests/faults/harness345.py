"""Subset courses of weeks 3, 4 and 5 and the corpus of ``tests/cheats_w345/``, graded through
stock ``nbgrader autograde`` with the course's sandboxed judge (``course/nbgrader_config.py``).

A subset course holds one assignment under its real name (so the registry finds its hidden
checks) with only a few of that week's problems: the real source notebook's set-up cell and,
for each problem of :data:`WEEKS`, its solution cell and its test cell. Each week keeps a
problem with a training smoke test (week 3 ``BasicBlock``, week 4 ``UNet``, week 5
``distillation_loss``, and ``rotate`` and ``freeze``), which class 4 attacks.

A corpus file (``tests/cheats_w345/<name>.py``) is a header docstring then code:

- its name says its role and week: ``w<week>_c<class>_*.py`` an attack of one class of
  issue 20, ``honest_w<week>_*.py`` an honest alternative, ``control_w<week>_*.py`` the same
  work as some attack without its trick;
- an attack's docstring holds ``class: <n>`` and ``control: <corpus file stem>`` or
  ``control: blank``: what it is graded against. ``blank`` is the same notebook without the
  attack (the reference, the attacked problems left as the release's stubs), scored from the
  ``full`` and ``blank`` submissions (:func:`control_scores`). ``submits: release selfcheck
  as <folder>`` puts a copy of the release's self-check folder beside the notebook under that
  name (what a student's submission of the release holds);
- the code goes into the solution cells of the graded names it defines (every other
  solution cell keeps the reference): ``# --- cell: <name> ---`` lines split it into the
  cells of those names (text before the first such line opens the first of them); without
  them the whole text goes into the cell, first in the notebook, of a graded name it defines
  and the other names it defines become "defined in an earlier cell". A line
  ``# --- reference: <name> ---`` stands for the reference definition of ``name`` (a cell
  that keeps it and does not define the name again only carries helper code: the problem is
  not one the file attacks). ``# --- submitted file: NAME ---`` starts a file submitted
  beside the notebook (to the next such line). The docstring never reaches the notebook.
"""
from __future__ import annotations

import ast
import copy
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell, new_notebook

from autograder import COURSE_ID
from autograder.notebooks import fill, reference_definitions, source_notebook

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "cheats_w345"


@dataclass(frozen=True)
class Week:
    number: int
    assignment: str
    problems: tuple[str, ...]  # in notebook order


WEEKS = {
    3: Week(3, "w3_architectures", ("BasicBlock", "Bottleneck", "resnet", "DenseLayer", "deform_conv2d")),
    4: Week(4, "w4_segmentation", ("convolutionalize", "conv_transpose2d", "center_crop", "UNet",
                                   "DepthwiseSeparableConv", "ASPP")),
    5: Week(5, "w5_augmentation_transfer", ("hflip", "adjust_brightness", "adjust_contrast", "rotate", "freeze",
                                            "distillation_loss")),
}

#: Limits of the subset courses: the course's own, with room for the smoke tests on a loaded
#: 2-core machine (the U-Net's takes about 26 s of one core).
CONFIG = """
c.JudgedExecute.timeout = 400
c.JudgedExecute.code_cell_timeout = 60
c.JudgedExecute.notebook_timeout = 1200
c.JudgedExecute.memory_limit = 4 * 2**30
"""


# ----------------------------------------------------------------------------- the subset course
def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def subset_notebook(week: Week):
    """The source notebook of ``week`` cut down to its set-up cell and the solution and test
    cells of ``week.problems`` (each after a heading naming it)."""
    nb = nbformat.read(source_notebook(week.assignment), as_version=4)
    by_id = {_grade_id(c): c for c in nb.cells if _grade_id(c)}
    missing = [f"{kind}_{p}" for p in week.problems for kind in ("impl", "test") if f"{kind}_{p}" not in by_id]
    if missing or "setup" not in by_id:
        raise KeyError(f"{week.assignment}: no cells {missing or ['setup']}")
    cells = [new_markdown_cell(f"# Week {week.number} (test subset)"), copy.deepcopy(by_id["setup"])]
    for name in week.problems:
        cells += [new_markdown_cell(f"## {name}"), copy.deepcopy(by_id[f"impl_{name}"]),
                  copy.deepcopy(by_id[f"test_{name}"])]
    out = new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    return out


def points(week: Week) -> dict[str, float]:
    nb = subset_notebook(week)
    return {_grade_id(c).removeprefix("test_"): float(c.metadata["nbgrader"]["points"])
            for c in nb.cells if (_grade_id(c) or "").startswith("test_")}


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    e.setdefault("PYTHONUNBUFFERED", "1")
    return e


def nbgrader(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env(), capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def make_course(root: Path, week: Week, seed: int | None = None, selfcheck: bool = True,
                extra_config: str = "") -> Path:
    """``root`` as a course holding the subset of ``week``, generated; ``selfcheck``: with the
    release's self-check folder (minutes of the reference's work for a whole week, then copied
    beside every graded notebook: left out where no attack reads it)."""
    root.mkdir(parents=True, exist_ok=True)
    config = (REPO / "course" / "nbgrader_config.py").read_text()
    settings = CONFIG + (f"c.JudgedExecute.seed = {int(seed)}\n" if seed is not None else "") + \
        ("" if selfcheck else "c.GenerateAssignment.pre_convert_hook = None\n") + extra_config
    (root / "nbgrader_config.py").write_text(config + "\n# test settings\n" + settings)
    src = root / "source" / week.assignment
    src.mkdir(parents=True)
    nbformat.write(subset_notebook(week), src / f"{week.assignment}.ipynb")
    nbgrader(root, "generate_assignment", week.assignment, "--force")
    return root


def release(root: Path, week: Week):
    return nbformat.read(root / "release" / week.assignment / f"{week.assignment}.ipynb", as_version=4)


def filled(root: Path, week: Week, implementations: dict[str, str]):
    return fill(copy.deepcopy(release(root, week)), implementations)


def reference(week: Week) -> dict[str, str]:
    """The reference definitions of ``week``'s problems (graded name -> source)."""
    return dict(_reference(week.assignment, week.problems))


@functools.lru_cache(maxsize=None)
def _reference(assignment: str, problems: tuple[str, ...]) -> tuple:
    refs = reference_definitions(assignment)
    return tuple((n, refs[n]) for n in problems)


def submit(root: Path, week: Week, student: str, nb, files: dict | None = None,
           folders: dict[str, Path] | None = None) -> Path:
    dest = root / "submitted" / student / week.assignment
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{week.assignment}.ipynb"
    nbformat.write(nb, path)
    for name, data in (files or {}).items():
        (dest / name).write_bytes(data)
    for name, folder in (folders or {}).items():
        shutil.copytree(folder, dest / name)
    return path


def gradebook(root: Path, week: Week) -> dict[str, dict[str, float] | None]:
    """student -> {problem: score} (None: no submission recorded)."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission_notebook(week.assignment, week.assignment, student.id)
            except Exception:  # noqa: BLE001  (no submission)
                out[student.id] = None
                continue
            out[student.id] = {g.name.removeprefix("test_"): g.score for g in sub.grades}
    return out


def report(root: Path, week: Week, student: str) -> dict:
    path = root / "autograded" / student / week.assignment / f"{week.assignment}.ipynb"
    if not path.exists():
        return {}
    return nbformat.read(path, as_version=4).metadata.get("gradekit", {})


# ----------------------------------------------------------------------------- the corpus
_NAME = re.compile(r"^(?:(?P<role>honest|control)_)?w(?P<week>[345])_(?:c(?P<klass>[1-6])_)?[a-z0-9_]+$")
_CELL = re.compile(r"^# --- cell: ([A-Za-z0-9_]+) ---$", re.M)
_FILE = re.compile(r"^# --- submitted file: ([A-Za-z0-9_.-]+) ---$", re.M)
_REFERENCE = re.compile(r"^# --- reference: ([A-Za-z0-9_]+) ---$", re.M)
_PACK = re.compile(r"^submits: release selfcheck as ([A-Za-z0-9_.-]+)\s*$", re.M)


@dataclass
class Entry:
    """One corpus file, parsed."""
    path: Path
    stem: str
    role: str  # "attack", "honest" or "control"
    week: Week
    klass: int | None  # issue 20's class of an attack
    control: str | None  # "blank" or a corpus file's stem (attacks)
    summary: str
    cells: dict[str, str]  # graded name -> the solution cell's text ("" marks "defined earlier")
    files: dict[str, bytes] = field(default_factory=dict)
    pack_as: str | None = None  # the release's self-check folder submitted under this name

    @property
    def student(self) -> str:
        return self.stem

    @property
    def targets(self) -> tuple[str, ...]:
        """The graded names whose solution cells it writes."""
        return tuple(n for n in self.week.problems if n in self.cells)

    @property
    def attacked(self) -> tuple[str, ...]:
        """Its targets but those whose cell keeps their own reference and does not define them
        again (a cell that only carries helper code beside the reference definition)."""
        return tuple(n for n in self.targets if f"# --- reference: {n} ---" not in self.cells[n]
                     or n in _top_bound(_REFERENCE.sub("", self.cells[n])))


def _top_bound(source: str) -> list[str]:
    """Names a source binds at top level (def, class, assignment), in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def _without_docstring(text: str) -> tuple[str, str]:
    """(docstring, the rest of the text) of a corpus file."""
    tree = ast.parse(text)
    doc = ast.get_docstring(tree, clean=True)
    if doc is None:
        raise ValueError("a corpus file starts with a docstring saying what it is")
    end = tree.body[0].end_lineno
    return doc, "\n".join(text.splitlines()[end:]).lstrip("\n")


def load(path: Path) -> Entry:
    match = _NAME.match(path.stem)
    if not match:
        raise ValueError(f"{path.name}: not named w<week>_c<class>_*, honest_w<week>_* or control_w<week>_*")
    week = WEEKS[int(match["week"])]
    role = match["role"] or "attack"
    if (role == "attack") != bool(match["klass"]):
        raise ValueError(f"{path.name}: an attack's name carries its class (w<week>_c<class>_...), only an attack's")
    doc, code = _without_docstring(path.read_text())
    control = re.search(r"^control: (\S+)\s*$", doc, re.M)
    klass = re.search(r"^class: ([1-6])\b", doc, re.M)
    if role == "attack" and (control is None or klass is None or int(klass[1]) != int(match["klass"])):
        raise ValueError(f"{path.name}: an attack's docstring holds 'class: {match['klass']}' and 'control: ...'")
    parts = _FILE.split(code)
    code, files = parts[0], {n: b.encode() for n, b in zip(parts[1::2], parts[2::2])}
    pieces = _CELL.split(code)
    cells: dict[str, str] = {}
    if len(pieces) > 1:
        preamble = pieces[0].strip("\n")
        for name, body in zip(pieces[1::2], pieces[2::2]):
            if name not in week.problems:
                raise ValueError(f"{path.name}: {name} is not a problem of the week-{week.number} subset")
            cells[name] = body.strip("\n") + "\n"
        first = next(n for n in week.problems if n in cells)
        if preamble:
            cells[first] = preamble + "\n\n" + cells[first]
    else:
        defined = [n for n in week.problems if n in _top_bound(code)]
        if not defined:
            raise ValueError(f"{path.name}: defines none of {week.problems}")
        cells = {n: "" for n in defined}
        cells[defined[0]] = code.strip("\n") + "\n"
    pack = _PACK.search(doc)
    return Entry(path, path.stem, role, week, int(klass[1]) if klass else None,
                 control[1] if control else None, doc.splitlines()[0], cells, files, pack[1] if pack else None)


def corpus(week: int | None = None) -> list[Entry]:
    entries = [load(p) for p in sorted(CORPUS.glob("*.py")) if p.name != "__init__.py"]
    return [e for e in entries if week is None or e.week.number == week]


def implementations(entry: Entry) -> dict[str, str]:
    """Solution cells for ``entry``: the reference, with its cells in place of its targets'."""
    refs = reference(entry.week)
    impls = dict(refs)
    for name in entry.targets:
        text = entry.cells[name] or "# defined in an earlier cell\n"
        impls[name] = _REFERENCE.sub(lambda m: refs[m[1]].rstrip("\n"), text)
    return impls


# ----------------------------------------------------------------------------- the batch
def populate(root: Path, week: Week, entries: list[Entry]) -> list[str]:
    """Submit ``full``, ``blank`` and every entry of ``week``; returns the students submitted."""
    pack = root / "release" / week.assignment / "selfcheck"
    submissions = [("full", filled(root, week, reference(week)), {}, None),
                   ("blank", copy.deepcopy(release(root, week)), {}, None)]
    for entry in entries:
        folders = {entry.pack_as: pack} if entry.pack_as else None
        submissions.append((entry.student, filled(root, week, implementations(entry)), entry.files, folders))
    for student, nb, files, folders in submissions:
        submit(root, week, student, nb, files=files, folders=folders)
    return [s[0] for s in submissions]


def control_scores(entry: Entry, book: dict) -> dict[str, float]:
    """The scores of ``entry``'s control: another corpus file's, or for ``blank`` the full
    reference's with the problems it attacks scored as in the blank release (the same
    notebook without the attack: the reference minus those problems)."""
    if entry.control != "blank":
        return dict(book[entry.control])
    return {n: book["blank"][n] if n in entry.attacked else book["full"][n] for n in book["full"]}


class Batch:
    """One ``nbgrader autograde`` over a whole class, in its own process group."""

    #: Stopped only when its log shows no sign of life for this long, or after HARD_LIMIT seconds.
    STALL_SECONDS = 900
    HARD_LIMIT = 5400

    def __init__(self, name: str, root: Path, week: Week):
        self.name, self.root, self.week = name, root, week
        self.log = root / "autograde.out"
        cmd = [sys.executable, "-m", "nbgrader", "autograde", week.assignment, "--create", "--force"]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=root, env=env(), stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.start = time.perf_counter()
        self.returncode: int | None = None
        self.seconds: float | None = None
        self.killed: str | None = None

    def poll(self) -> bool:
        if self.returncode is not None:
            return True
        pid, status, _ = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            idle = time.time() - self.log.stat().st_mtime
            elapsed = time.perf_counter() - self.start
            if idle > self.STALL_SECONDS or elapsed > self.HARD_LIMIT:
                self.killed = f"no progress for {idle:.0f} s" if idle > self.STALL_SECONDS else f"ran {elapsed:.0f} s"
                os.killpg(self.proc.pid, signal.SIGKILL)
            return False
        self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.seconds = time.perf_counter() - self.start
        return True


def run_batches(batches: list[Batch]) -> None:
    while not all([b.poll() for b in batches]):  # a list: every batch polled each time
        time.sleep(1.0)


# ----------------------------------------------------------------------------- class 5's seed
def public_seed(week: Week, names: tuple[str, ...], seeds=range(1, 400), budget: float = 30.0) -> tuple[int, list]:
    """A grading seed at which the hidden cases of ``names`` repeat the release's public cases
    (an input array of a public case drawn again), the most of ``names`` first found within
    ``budget`` seconds: class 5's worst case, a student whose hidden draw is the public pack.
    Returns (seed, the names that repeat there); (7, []) when none repeats."""
    import numpy as np

    from autograder.cases.sample import Draw
    from autograder.checks import problems_for
    from autograder.judge import case_rng
    from autograder.selfcheck_pack import public_cases

    def arrays(value):
        if isinstance(value, np.ndarray):
            return [value] if value.dtype.kind == "f" and value.size > 1 else []
        if isinstance(value, dict):
            return [a for v in value.values() for a in arrays(v)]
        if isinstance(value, (list, tuple)):
            return [a for v in value for a in arrays(v)]
        return []

    def digests(cases):
        out = set()
        for case in cases:
            request = case.request() if callable(case.request) else case.request
            out |= {a.tobytes() for a in arrays(request.get("inputs", []))}
        return out

    problems = problems_for(week.assignment)
    public = {n: digests(public_cases(problems[n])) for n in names}
    best, found, start = 7, [], time.monotonic()
    for seed in seeds:
        hits = [n for n in names if public[n] & digests(problems[n].cases(Draw(case_rng(seed, n))))]
        if len(hits) > len(found):
            best, found = seed, hits
        if len(found) == len(names) or time.monotonic() - start > budget:
            break
    return best, found
