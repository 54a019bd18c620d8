"""Cheats and faults graded through stock nbgrader with the sandboxed, judged executor.

Four courses (the two-problem week-1 subset of ``tests/faults/harness.py``) are
graded concurrently, each by one ``nbgrader autograde`` over its whole class:

- ``alone``: the honest submissions (full, blank, partial) by themselves;
- ``cheats``: full, blank and every file of ``tests/cheats/``;
- ``faults``: the honest submissions again, every runaway program of
  ``tests/faults/`` and every damaged notebook of ``tests/faults/damage.py``;
- ``control``: a few cheats graded with the sandbox and the integrity scan off,
  which must then score above the blank release (so the cheats are real).

Seeds are fixed so that the honest grades can be compared across courses.
"""
from __future__ import annotations

import copy
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import defined_names, reference_definitions

from .faults import damage
from .faults.harness import A, POINTS, copy_course, filled, gradebook, make_course, release, report, submit

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHEATS = sorted(p for p in (HERE / "cheats").glob("*.py") if p.name != "__init__.py")
FAULTS = sorted(p for p in (HERE / "faults").glob("*.py") if p.stem not in ("__init__", "harness", "damage"))
CONTROL = ("read_solutions", "read_hidden_tests", "network_fetch", "disable_trace", "patch_gradekit_capture",
           "iso_module_written_by_cell")

CONFIG = """
c.JudgedExecute.seed = 7
c.JudgedExecute.timeout = 20
c.JudgedExecute.code_cell_timeout = 8
c.JudgedExecute.notebook_timeout = 50
c.JudgedExecute.memory_limit = 1536 * 2**20
c.JudgedExecute.max_processes = 128
c.JudgedExecute.tmp_size = 64 * 2**20
"""
CONTROL_CONFIG = CONFIG + 'c.JudgedExecute.sandbox = "none"\nc.JudgedExecute.integrity = "off"\n'

WRONG_CONV_OUTPUT_SIZE = '''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Padding counted once instead of per side."""
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1
'''


_FILE_MARK = re.compile(r"^# --- submitted file: ([A-Za-z0-9_.-]+) ---$", re.M)


def split_files(text: str) -> tuple[str, dict[str, bytes]]:
    """A cheat/fault file -> (its cell text, files submitted beside the notebook): each
    ``# --- submitted file: NAME ---`` line starts a file that runs to the next one."""
    parts = _FILE_MARK.split(text)
    return parts[0], {name: body.encode() for name, body in zip(parts[1::2], parts[2::2])}


def implementations(text: str) -> dict[str, str]:
    """A cheat/fault file -> solution cells: the text goes into the first graded cell it defines."""
    names = [n for n in ("conv_output_size", "conv2d") if n in defined_names(text) or f"def {n}(" in text
             or "import *" in text]
    if not names:
        names = ["conv_output_size"]
    cells = {n: "# defined in an earlier cell\n" for n in ("conv_output_size", "conv2d")}
    cells[names[0]] = text
    return cells


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def reference_server():
    """A TCP server on 127.0.0.1 handing out the reference code; counts connections."""
    payload = (REPO / "solutions" / "w1_conv_arithmetic.py").read_bytes()
    hits = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            hits.append(self.client_address)
            self.request.sendall(payload)

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


def fill_placeholders(text: str, course: Path, port: int, token: str) -> str:
    return (text.replace("__REPO__", str(REPO)).replace("__COURSE__", str(course))
            .replace("__PORT__", str(port)).replace("__TOKEN__", token))


def honest(root: Path) -> dict[str, object]:
    refs = reference_definitions(A)
    return {"full": filled(root, refs), "blank": copy.deepcopy(release(root)),
            "partial": filled(root, {**refs, "conv_output_size": WRONG_CONV_OUTPUT_SIZE})}


#: A batch is stopped only when it shows no sign of life (its log unchanged) for this
#: long: far more than any one notebook may take (kernel start-up + notebook_timeout).
#: A slow batch that keeps grading is never cut short by the test itself.
STALL_SECONDS = 600
#: Last resort against a batch that keeps logging forever.
HARD_LIMIT_SECONDS = 3600


