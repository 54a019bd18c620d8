"""The students' environment (``make student-env``, scripts/student_env.sh) is built from a
clean checkout and holds what students need and nothing of the grader: no file of
``solutions/``, ``autograder/`` or ``tests/wrong/``, no line of a reference's body, no
formgrader, and an nbgrader configuration pointing at the course's exchange."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from autograder import COURSE_ID
from autograder.checks import ASSIGNMENTS

REPO = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = {".py", ".pyi", ".json", ".ipynb", ".md", ".txt", ".cfg", ".toml", ".edit", ".yml", ".yaml"}

pytestmark = pytest.mark.slow


def run_in(env: Path, code: str, cwd: Path, **extra_env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ |= {"PATH": f"{env / 'bin'}:/usr/bin:/bin", **extra_env}
    return subprocess.run([str(env / "bin" / "python"), "-c", code], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=300)


def reference_lines() -> set[str]:
    """Lines of the references' bodies (docstrings aside) long enough to be their own."""
    lines = set()
    for assignment in ASSIGNMENTS:
        source = (REPO / "solutions" / f"{assignment}.py").read_text()
        tree = ast.parse(source)
        docstrings = {(n.body[0].lineno, n.body[0].end_lineno) for n in ast.walk(tree)
                      if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Module)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(getattr(n.body[0], "value", None), ast.Constant)}
        text = source.splitlines()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                for number in range(node.lineno + 1, node.end_lineno + 1):
                    if any(a <= number <= b for a, b in docstrings):
                        continue
                    line = text[number - 1].strip()
                    if len(line) >= 40 and not line.startswith(("#", '"', "'")):
                        lines.add(line)
    return lines


def third_party_files(root: Path) -> set[Path]:
    """Files installed by a distribution other than the students' own package (their RECORD)."""
    owned = set()
    for record in root.glob("lib/python*/site-packages/*.dist-info/RECORD"):
        if record.parent.name.startswith("cnn_course_student"):
            continue
        site = record.parent.parent
        for row in record.read_text().splitlines():
            owned.add((site / row.split(",")[0]).resolve())
    return owned


def text_files(paths):
    for path in paths:
        if path.is_file() and not path.is_symlink() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 4 << 20:
            yield path, path.read_text(errors="replace").splitlines()


def grader_traces(root: Path) -> tuple[list[str], int]:
    """What of the grader is under ``root``: files of its packages or of the wrong-answer corpus,
    and files holding a line of a reference's body that is the course's own (a line that also
    stands in PyTorch or another installed library, such as ``for name, param in
    model.named_parameters():``, says nothing); with the number of text files read."""
    corpus = {p.name for p in (REPO / "tests" / "wrong").rglob("*") if p.is_file()}
    paths = list(root.rglob("*"))
    found = [f"{p.relative_to(root)}: a grader's file" for p in paths
             if {"solutions", "autograder"} & set(p.relative_to(root).parts) or p.name in corpus]
    public = third_party_files(root)
    references, texts = reference_lines(), 0
    for path, lines in text_files(p for p in paths if p.resolve() in public):
        texts += 1
        references -= {line.strip() for line in lines}
    for path, lines in text_files(p for p in paths if p.resolve() not in public):
        texts += 1
        hits = sorted({line.strip() for line in lines} & references)
        if hits:
            found.append(f"{path.relative_to(root)}: {len(hits)} line(s) of a reference, e.g. {hits[0][:60]!r}")
    return found, texts


def test_the_scan_finds_a_reference_wherever_it_is(tmp_path):
    (tmp_path / "lib" / "site-packages" / "helpers").mkdir(parents=True)
    body = (REPO / "solutions" / "w2_normalization.py").read_text()
    (tmp_path / "lib" / "site-packages" / "helpers" / "norms.py").write_text(body.replace("def ", "def my_"))
    found, texts = grader_traces(tmp_path)
    assert texts == 1 and found and "line(s) of a reference" in found[0]


def test_the_environment_holds_no_reference_check_or_wrong_answer(student_env):
    assert len(reference_lines()) > 100
    found, texts = grader_traces(student_env)
    assert texts > 1000  # the whole environment was read, torch included
    assert not found, "\n".join(found[:20])


def test_grader_packages_do_not_import_and_the_students_packages_do(student_env, tmp_path):
    for name in ("solutions", "autograder", "autograder.checks", "tests.wrong", "solutions.w1_conv_arithmetic"):
        proc = run_in(student_env, f"import {name}", tmp_path)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, (name, proc.stdout, proc.stderr)
    proc = run_in(student_env, "import gradekit, coursedata, torch, torchvision, matplotlib, sklearn, ipywidgets; "
                               "print(len(coursedata.digits().y_train))", tmp_path)
    assert proc.returncode == 0 and int(proc.stdout) > 1000, proc.stderr


def test_formgrader_is_off_and_the_exchange_is_the_courses(student_env, tmp_path):
    jupyter = student_env / "bin" / "jupyter"
    environ = {**os.environ, "PATH": f"{student_env / 'bin'}:/usr/bin:/bin"}
    extensions = subprocess.run([str(jupyter), "server", "extension", "list"], capture_output=True, text=True,
                                env=environ, timeout=120)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", extensions.stdout + extensions.stderr)  # no colours
    assert "nbgrader.server_extensions.assignment_list enabled" in listing, listing
    assert "nbgrader.server_extensions.formgrader disabled" in listing, listing
    labs = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True, env=environ,
                          timeout=120)
    assert "@jupyter/nbgrader:formgrader" in labs.stdout + labs.stderr  # listed among the disabled plugins
    code = ("from nbgrader.apps.baseapp import NbGrader\n"
            "app = NbGrader()\napp.load_config_file()\nimport json\n"
            "print(json.dumps([app.config.CourseDirectory.course_id, app.config.Exchange.root]))")
    course_id, root = json.loads(run_in(student_env, code, tmp_path, CNN_COURSE_EXCHANGE="/tmp/x-exchange").stdout)
    assert (course_id, root) == (COURSE_ID, "/tmp/x-exchange")
    course_id, root = json.loads(run_in(student_env, code, tmp_path).stdout)
    assert (course_id, root) == (COURSE_ID, "/srv/nbgrader/exchange")


def test_the_self_check_runs_in_the_students_environment(student_env, tmp_path):
    """The release's self-check folder and gradekit are all a student's kernel needs: a right
    answer passes, a wrong one fails with its case, no grader installed."""
    from autograder.notebooks import reference_definitions
    from autograder.selfcheck_pack import build

    build("w1_conv_arithmetic", tmp_path / "selfcheck")
    answer = reference_definitions("w1_conv_arithmetic")["conv_output_size"]
    code = ("import gradekit, json, sys\nns = {}\nexec(json.loads(sys.argv[1]), ns)\n"
            "gradekit.selfcheck('conv_output_size', ns)\n"
            "ns['conv_output_size'] = lambda size, kernel_size, stride=1, padding=0, dilation=1: size\n"
            "gradekit.selfcheck('conv_output_size', ns)\n")
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(student_env / "bin" / "python"), "-c", code, json.dumps(answer)], cwd=tmp_path,
                          env={**environ, "PATH": f"{student_env / 'bin'}:/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=300)
    assert "conv_output_size: self-check passed" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode != 0 and "SelfCheckFailed" in proc.stderr and "self-check FAILED" in proc.stderr
