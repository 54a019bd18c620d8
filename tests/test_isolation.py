"""Only the notebook's cells run as the student's code; one notebook cannot hurt the next.

Fast checks of the pieces (non-recursive clean-up, the codec refusing hostile files,
the provenance check of graded names, the copy of the submission folder) and a few
kernels run through :class:`~autograder.integration.execute.JudgedExecute` (the sandbox's
``sys.path``, its bounded working folder, a graded name imported from a module).
The same attacks, graded through stock ``nbgrader autograde`` in one batch with honest
submissions, are in ``tests/cheats/iso_*.py`` and ``tests/faults/iso_*.py``.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.integration.execute import JudgedExecute
from autograder.integration.recordings import Recordings
from autograder.isolation.sandbox.bubblewrap import isolate_python, probe
from autograder.isolation.sandbox.errors import GradingInfrastructureError
from autograder.isolation.sandbox.files import remove_tree, safe_copytree
from autograder.isolation.source_check import foreign_definition
from autograder.notebooks import reference_definitions
from gradekit.codec import CodecError, Reader, load_json, load_npy

A = "w1_conv_arithmetic"
needs_bwrap = pytest.mark.skipif(probe() is not None, reason="bubblewrap cannot build a sandbox here")


# ----------------------------------------------------------------------------- clean-up
def _chain(root: Path, depth: int) -> None:
    """``root/d/d/d/...`` ``depth`` folders deep, built with relative fds (no long paths)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            new = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=new), "wb") as f:
                f.write(b"x")
            os.close(fd)
            fd = new
    finally:
        os.close(fd)


def test_remove_tree_takes_a_10000_deep_chain_without_recursion(tmp_path):
    root = tmp_path / "scratch"
    root.mkdir()
    _chain(root, 10_000)
    start = time.perf_counter()
    assert remove_tree(root) == []
    assert not root.exists()
    assert time.perf_counter() - start < 180  # linear: a few ms a level on a slow, busy disk


def test_remove_tree_handles_links_protected_folders_and_leaves_the_outside_alone(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    root = tmp_path / "scratch"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("x")
    (root / "link_dir").symlink_to(outside)
    (root / "a" / "link_file").symlink_to(outside / "keep.txt")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(root / "fifo")
    (root / "a" / "b").chmod(0)
    (root / "a").chmod(0o500)
    assert remove_tree(root) == []
    assert not root.exists() and (outside / "keep.txt").read_text() == "keep"
    assert remove_tree(root) == []  # gone already: nothing to do


def test_remove_tree_relative_to_a_folder_descriptor(tmp_path):
    (tmp_path / "x" / "y").mkdir(parents=True)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert remove_tree("x", dir_fd=fd) == []
    finally:
        os.close(fd)
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- codec
def test_codec_refuses_deep_json_quickly(tmp_path):
    path = tmp_path / "0.json"
    path.write_text("[" * 1_000_000 + "]" * 1_000_000)
    start = time.perf_counter()
    with pytest.raises(CodecError, match="nested"):
        load_json(path)
    path.write_text("[" * 100 + "]" * 100)
    with pytest.raises(CodecError, match="nested"):
        load_json(path)
    path.write_text('{"a": ' * 5000 + "1" + "}" * 5000)
    with pytest.raises(CodecError):
        load_json(path)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("raw", [b"\xff\xfe not utf-8", b"1" * 5000, b'{"a": NaN', b""])
def test_codec_turns_bad_json_into_codec_errors(tmp_path, raw):
    path = tmp_path / "0.json"
    path.write_bytes(raw)
    with pytest.raises(CodecError):
        load_json(path)


def _npy(path: Path, header: str, data: bytes = b"") -> None:
    head = header.encode("latin1")
    head += b" " * (-(len(head) + 11) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + data)


@pytest.mark.parametrize("header", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000, 1000000), }",  # exabytes
    "{'descr': '<f8', 'fortran_order': False, 'shape': (100000,), }",                    # longer than the file
    "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",                          # objects
    "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }",                # structured
    "{'descr': '<U10', 'fortran_order': False, 'shape': (2,), }",                        # strings
    "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",                        # negative
    "{'descr': 'not a dtype', 'fortran_order': False, 'shape': (2,), }",
    "__import__('os').system('true')",
])
def test_codec_refuses_hostile_npy_headers_quickly(tmp_path, header):
    path = tmp_path / "t0.npy"
    _npy(path, header, b"\0" * 64)
    start = time.perf_counter()
    with pytest.raises(CodecError):
        load_npy(path)
    with pytest.raises(CodecError):
        Reader(tmp_path, as_torch=False).decode({"__tensor__": "t0.npy"})
    assert time.perf_counter() - start < 1


