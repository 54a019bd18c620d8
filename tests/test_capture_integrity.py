"""The kernel-side capture against work it cannot see, rewritten records and a gamed speed case.

- Work done in another thread or process escapes the operator trace: while a request
  runs, starting one is refused (an error that says why), and a process or thread the
  notebook left running stops the request from running at all (in a kernel).
- Records the graded code could rewrite: each record's digest goes to the grader as
  soon as it is written; a record changed afterwards, without a digest, or with
  more than one, is refused.
- The speed case: fresh inputs for every call, the baseline on private copies, every
  value checked.

In process (``autograder.local``), without a notebook; one test starts a real kernel.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.checks import problems_for
from autograder.judge import Judge
from autograder.local import grade_namespace
from autograder.integration.recordings import Recordings
from gradekit.capture import DIGEST_MIME, LEFTOVER_MESSAGE, PROCESS_MESSAGE, run_request
from gradekit.codec import Writer
from solutions import w1_conv_arithmetic as ref

capture_module = importlib.import_module("gradekit.capture")  # gradekit.capture is also the function

A = "w1_conv_arithmetic"
pytestmark = pytest.mark.usefixtures("one_thread")


def grade(fn, name: str = "conv2d", seed: int = 3):
    return grade_namespace(A, {name: fn}, names=[name], seed=seed)[name]


def text(verdict) -> str:
    return "\n".join(verdict.lines)


# ----------------------------------------------------------------------------- attacks: other threads/processes
def _conv(x, weight, bias, stride, padding, dilation, groups):
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def in_thread(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    box = {}
    t = threading.Thread(target=lambda: box.update(out=_conv(x, weight, bias, stride, padding, dilation, groups)))
    t.start()
    t.join()
    return box["out"]


def in_raw_thread(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    import _thread

    box, done = {}, threading.Event()

    def work():
        box["out"] = _conv(x, weight, bias, stride, padding, dilation, groups)
        done.set()

    _thread.start_new_thread(work, ())
    done.wait(10)
    return box["out"]


def in_thread_pool(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        return ex.submit(_conv, x, weight, bias, stride, padding, dilation, groups).result()


def in_fork(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    import pickle

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, pickle.dumps(_conv(x, weight, bias, stride, padding, dilation, groups)))
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 20):
        data += chunk
    os.waitpid(pid, 0)
    return pickle.loads(data)


def in_pool(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(_conv, (x, weight, bias, stride, padding, dilation, groups))


def in_spawned_process(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=time.sleep, args=(0,))
    p.start()
    p.join()
    return _conv(x, weight, bias, stride, padding, dilation, groups)


def in_dataloader_workers(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    from torch.utils.data import DataLoader, Dataset

    class One(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return _conv(x, weight, bias, stride, padding, dilation, groups)

    return next(iter(DataLoader(One(), num_workers=2, batch_size=None)))


def in_subprocess(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return _conv(x, weight, bias, stride, padding, dilation, groups)


def refusal_swallowed(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Catches the refusal and carries on: the attempt still counts."""
    try:
        return in_thread(x, weight, bias, stride, padding, dilation, groups)
    except Exception:  # noqa: BLE001
        return ref.conv2d(x, weight, bias, stride, padding, dilation, groups)