class Batch:
    """One ``nbgrader autograde`` over a whole class, in its own process group."""

    def __init__(self, name: str, root: Path):
        from .faults.harness import env

        self.name, self.root = name, root
        self.log = root / "autograde.out"
        cmd = [sys.executable, "-m", "nbgrader", "autograde", A, "--create", "--force"]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=root, env=env(), stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.start = time.perf_counter()
        self.returncode: int | None = None
        self.seconds: float | None = None
        self.cpu_seconds = 0.0  # nbgrader's own (the kernels' are in each notebook's report)
        self.killed: str | None = None

    def poll(self) -> bool:
        """True once finished; records the exit status, wall time and nbgrader's CPU time."""
        if self.returncode is not None:
            return True
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            self.cpu_seconds = max(self.cpu_seconds, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
        except (OSError, IndexError, ValueError):
            pass
        pid, status, _ = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            idle = time.time() - self.log.stat().st_mtime
            elapsed = time.perf_counter() - self.start
            if idle > STALL_SECONDS or elapsed > HARD_LIMIT_SECONDS:
                self.killed = f"no progress for {idle:.0f} s" if idle > STALL_SECONDS else f"ran {elapsed:.0f} s"
                os.killpg(self.proc.pid, signal.SIGKILL)
            return False
        self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.seconds = time.perf_counter() - self.start
        return True

    def summary(self) -> dict:
        kernels = 0.0
        for path in (self.root / "autograded").glob(f"*/{A}/{A}.ipynb"):
            kernels += nbformat.read(path, as_version=4).metadata.get("gradekit", {}).get(
                "sandbox", {}).get("cpu_seconds") or 0.0
        return {"seconds": round(self.seconds or 0, 1), "nbgrader_cpu_seconds": round(self.cpu_seconds, 1),
                "kernel_cpu_seconds": round(kernels, 1), "returncode": self.returncode, "killed": self.killed}


def run_batches(roots: dict[str, Path]) -> dict[str, Batch]:
    """Grade every course, all at once (waits in one batch overlap work in another)."""
    batches = {name: Batch(name, root) for name, root in roots.items()}
    while not all([b.poll() for b in batches.values()]):  # a list: every batch polled each time
        time.sleep(0.5)
    return batches


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    base = tmp_path_factory.mktemp("hardening")
    template = make_course(base / "template", CONFIG)
    refs = reference_definitions(A)
    # One reference server per class: the sandboxed class must not reach its own.
    server, hits = reference_server()
    control_server, control_hits = reference_server()
    token = f"gradekit-bg-{uuid.uuid4().hex}"

    alone = copy_course(template, base / "alone")
    for student, nb in honest(alone).items():
        submit(alone, student, nb)

    cheats = copy_course(template, base / "cheats")
    for student in ("full", "blank"):
        submit(cheats, student, honest(cheats)[student])
    for path in CHEATS:
        text, files = split_files(fill_placeholders(path.read_text(), cheats, server.server_address[1], token))
        submit(cheats, f"cheat_{path.stem}", filled(cheats, implementations(text)), files=files)

    faults = copy_course(template, base / "faults")
    for student, nb in honest(faults).items():
        submit(faults, student, nb)
    reference_text = refs["conv_output_size"] + "\n\n" + refs["conv2d"]
    for path in FAULTS:
        text, files = split_files(path.read_text().replace("__REFERENCE__", reference_text))
        submit(faults, f"fault_{path.stem}", filled(faults, implementations(text)), files=files)
    for damaged in damage.DAMAGES:
        out = damaged(filled(faults, refs))
        if isinstance(out, bytes):
            submit(faults, f"damaged_{damaged.__name__}", raw=out)
        else:
            submit(faults, f"damaged_{damaged.__name__}", out)

    control = make_course(base / "control", CONTROL_CONFIG)
    submit(control, "blank", copy.deepcopy(release(control)))
    for name in CONTROL:
        text, files = split_files(fill_placeholders((HERE / "cheats" / f"{name}.py").read_text(), control,
                                                    control_server.server_address[1], token))
        submit(control, f"cheat_{name}", filled(control, implementations(text)), files=files)

    # The biggest classes first.
    roots = {"faults": faults, "cheats": cheats, "control": control, "alone": alone}
    started = time.perf_counter()
    ran = run_batches(roots)
    wall = time.perf_counter() - started
    server.shutdown()
    control_server.shutdown()
    summary = {name: b.summary() for name, b in ran.items()}
    print(f"\nautograde batches ({wall:.1f} s in all):", summary)
    return {"roots": roots, "results": summary, "hits": hits, "control_hits": control_hits, "token": token,
            "wall_seconds": wall, "base": base}


def grades(batches, course: str) -> dict[str, dict[str, float]]:
    return gradebook(batches["roots"][course])


def problems(batches, course: str, student: str) -> dict[str, dict]:
    return report(batches["roots"][course], student).get("problems", {})


def describe(batches, course: str, student: str) -> str:
    rep = report(batches["roots"][course], student)
    sb = rep.get("sandbox", {})
    parts = [f"{n}={p['status']}" for n, p in rep.get("problems", {}).items()]
    secs = sb.get("seconds")
    return f"{student:32s} {' '.join(parts):55s} kernel {secs if secs is not None else '-'} s"


# ----------------------------------------------------------------------------- whole batches
def test_every_batch_finishes_and_every_student_is_in_the_gradebook(batches):
    for course, root in batches["roots"].items():
        log = (root / "autograde.out").read_text()
        assert batches["results"][course]["killed"] is None, (course, batches["results"][course])
        assert batches["results"][course]["returncode"] == 0, f"{course}: {log[-3000:]}"
        students = sorted(p.name for p in (root / "submitted").iterdir())
        book = gradebook(root)
        assert sorted(book) == students, course
        for student in students:
            assert book[student] is not None and set(book[student]) == {"conv_output_size", "conv2d"}, (course, student)
            rep = report(root, student)
            assert set(rep["problems"]) == {"conv_output_size", "conv2d"}
            for verdict in rep["problems"].values():
                assert verdict["status"] in ("passed", "failed", "error", "timeout", "out of memory",
                                             "kernel died", "missing")


def test_honest_submissions_get_the_same_grades_in_every_batch(batches):
    alone = grades(batches, "alone")
    assert alone["full"] == {"conv_output_size": 2.0, "conv2d": 10.0}
    assert alone["blank"] == {"conv_output_size": 0.0, "conv2d": 0.0}
    assert 0 < alone["partial"]["conv_output_size"] < 2 and alone["partial"]["conv2d"] == 10.0
    faults, cheats = grades(batches, "faults"), grades(batches, "cheats")
    for student in ("full", "blank", "partial"):
        assert faults[student] == alone[student], student
    for student in ("full", "blank"):
        assert cheats[student] == alone[student], student


# ----------------------------------------------------------------------------- cheats
def test_no_cheat_scores_above_the_blank_release(batches):
    book = grades(batches, "cheats")
    blank = book["blank"]
    lines = []
    for path in CHEATS:
        student = f"cheat_{path.stem}"
        lines.append(describe(batches, "cheats", student) + f"  grade {book[student]}")
    print("\n" + "\n".join(lines))
    for path in CHEATS:
        student = f"cheat_{path.stem}"
        for name, score in book[student].items():
            assert score <= blank[name], (student, name, score, problems(batches, "cheats", student)[name]["lines"])


def test_the_cheats_are_real_without_the_defences(batches):
    """With no sandbox and no integrity scan, these cheats beat the blank release."""
    book = grades(batches, "control")
    for name in CONTROL:
        total = sum(book[f"cheat_{name}"].values())
        assert total > sum(book["blank"].values()), (name, book[f"cheat_{name}"])
    assert len(batches["control_hits"]) >= 1  # network_fetch reached its server


def test_sandbox_blocks_files_network_and_gradebook(batches):
    # Nothing from the sandboxed class reached its server (the control class reached its own).
    assert len(batches["control_hits"]) >= 1 and batches["hits"] == []
    for student in ("cheat_read_solutions", "cheat_read_hidden_tests", "cheat_network_fetch",
                    "cheat_write_gradebook"):
        verdicts = problems(batches, "cheats", student)
        assert all(v["fraction"] == 0 for v in verdicts.values())
        assert not report(batches["roots"]["cheats"], student)["integrity"], student  # the sandbox did it


def test_integrity_scan_names_what_it_found(batches):
    flagged = {"disable_trace": "_disable_current_modes",
               "patch_gradekit_capture": "assigns to gradekit.capture._op_trace",
               "forge_records": "sys.modules", "fake_gradekit_module": "sys.modules",
               "tensor_subclass": "subclasses Tensor", "frame_hack": "_getframe", "exec_obfuscated": "exec()",
               "post_run_hook": "IPython's shell object", "background_process": "subprocess",
               "patch_allclose": "torch.allclose", "showtraceback_none": "showtraceback",
               "forbidden_importlib": "importlib", "forbidden_getattr": "getattr"}
    for name, needle in flagged.items():
        lines = "\n".join(problems(batches, "cheats", f"cheat_{name}")["conv2d"]["lines"])
        assert "interferes with the grader" in lines and needle in lines, (name, lines)


def test_forbidden_builtins_are_named(batches):
    lines = "\n".join(problems(batches, "cheats", "cheat_forbidden_direct")["conv2d"]["lines"])
    assert "uses conv2d, a built-in this problem asks you to implement yourself" in lines, lines


def test_no_process_outlives_grading(batches):
    for course, root in batches["roots"].items():
        for student in os.listdir(root / "submitted"):
            sb = report(root, student).get("sandbox", {})
            assert not sb.get("survivors"), (course, student, sb)
    token = batches["token"].encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert token not in f.read(), f"process {pid} survived grading"
        except OSError:
            pass


# ----------------------------------------------------------------------------- faults
def fault_outcomes(batches):
    book = grades(batches, "faults")
    out = {}
    for student in sorted(book):
        if student.startswith(("fault_", "damaged_")):
            out[student] = (book[student], {n: p["status"] for n, p in problems(batches, "faults", student).items()},
                            report(batches["roots"]["faults"], student))
    print("\n" + "\n".join(describe(batches, "faults", s) + f"  grade {out[s][0]}" for s in out))
    return out


def test_runaway_programs_get_their_status(batches):
    out = fault_outcomes(batches)
    full = {"conv_output_size": 2.0, "conv2d": 10.0}
    grade, status, rep = out["fault_infinite_loop"]
    assert status == {"conv_output_size": "passed", "conv2d": "timeout"} and grade["conv_output_size"] == 2.0
    grade, status, rep = out["fault_loop_in_solution_cell"]
    assert status == {"conv_output_size": "timeout", "conv2d": "timeout"}, status
    assert rep["problems"]["conv2d"]["lines"][0].startswith("conv2d: not graded, the cell that defines it")
    assert rep["sandbox"]["stopped"] is None  # the cell was stopped, not the notebook
    grade, status, rep = out["fault_stubborn_loop"]
    assert set(status.values()) == {"timeout"} and rep["sandbox"]["stopped"] == "timeout"
    grade, status, rep = out["fault_memory_bomb"]
    assert status["conv2d"] == "out of memory" and rep["sandbox"]["stopped"] == "out of memory"
    assert rep["sandbox"]["peak_memory_bytes"] < 1536 * 2**20 + 1024 * 2**20
    grade, status, rep = out["fault_memory_huge"]
    assert status == {"conv_output_size": "out of memory", "conv2d": "out of memory"}
    grade, status, rep = out["fault_fork_bomb"]
    assert status["conv2d"] in ("error", "kernel died")
    forked = re.search(r"forked (\d+) processes", "\n".join(problems(batches, "faults", "fault_fork_bomb")["conv2d"]["lines"]) +
                       str(rep))
    assert forked is None or int(forked.group(1)) < 128
    grade, status, rep = out["fault_segfault"]
    assert status == {"conv_output_size": "kernel died", "conv2d": "kernel died"}
    grade, status, rep = out["fault_print_flood"]
    assert grade == full and rep["sandbox"]["truncated_cells"]
    for student, (grade, status, rep) in out.items():
        if student.startswith("fault_") and student != "fault_print_flood":
            assert grade["conv2d"] == 0.0, student


def test_only_the_cells_run_and_one_notebook_cannot_hurt_the_next(batches):
    """tests/cheats/iso_*, tests/faults/iso_* (see tests/test_isolation.py for the pieces)."""
    for name in ("iso_module_written_by_cell", "iso_sidecar_module"):
        verdicts = problems(batches, "cheats", f"cheat_{name}")
        assert {v["status"] for v in verdicts.values()} == {"missing"}, (name, verdicts)
        assert "only code in the notebook's cells is graded" in "\n".join(verdicts["conv2d"]["lines"]).lower()
    assert all(v["fraction"] == 0 for v in problems(batches, "cheats", "cheat_iso_startup_shadow").values())
    out = fault_outcomes(batches)
    assert out["fault_iso_hostile_records"][1]["conv2d"] in ("error", "failed")
    for student in ("fault_iso_disk_fill", "fault_iso_deep_tree", "fault_iso_hostile_records"):
        assert out[student][1]["conv2d"] in ("failed", "error"), (student, out[student][1])
    assert not list(Path(batches["base"]).glob("**/gk_iso_fill_*"))  # nothing of it reached the host


def test_damaged_notebooks_are_graded_by_what_is_there(batches):
    out = fault_outcomes(batches)
    full = {"conv_output_size": 2.0, "conv2d": 10.0}
    for damaged in damage.DAMAGES:
        student = f"damaged_{damaged.__name__}"
        grade, status, rep = out[student]
        if damaged.__name__ in damage.UNREADABLE:
            assert grade == {"conv_output_size": 0.0, "conv2d": 0.0}, student
            assert set(status.values()) == {"missing"}
            lines = "\n".join(rep["problems"]["conv2d"]["lines"])
            assert "could not be read as a notebook" in lines, lines
        else:
            assert grade == full, (student, grade, rep["problems"], rep.get("sanitize"))
    sanitize = out["damaged_test_cell_deleted"][2]["sanitize"]
    assert any("test_conv2d was missing" in note for note in sanitize)
    original = batches["roots"]["faults"] / "submitted" / "damaged_invalid_json" / A
    assert (original / f"{A}.ipynb.unreadable").exists()


# ----------------------------------------------------------------------------- closing note
def test_closing_note(batches):
    """Every cheat and fault with its outcome and grading time, and each batch's times.

    Written to ``$HARDENING_NOTE`` (default: ``closing-note.md`` in the test's temporary
    folder) and printed (``pytest -s``).
    """
    lines = ["| class | student | per-problem status (score) | kernel wall s | kernel CPU s |",
             "|---|---|---|---|---|"]
    for course in ("cheats", "faults", "control"):
        root = batches["roots"][course]
        book = gradebook(root)
        for student in sorted(book):
            if not student.startswith(("cheat_", "fault_", "damaged_")):
                continue
            rep = report(root, student)
            parts = [f"{name}: {verdict['status']} ({book[student][name]:g}/{POINTS[name]:g})"
                     for name, verdict in sorted(rep["problems"].items())]
            sb = rep.get("sandbox", {})
            secs, cpu = sb.get("seconds"), sb.get("cpu_seconds")
            lines.append(f"| {course} | {student} | {'; '.join(parts)} | {secs if secs is not None else '-'} "
                         f"| {cpu if cpu is not None else '-'} |")
    lines += ["", "| batch | notebooks | wall s | CPU s: nbgrader | CPU s: kernels | exit |",
              "|---|---|---|---|---|---|"]
    total = 0.0
    for course, result in batches["results"].items():
        count = len(list((batches["roots"][course] / "submitted").iterdir()))
        total += result["nbgrader_cpu_seconds"] + result["kernel_cpu_seconds"]
        lines.append(f"| {course} | {count} | {result['seconds']} | {result['nbgrader_cpu_seconds']} "
                     f"| {result['kernel_cpu_seconds']} | {result['returncode']} |")
    lines.append(f"\nall batches, concurrently: {batches['wall_seconds']:.1f} s wall, {total:.0f} CPU s "
                 f"(on {os.cpu_count()} cores)")
    text = "\n".join(lines) + "\n"
    path = Path(os.environ.get("HARDENING_NOTE") or batches["base"] / "closing-note.md")
    path.write_text(text)
    print("\n" + text + f"(written to {path})")
    assert len(lines) > len(CHEATS) + len(FAULTS) + len(damage.DAMAGES)


def test_a_tagged_demonstration_is_not_run_while_grading(batches):
    """The source notebook's demonstration tagged skip-when-grading (a 30 s sleep) is not run:
    the autograded notebook says so in its output, and the notebook took far less than 30 s."""
    from autograder.integration.cells import SKIPPED_TEXT

    from .faults.harness import SKIPPED_DEMO

    path = batches["roots"]["faults"] / "autograded" / "full" / A / f"{A}.ipynb"
    nb = nbformat.read(path, as_version=4)
    demo = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == SKIPPED_DEMO.strip()]
    assert len(demo) == 1 and [o.get("text") for o in demo[0].outputs] == [SKIPPED_TEXT]
    timings = nb.metadata["gradekit"]["sandbox"]["timings"]
    assert timings["total"] < 30 and any(kind == "skipped" for _, kind, _ in timings["cells"])