def test_codec_still_reads_plain_arrays_and_refuses_malformed_records(tmp_path):
    np.save(tmp_path / "t0.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    reader = Reader(tmp_path, as_torch=False)
    out = reader.decode({"x": {"__tensor__": "t0.npy", "dtype": "torch.float32"}, "y": {"__tuple__": [1, 2]}})
    assert out["x"].shape == (2, 3) and out["y"] == (1, 2)
    for bad in ({"__tuple__": 3}, {"__dict__": [1]}, {"__nnmodule__": "Conv2d"}, {"__tensor__": 7},
                {"__tensor__": "../x.npy"}, {"__tensor__": "missing.npy"}, [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]):
        with pytest.raises(CodecError):
            reader.decode(bad)


# ----------------------------------------------------------------------------- provenance
@pytest.mark.parametrize("cells, why", [
    (["from mymod import conv2d"], "imported from a module (mymod)"),
    (["import helper", "def conv2d(x, w):\n    return helper.conv2d(x, w)"], "the module helper"),
    (["import helper as h", "def _inner(x, w):\n    return h.f(x, w)", "def conv2d(x, w):\n    return _inner(x, w)"],
     "the module helper"),
    (["def conv2d(x, w):\n    return x", "from refcopy import *"], "from refcopy import *"),
    (["def conv2d(x, w):\n    return x", "exec(open('m.py').read())"], "exec()"),
    (["import runpy", "conv2d = runpy.run_path('m.py')['conv2d']"], "runpy"),
    (["import importlib.util\nspec = importlib.util.spec_from_file_location('m', 'm.py')\n"
      "m = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)", "conv2d = m.conv2d"], "importlib"),
    (["import sys\nsys.path.insert(0, '.')", "from colorsys import conv2d"], "colorsys"),
    (["%run helper.py"], "%run"),
    (["import m\nglobals()['conv2d'] = m.f"], "globals()"),
    (["x = 1"], "not defined in the notebook's cells"),
])
def test_a_graded_name_from_outside_the_cells_is_not_the_students(cells, why):
    reason = foreign_definition(cells, "conv2d")
    assert reason is not None and why in reason, reason


@pytest.mark.parametrize("cells", [
    ["import torch\nimport numpy as np\nimport math", "def conv2d(x, w):\n    return x"],
    ["def _c(x, w):\n    return x", "conv2d = _c"],
    ["exec('x = 1')", "def conv2d(x, w):\n    return x"],           # rebound after the exec
    ["if True:\n    def conv2d(x, w):\n        return x"],
    ["from torch.nn.functional import conv2d"],                      # the banned-use check's business
    ["from functools import partial", "def _c(x, w, s):\n    return x", "conv2d = partial(_c, s=1)"],
    ["def conv2d(x, w):\n    return x", "%timeit conv2d(1, 2)", "!ls"],
])
def test_honest_definitions_are_the_students(cells):
    assert foreign_definition(cells, "conv2d") is None


def test_every_reference_notebook_defines_its_graded_names_in_cells():
    import nbformat

    from autograder.integration.cells import captured_names, is_test_cell, student_sources

    for path in sorted(Path(__file__).resolve().parents[1].glob("course/source/*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        names = [n for c in nb.cells if is_test_cell(c) for n in captured_names(c.source)]
        sources = student_sources(nb)
        assert names, path
        assert {n: foreign_definition(sources, n) for n in names} == {n: None for n in names}, path


# ----------------------------------------------------------------------------- the submission copy
def test_code_beside_the_notebook_is_not_copied_and_deep_folders_do_not_break_the_copy(tmp_path):
    src = tmp_path / "submission"
    (src / "pkg").mkdir(parents=True)
    for name in ("helper.py", "sitecustomize.py", "usercustomize.py", "evil.pth", "numpy.py", "mod.so",
                 "ipython_kernel_config.py", "ipython_config.json", "jupyter_notebook_config.json",
                 "matplotlibrc", "pkg/__init__.py", "data.csv", "weights.npz"):
        (src / name).write_text("x")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "helper.cpython-311.pyc").write_text("x")
    (src / ".ipython" / "profile_default" / "startup").mkdir(parents=True)
    (src / ".ipython" / "profile_default" / "startup" / "00.py").write_text("x")
    _chain(src, 5000)
    withheld: list[str] = []
    skipped = safe_copytree(src, tmp_path / "work", withheld=withheld)
    copied = sorted(str(p.relative_to(tmp_path / "work")) for p in (tmp_path / "work").glob("*") if p.is_file())
    assert copied == ["data.csv", "weights.npz"]
    assert {"helper.py", "sitecustomize.py", "evil.pth", "numpy.py", "mod.so", "ipython_kernel_config.py",
            "ipython_config.json", "matplotlibrc", "pkg/__init__.py", "__pycache__/", ".ipython/"} <= set(withheld)
    assert any("nested deeper" in s for s in skipped)
    assert remove_tree(src) == [] and remove_tree(tmp_path / "work") == []


def test_isolated_python_flag():
    assert isolate_python(["/x/bin/python", "-m", "ipykernel_launcher", "-f", "c.json"])[:2] == ["/x/bin/python", "-I"]
    assert isolate_python(["/x/bin/python3.11", "-m", "k"])[1] == "-I"
    assert isolate_python(["/x/bin/python", "-I", "-m", "k"]).count("-I") == 1
    assert isolate_python(["/usr/bin/R", "--slave"]) == ["/usr/bin/R", "--slave"]


def test_a_full_disk_in_the_graders_folder_is_not_the_students(tmp_path):
    """Recordings that cannot be kept (ENOSPC in the grader's folder) flag an infrastructure failure."""
    work = tmp_path / "work"
    (work / ".gradekit" / "out" / "conv2d").mkdir(parents=True)
    (work / ".gradekit" / "out" / "conv2d" / "0.json").write_text("{}")
    private = tmp_path / "private"
    private.mkdir()
    rec = Recordings(work, private, 2**20)
    (private / "out").write_text("a file where the folder should be")  # mkdir fails: ENOTDIR
    rec.take("conv2d")
    assert rec.infrastructure is not None


# ----------------------------------------------------------------------------- kernels
def _graded(tmp_path: Path, cells: list[str], files: dict[str, str] | None = None, **traits):
    """Run ``cells`` + conv_output_size's hidden test through JudgedExecute in the sandbox."""
    sub = tmp_path / "submission"
    sub.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (sub / name).write_text(text)
    test = new_code_cell('import gradekit; gradekit.capture("conv_output_size", globals())')
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 2,
                                 "grade_id": "test_conv_output_size", "schema_version": 3}
    nb = new_notebook(cells=[new_code_cell(c) for c in cells] + [test])
    traits.setdefault("timeout", 60)
    executor = JudgedExecute(seed=3, **traits)
    nb, _ = executor.preprocess(nb, {"nbgrader": {"assignment": A, "notebook": A}, "metadata": {"path": str(sub)}})
    outputs = ["".join(str(o.get("text", "")) + str((o.get("data") or {}).get("text/plain", ""))
                       + str(o.get("evalue", "")) for o in c.outputs) for c in nb.cells]
    return nb.metadata["gradekit"], outputs


@needs_bwrap
def test_a_figure_with_text_draws_without_noise_from_the_sandbox(tmp_path):
    """matplotlib's font lookup reads /etc/fonts: nothing the student did may print to stderr."""
    _, outputs = _graded(tmp_path, ["import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                                    "fig = plt.figure()\nfig.text(0.1, 0.1, 'receptive field')\n"
                                    "fig.savefig('figure.png')\nprint('drawn')"], timeout=120)
    assert outputs[0] == "drawn\n", outputs[0]


@needs_bwrap
def test_kernel_sys_path_has_no_working_folder_and_submitted_code_does_not_run(tmp_path):
    ref = reference_definitions(A)["conv_output_size"]
    files = {"sitecustomize.py": "raise SystemExit('sitecustomize ran')\n",
             "usercustomize.py": "raise SystemExit('usercustomize ran')\n",
             "typing.py": "raise SystemExit('typing shadowed')\n",
             "numpy.py": "raise SystemExit('numpy shadowed')\n",
             "ipython_kernel_config.py": "raise SystemExit('config ran')\n",
             "helper.py": ref, "data.txt": "the data\n"}
    cells = ["import os, sys, json\nprint(json.dumps([sys.path, os.getcwd(), sorted(os.listdir('.'))]))",
             "import numpy, typing\nprint(numpy.__file__)",
             "print(open('data.txt').read())",
             "from helper import conv_output_size"]
    report, out = _graded(tmp_path, cells, files)
    path, cwd, listing = json.loads(out[0].strip())
    assert "" not in path and cwd not in path and "." not in path, path
    assert listing == [".gradekit", "data.txt"], listing
    assert "site-packages" in out[1]
    assert "the data" in out[2]
    assert "No module named 'helper'" in out[3]
    verdict = report["problems"]["conv_output_size"]
    assert verdict["status"] == "missing" and verdict["fraction"] == 0
    assert "helper.py" in "\n".join(verdict["lines"])  # the feedback says why


@needs_bwrap
def test_a_module_written_by_a_cell_is_not_graded_and_honest_work_is(tmp_path):
    ref = reference_definitions(A)["conv_output_size"]
    writer = (f"open('mymod.py', 'w').write({ref!r})\n"
              "import sys\nsys.path.insert(0, '.')\nfrom mymod import conv_output_size")
    report, _ = _graded(tmp_path / "a", [writer])
    verdict = report["problems"]["conv_output_size"]
    lines = "\n".join(verdict["lines"])
    assert verdict["status"] == "missing" and "imported from a module (mymod)" in lines, lines
    assert "only code in the notebook's cells is graded" in lines.lower()
    report, _ = _graded(tmp_path / "b", [ref])
    assert report["problems"]["conv_output_size"]["status"] == "passed"


@needs_bwrap
def test_the_working_folder_is_bounded_and_vanishes_with_the_sandbox(tmp_path, monkeypatch):
    # the grader's scratch folders go to a folder of this test's own (other gradings on the
    # machine make theirs in /tmp at the same time)
    scratch_root = Path(tempfile.mkdtemp(prefix="gk-", dir="/tmp"))  # short: the kernel's IPC sockets live there
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    ref = reference_definitions(A)["conv_output_size"]
    fill = ("import os\nn = 0\ntry:\n    with open('big', 'wb') as f:\n        while n < 4096:\n"
            "            f.write(b'x' * 2**20); f.flush(); n += 1\nexcept OSError as e:\n"
            "    print('stopped after', n, 'MiB:', os.strerror(e.errno))")
    deep = ("import os\nfd = os.open('.', os.O_RDONLY)\nfor _ in range(3000):\n    os.mkdir('d', dir_fd=fd)\n"
            "    new = os.open('d', os.O_RDONLY, dir_fd=fd); os.close(fd); fd = new")
    report, out = _graded(tmp_path, [fill, deep, ref], work_size=32 * 2**20)
    assert "stopped after" in out[0] and "No space left on device" in out[0], out[0]
    assert int(out[0].split("after ")[1].split()[0]) <= 40
    assert report["problems"]["conv_output_size"]["status"] == "passed"  # the recordings have room of their own
    leftovers = list(scratch_root.glob("gradekit-*"))
    remove_tree(scratch_root)
    assert not leftovers, leftovers


def test_an_infrastructure_failure_is_retried_then_raised(tmp_path, monkeypatch):
    executor = JudgedExecute(sandbox="none")
    calls = []

    def failing(nb, resources):
        calls.append(1)
        raise GradingInfrastructureError(os.strerror(errno.ENOSPC))

    monkeypatch.setattr(executor, "_grade", failing)
    with pytest.raises(GradingInfrastructureError):
        executor.preprocess(new_notebook(), {"metadata": {"path": str(tmp_path)}})
    assert len(calls) == 2