def guard_switched_off(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Switches the guard off (its ``end``), then uses a thread."""
    capture_module._guard()[1](None)
    return in_thread(x, weight, bias, stride, padding, dilation, groups)


def entry_point_restored(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Puts the original thread entry point back (found in the wrapper's closure)."""
    import _thread

    original = next(c.cell_contents for c in threading._start_new_thread.__closure__
                    if getattr(c.cell_contents, "__module__", None) == "_thread")
    threading._start_new_thread = _thread.start_new_thread = original
    return in_thread(x, weight, bias, stride, padding, dilation, groups)


ESCAPES = [in_thread, in_raw_thread, in_thread_pool, in_fork, in_pool, in_spawned_process, in_dataloader_workers,
           in_subprocess, refusal_swallowed, guard_switched_off, entry_point_restored]


def test_the_escapes_are_real_without_the_guard(monkeypatch):
    """With the guard disarmed, F.conv2d computed in a thread escapes the forward's trace: only the
    backward the judge asks for, traced in the grading thread, still shows the built-in."""
    monkeypatch.setattr(capture_module, "_escapes", lambda *a, **k: [])
    monkeypatch.setattr(capture_module, "_guard", lambda: (lambda: (None, []), lambda t: (True, [])))
    verdict = grade(in_thread)
    assert "conv2d calls convolution_backward while it runs" in text(verdict), text(verdict)


@pytest.mark.parametrize("fn", ESCAPES, ids=[f.__name__ for f in ESCAPES])
def test_work_in_another_thread_or_process_is_refused(fn):
    verdict = grade(fn)
    assert verdict.fraction == 0.0, text(verdict)
    assert "starting processes or threads is not allowed while graded code runs" in text(verdict), text(verdict)
    assert "the grader cannot see work done there" in text(verdict)
    # The guard is disarmed again: the test process itself may start threads.
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()


def test_honest_code_runs_under_the_guard():
    verdict = grade(ref.conv2d)
    assert (verdict.status, verdict.fraction) == ("passed", 1.0), text(verdict)


def conv_with_a_progress_bar(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Honest, with a tqdm progress bar (tqdm starts its monitor thread)."""
    from tqdm import tqdm

    for _ in tqdm(range(2), disable=False, mininterval=0):
        pass
    return ref.conv2d(x, weight, bias, stride, padding, dilation, groups)


def test_a_progress_bar_in_graded_code_is_allowed():
    import tqdm

    tqdm.tqdm.monitor_interval = 10  # the default: its monitor thread starts with the first bar
    verdict = grade(conv_with_a_progress_bar)
    assert (verdict.status, verdict.fraction) == ("passed", 1.0), text(verdict)
    assert capture_module._allowed_thread((tqdm.tqdm.monitor._bootstrap,)) if tqdm.tqdm.monitor else True


def _call_request(tmp_path: Path, fn_name: str = "f") -> tuple[dict, Path, Path]:
    in_dir, out_dir = tmp_path / "cases", tmp_path / "out"
    in_dir.mkdir()
    out_dir.mkdir()
    request = Writer(in_dir, prefix="r").encode({"proc": "call", "fn": fn_name, "args": [np.ones(3)]})
    return request, in_dir, out_dir


def test_processes_and_threads_left_running_stop_requests_in_a_kernel(tmp_path):
    request, in_dir, out_dir = _call_request(tmp_path)
    namespace = {"f": lambda x: x * 2}
    clean = capture_module._leftovers() is None  # the test process may have threads of its own

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, name="helper-thread", daemon=True)
    helper.start()
    try:
        record = run_request(request, namespace, in_dir, out_dir, "c0_", in_kernel=True)
    finally:
        stop.set()
        helper.join()
    assert record["status"] == "error" and record["error"]["type"] == "ProcessNotAllowed", record
    assert LEFTOVER_MESSAGE in record["error"]["message"] and "helper-thread" in record["error"]["message"]

    process = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    process.start()
    try:
        record = run_request(request, namespace, in_dir, out_dir, "c1_", in_kernel=True)
    finally:
        process.kill()
        process.join()
    assert record["status"] == "error" and "process" in record["error"]["message"].rsplit("(", 1)[-1], record

    # Outside a kernel (this process, the test suite's) nothing is checked before; in a clean one it runs.
    assert run_request(request, namespace, in_dir, out_dir, "c2_")["status"] == "ok"
    if clean:
        assert run_request(request, namespace, in_dir, out_dir, "c3_", in_kernel=True)["status"] == "ok"


# ----------------------------------------------------------------------------- records
def judged(tmp_path: Path, name: str, fn, publish_filter=None, seed: int = 5):
    """Grade ``fn`` as a notebook is graded, minus the kernel: hidden inputs in a working
    folder, records taken to a private folder after the capture, digests received on the side."""
    work, private = tmp_path / "work", tmp_path / "private"
    work.mkdir(parents=True)
    private.mkdir()
    judge = Judge({name: problems_for(A)[name]}, seed, work / ".gradekit")
    judge.prepare()
    recordings = Recordings(work, private, 2**28)
    recordings.clear(name)

    def publish(content):
        for message in (publish_filter(content) if publish_filter else [content]):
            recordings.receive(json.loads(json.dumps(message)))

    cwd = os.getcwd()
    os.chdir(work)  # the notebook's folder, as in a kernel
    try:
        capture_module.capture(name, {name: fn}, publish=publish)
    finally:
        os.chdir(cwd)
    recordings.take(name)
    judge.workdir = private
    return judge.collect()[name]


def test_honest_records_pass_with_their_digests(tmp_path):
    verdict = judged(tmp_path, "conv_output_size", ref.conv_output_size)
    assert (verdict.status, verdict.fraction) == ("passed", 1.0), text(verdict)
    digests = json.loads((tmp_path / "private" / "digests" / "conv_output_size.json").read_text())["records"]
    assert digests and all("files" not in d and f"{i}.json" in d for i, d in digests.items())


def _rewrite_earlier_records(folder: Path, edit) -> None:
    for path in folder.glob("*.json"):
        if path.stem.isdigit():
            record = json.loads(path.read_text())
            path.write_text(json.dumps(edit(record)))


def conv_rewriting_ops(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv2d, then drops the traced operators from the records of its earlier cases."""
    _rewrite_earlier_records(Path(".gradekit/out/conv2d"), lambda r: {**r, "ops": []})
    return _conv(x, weight, bias, stride, padding, dilation, groups)


def test_records_rewritten_by_later_cases_are_refused(tmp_path):
    verdict = judged(tmp_path, "conv2d", conv_rewriting_ops)
    assert verdict.fraction == 0.0, text(verdict)
    # The last record (never rewritten) still shows the built-in; the others are refused.
    records = json.loads((tmp_path / "private" / "digests" / "conv2d.json").read_text())["records"]
    assert len(records) >= 10


def test_rewritten_record_reads_as_refused(tmp_path):
    from autograder.judge import RECORD_REFUSED, record_problem

    def rewrite_first(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        first = Path(".gradekit/out/conv2d/0.json")
        if first.exists():
            record = json.loads(first.read_text())
            record["ops"] = []
            first.write_text(json.dumps(record))
        return ref.conv2d(x, weight, bias, stride, padding, dilation, groups)

    verdict = judged(tmp_path, "conv2d", rewrite_first)
    assert verdict.fraction < 1.0 and RECORD_REFUSED["changed"][:60] in text(verdict), text(verdict)
    digests = json.loads((tmp_path / "private" / "digests" / "conv2d.json").read_text())["records"]
    out = tmp_path / "private" / "out" / "conv2d"
    assert record_problem(out, 0, digests) == "changed"
    assert record_problem(out, 1, digests) is None


def test_records_without_a_digest_or_with_two_are_refused(tmp_path):
    # Digests of the first two records never arrive (output blocked); the third's arrives twice.
    def tamper(content):
        if content["index"] in (0, 1):
            return []
        if content["index"] == 2:
            return [content, {**content, "files": {k: "0" * 64 for k in content["files"]}}]
        return [content]

    verdict = judged(tmp_path, "conv_output_size", ref.conv_output_size, publish_filter=tamper)
    assert verdict.fraction < 1.0
    assert "did not receive the confirmation" in text(verdict) or "more than one confirmation" in text(verdict)
    from autograder.judge import record_problem

    digests = json.loads((tmp_path / "private" / "digests" / "conv_output_size.json").read_text())["records"]
    out = tmp_path / "private" / "out" / "conv_output_size"
    assert record_problem(out, 0, digests) == "no digest"
    assert record_problem(out, 2, digests) == "duplicate"
    assert record_problem(out, 3, digests) is None


def test_forged_digest_printed_in_advance_spoils_the_record(tmp_path):
    """Student code publishing a digest for a record before it is written: two digests, refused."""
    recordings = Recordings(tmp_path, tmp_path / "private", 2**20)
    recordings.clear("conv2d")
    forged = {"name": "conv2d", "index": 4, "files": {"4.json": "0" * 64}}
    recordings.receive(forged)  # printed by the student during case 3
    recordings.receive({"name": "conv2d", "index": 4, "files": {"4.json": "1" * 64}})  # the kernel's own
    recordings.receive({"name": "other", "index": 0, "files": {"0.json": "1" * 64}})  # not this cell's
    assert recordings.digests["conv2d"][4] == "duplicate" and "other" not in recordings.digests
    # Malformed messages are ignored, never an error in the grader.
    for junk in (None, [], {"name": ["conv2d"], "index": 1}, {"name": "conv2d", "index": "1", "files": {}},
                 {"name": "conv2d", "index": True, "files": {"1.json": "0"}}, {"name": "conv2d", "index": -1},
                 {"name": "conv2d", "index": 5, "files": {"../x": "0"}}):
        recordings.receive(junk)
    assert set(recordings.digests["conv2d"]) == {4, 5} and recordings.digests["conv2d"][5] == "duplicate"


def test_digests_reach_the_grader_from_a_real_kernel(tmp_path):
    """In a notebook kernel, capture publishes one display_data digest per record."""
    from jupyter_client.manager import start_new_kernel

    work, private = tmp_path / "work", tmp_path / "private"
    work.mkdir()
    private.mkdir()
    judge = Judge({"conv_output_size": problems_for(A)["conv_output_size"]}, 9, work / ".gradekit")
    judge.prepare()
    recordings = Recordings(work, private, 2**28)
    recordings.clear("conv_output_size")
    repo = Path(__file__).resolve().parent.parent
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(work),
                              env={**os.environ, "PYTHONPATH": str(repo)})
    messages = []
    try:
        code = ("import inspect, threading\n" + "from solutions.w1_conv_arithmetic import conv_output_size\n"
                "import gradekit; gradekit.capture('conv_output_size', globals())\n")
        reply = kc.execute_interactive(code, output_hook=messages.append, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        records = sorted((work / ".gradekit" / "out" / "conv_output_size").glob("*.json"))
        kept = {p.name: p.read_bytes() for p in records}
        # A thread the notebook left running: in a kernel, no request runs.
        code = ("_stop = threading.Event()\n"
                "threading.Thread(target=_stop.wait, name='left-running', daemon=True).start()\n"
                "gradekit.capture('conv_output_size', globals())\n_stop.set()\n")
        reply = kc.execute_interactive(code, output_hook=lambda m: None, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        refused = json.loads((work / ".gradekit" / "out" / "conv_output_size" / "0.json").read_text())
        assert refused["status"] == "error" and refused["error"]["type"] == "ProcessNotAllowed", refused
        assert LEFTOVER_MESSAGE in refused["error"]["message"] and "left-running" in refused["error"]["message"]
        for name, data in kept.items():  # the first run's records, as they were, for the judge below
            (work / ".gradekit" / "out" / "conv_output_size" / name).write_bytes(data)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    digests = [m["content"]["data"][DIGEST_MIME] for m in messages
               if m["msg_type"] == "display_data" and DIGEST_MIME in m["content"].get("data", {})]
    assert [d["index"] for d in digests] == list(range(len(judge.cases["conv_output_size"])))
    for d in digests:
        recordings.receive(d)
    recordings.take("conv_output_size")
    judge.workdir = private
    verdict = judge.collect()["conv_output_size"]
    assert (verdict.status, verdict.fraction) == ("passed", 1.0), text(verdict)


def test_work_scheduled_on_the_kernels_output_thread_is_traced(tmp_path):
    """The kernel's IOPub thread runs what is scheduled on it: traced for the whole capture."""
    from jupyter_client.manager import start_new_kernel

    work = tmp_path / "work"
    work.mkdir()
    judge = Judge({"conv2d": problems_for(A)["conv2d"]}, 3, work / ".gradekit")
    judge.prepare()
    repo = Path(__file__).resolve().parent.parent
    source = (CHEATS / "escape_kernel_output_thread.py").read_text()
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(work), env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        reply = kc.execute_interactive(source + "\nimport gradekit; gradekit.capture('conv2d', globals())\n",
                                       output_hook=lambda m: None, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    verdict = judge.collect()["conv2d"]
    assert verdict.fraction == 0.0 and "implement yourself" in text(verdict), text(verdict)
    record = json.loads((work / ".gradekit" / "out" / "conv2d" / "0.json").read_text())
    assert "aten.convolution" in record["ops"]


# ----------------------------------------------------------------------------- the speed case
def _speed(verdict) -> bool:
    return verdict.groups.get("speed", False)


_MEMO: dict = {}


def slow_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The reference on small inputs; on the speed case's input, a loop over images and
    output pixels (right, and far slower than F.conv2d)."""
    if x.shape[0] != 8 or groups != 1 or dilation != 1 or stride != 1:
        return ref.conv2d(x, weight, bias, stride, padding, dilation, groups)
    xp = torch.nn.functional.pad(x, (padding,) * 4)
    kh, kw = weight.shape[2:]
    h, w = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    flat = weight.reshape(weight.shape[0], -1)
    out = torch.empty(x.shape[0], weight.shape[0], h, w, dtype=x.dtype)
    for n in range(x.shape[0]):
        for i in range(h):
            for j in range(w):
                out[n, :, i, j] = flat @ xp[n, :, i:i + kh, j:j + kw].reshape(-1)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def memoising_slow_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The slow loop, with results remembered by input shape: only the first call is slow."""
    key = (tuple(x.shape), tuple(weight.shape), stride, padding, dilation, groups, bias is None)
    if key not in _MEMO:
        _MEMO[key] = slow_conv(x, weight, bias, stride, padding, dilation, groups)
    return _MEMO[key]


def storage_swapping_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The slow loop, then swaps a much larger tensor into its input's storage, so that a
    baseline timed on the same tensor object looks slow too."""
    out = slow_conv(x, weight, bias, stride, padding, dilation, groups)
    if x.shape[0] == 8:
        x.set_(torch.randn(64, x.shape[1], 96, 96, dtype=x.dtype))
    return out


def builtin_when_timed(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The reference everywhere, except F.conv2d on the large input of the speed case."""
    if x.shape[0] == 8:
        return _conv(x, weight, bias, stride, padding, dilation, groups)
    return ref.conv2d(x, weight, bias, stride, padding, dilation, groups)


def test_speed_record_holds_one_value_per_call_and_both_timings(tmp_path):
    judge = Judge({"conv2d": problems_for(A)["conv2d"]}, 4, tmp_path)
    judge.prepare()
    requests = json.loads((tmp_path / "cases" / "conv2d.json").read_text())
    request = next(r for r in requests if r["proc"] == "timing")
    out = tmp_path / "out"
    record = run_request(request, {"conv2d": ref.conv2d}, tmp_path / "cases", out, "c0_")
    assert record["status"] == "ok", record
    repeats = len(request["inputs"]) - 1
    assert len(record["values"]) == repeats + 1
    assert len(record["student_times"]) == len(record["baseline_times"]) == repeats
    assert record["student_s"] == float(np.median(record["student_times"]))
    assert "aten.convolution" not in record["ops"] and record["ops"]
    assert torch.get_num_threads() == 1  # restored (the fixture's setting)


@pytest.mark.parametrize("fn", [memoising_slow_conv, storage_swapping_conv, builtin_when_timed],
                         ids=["memoising", "storage_swapping", "builtin_when_timed"])
def test_the_speed_case_cannot_be_gamed(fn):
    _MEMO.clear()
    verdict = grade(fn, seed=6)
    assert not _speed(verdict), text(verdict)
    if fn is builtin_when_timed:
        assert verdict.fraction == 0.0 and "implement yourself" in text(verdict)


def test_honest_vectorised_conv_is_fast_enough():
    verdict = grade(ref.conv2d, seed=6)
    assert _speed(verdict), text(verdict)


# ----------------------------------------------------------------------------- the cheat files
CHEATS = Path(__file__).resolve().parent / "cheats"


def cheat(stem: str):
    spec = importlib.util.spec_from_file_location(f"cheat_{stem}", CHEATS / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stem", ["escape_dataloader_workers", "escape_thread", "escape_fork"])
def test_escape_cheats_score_nothing(stem):
    verdict = grade(cheat(stem).conv2d)
    assert verdict.fraction == 0.0 and "not allowed while graded code runs" in text(verdict), text(verdict)


def test_record_rewriting_cheat_is_refused_and_real(tmp_path):
    conv2d = cheat("records_rewrite_ops").conv2d
    verdict = judged(tmp_path / "defended", "conv2d", conv2d)
    assert verdict.fraction == 0.0, text(verdict)
    assert "changed after it was written" in text(verdict)
    # Without the digests (the judge trusting whatever it finds), the same cheat passes everything but speed.
    (tmp_path / "defended" / "private" / "digests" / "conv2d.json").unlink()
    judge = Judge({"conv2d": problems_for(A)["conv2d"]}, 5, tmp_path / "defended" / "work" / ".gradekit")
    judge.prepare()  # the same cases (same seed)
    judge.workdir = tmp_path / "defended" / "private"
    open_verdict = judge.collect()["conv2d"]
    assert open_verdict.fraction >= 0.9, "\n".join(open_verdict.lines)


@pytest.mark.parametrize("stem", ["speed_memoising", "speed_storage_swap", "speed_builtin_when_timed"])
def test_speed_cheats_score_nothing(stem):
    verdict = grade(cheat(stem).conv2d, seed=6)
    assert verdict.fraction == 0.0, text(verdict)


# ----------------------------------------------------------------------------- time limits
def test_code_that_loops_costs_one_time_limit_per_problem(tmp_path, monkeypatch):
    """After one case of a problem runs out of time, its later cases get AFTER_TIMEOUT_SECONDS:
    a function that never returns costs about one case's limit, not one per case; every case
    still reads as a timeout."""
    problem = problems_for(A)["conv_output_size"]
    monkeypatch.setattr(type(problem), "seconds", 1.5)
    monkeypatch.setattr(capture_module, "AFTER_TIMEOUT_SECONDS", 0.1)

    def loops(*args, **kwargs):
        while True:
            pass

    start = time.monotonic()
    verdict = judged(tmp_path, "conv_output_size", loops)
    elapsed = time.monotonic() - start
    cases = len(json.loads((tmp_path / "work" / ".gradekit" / "cases" / "conv_output_size.json").read_text()))
    assert verdict.status == "timeout", text(verdict)
    assert cases >= 5 and elapsed < 1.5 + 0.5 * cases, (cases, elapsed)  # one limit each: 1.5 s x cases


def test_code_slow_once_keeps_the_cases_it_answers(tmp_path, monkeypatch):
    """A solution that is too slow on one case still answers the cases after it (each well inside
    the shortened limit): its partial credit is kept."""
    monkeypatch.setattr(type(problems_for(A)["conv_output_size"]), "seconds", 1.0)
    calls = []

    def slow_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            while True:
                pass
        return ref.conv_output_size(*args, **kwargs)

    verdict = judged(tmp_path, "conv_output_size", slow_once)
    assert 0 < verdict.fraction < 1 and verdict.status == "failed", text(verdict)
