"""A student's week in a real browser: headless Chromium (Debian's ``chromium`` package,
driven through Playwright with ``executable_path`` pointed at it; no browser download)
against a JupyterLab started from the students' environment on 127.0.0.1.

The instructor (this repository's nbgrader, a temporary copy of the course) generates and
releases ``w1_conv_arithmetic`` into a temporary exchange; the student's Lab (``$HOME``,
``$USER`` and ``$CNN_COURSE_EXCHANGE`` of its own, and the student's id in
``~/.jupyter/nbgrader_config.py``) opens the Assignments tab, fetches the
week, opens its notebook, runs all cells, saves, clicks nbgrader's Validate button and reads
the result, then submits from the Assignments tab; the instructor runs ``nbgrader collect``
and finds the notebook the student ran under ``submitted/<student>/w1_conv_arithmetic/``.

Screenshots, replaced on each run, in ``test-artifacts/browser/`` at the repository root:

- ``01-assignments.png``: the Assignments tab listing the released week
- ``02-fetched.png``: the week fetched (Downloaded assignments)
- ``03-notebook-run.png``: the notebook after Run All, at the first failing check
- ``04-validate.png``: the dialog of nbgrader's Validate button
- ``05-submitted.png``: the Assignments tab after Submit (Submitted assignments)
- ``failure.png``: the page when a step failed (only then)

with ``jupyterlab.log``, the student's server log. Needs ``/usr/bin/chromium`` and the
``playwright`` package (``scripts/bootstrap.sh`` installs both); without them the test fails
and says so.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from autograder import COURSE_ID
from autograder.classgrade.sequential import nbgrader

from .conftest import make_course

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
ASSIGNMENT = "w1_conv_arithmetic"
STUDENT = "ada"
TOKEN = "cnn-course-browser-test"
SCREENSHOTS = ["01-assignments.png", "02-fetched.png", "03-notebook-run.png", "04-validate.png",
               "05-submitted.png"]
STEP_MS = 180_000  # one step's wait, generous: the machine may be busy

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(env: Path, root: Path, home: Path, exchange: Path, port: int, log: Path) -> subprocess.Popen:
    """The student's JupyterLab, from the students' environment only (its bin, its config)."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("JUPYTER")}
    environ |= {"PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": str(home), "USER": STUDENT, "LOGNAME": STUDENT,
                "CNN_COURSE_EXCHANGE": str(exchange)}
    # No "get Jupyter news?" toast over the screenshots.
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    # nbgrader names a submission after the OS account (root here), not $USER: the student's
    # id goes in their own nbgrader config, as ``--student`` does on the command line (demo.py).
    (home / ".jupyter" / "nbgrader_config.py").write_text(f"c.CourseDirectory.student_id = {STUDENT!r}\n")
    cmd = [str(env / "bin" / "jupyter"), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
           f"--ServerApp.root_dir={root}"]
    with log.open("w") as out:
        return subprocess.Popen(cmd, cwd=root, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for_lab(proc: subprocess.Popen, url: str, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"JupyterLab exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"JupyterLab did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """The server and its kernels (its own process group)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def sync_playwright():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test drives Debian's chromium package. Install it with "
                    "`apt-get install chromium` (scripts/bootstrap.sh does, as root or with sudo).")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]' (or scripts/bootstrap.sh)")
    return sync_playwright()


def expect(locator):
    from playwright.sync_api import expect

    return expect(locator)


KERNEL_DONE = """() => {
    const idle = Array.from(document.querySelectorAll('.jp-StatusBar-TextItem'))
        .some(e => /\\|\\s*Idle/.test(e.textContent));
    const queued = Array.from(document.querySelectorAll('.jp-InputPrompt'))
        .some(e => e.textContent.includes('*'));
    return idle && !queued;
}"""


@pytest.mark.timeout(900)
def test_student_fetches_runs_validates_and_submits_in_jupyterlab(student_env, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*SCREENSHOTS, "failure.png", "jupyterlab.log"]:
        (ARTIFACTS / old).unlink(missing_ok=True)
    course, exchange, home, root = (tmp_path / name for name in ("course", "exchange", "home", "student"))
    for folder in (exchange, home, root):
        folder.mkdir()
    exchange.chmod(0o777)
    log = tmp_path / "jupyterlab.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    playwright = sync_playwright()  # fails here, before anything starts, without a browser
    lab = start_lab(student_env, root, home, exchange, port, log)  # starts while the instructor releases
    try:
        make_course(course, [ASSIGNMENT])
        nbgrader(["release_assignment", ASSIGNMENT, "--force", f"--Exchange.root={exchange}"], course)
        wait_for_lab(lab, url, log)
        with playwright as p:
            in_chromium(p, lambda page: student_session(page, url), "failure.png")

        nbgrader(["collect", ASSIGNMENT, f"--Exchange.root={exchange}"], course)
    finally:
        stop(lab)
        shutil.copy(log, ARTIFACTS / "jupyterlab.log")

    collected = course / "submitted" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert collected.exists(), sorted(str(p.relative_to(course)) for p in course.rglob("*") if "submitted" in p.parts)
    assert (collected.parent / "timestamp.txt").exists()
    nb = nbformat.read(collected, as_version=4)
    ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert ran, "the collected notebook is not the one the student ran and saved"
    errors = [o.ename for c in ran for o in c.outputs if o.output_type == "error"]
    # Run All stops at the first self-check, which says its stub is not implemented: the cells above it ran
    assert errors == ["SelfCheckFailed"], errors
    for name in SCREENSHOTS:
        assert (ARTIFACTS / name).stat().st_size > 10_000, name


def in_chromium(p, session, failure: str, height: int = 900):
    """``session(page)`` in a headless Chromium page of the started Playwright ``p``; when a step
    fails, the page is saved as ``ARTIFACTS/<failure>`` before the error propagates."""
    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.set_default_timeout(STEP_MS)
    try:
        return session(page)
    except BaseException:
        try:
            page.screenshot(path=str(ARTIFACTS / failure))
        except Exception:  # the step's own error says more
            pass
        raise
    finally:
        browser.close()


def student_session(page, url: str) -> None:
    """Assignments tab -> Fetch -> open the notebook -> Run All -> save -> Validate -> Submit."""
    start = time.monotonic()

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / name))
        print(f"{time.monotonic() - start:6.1f} s  {name}")

    page.goto(f"{url}/lab?token={TOKEN}")
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.get_by_role("menuitem", name="Assignment List", exact=True).click()
    released = page.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT)
    released.get_by_role("button", name="Fetch").wait_for()
    assert COURSE_ID in released.inner_text()
    shot(SCREENSHOTS[0])

    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list > .list_item", has_text=ASSIGNMENT)
    fetched.get_by_role("button", name="Submit").wait_for()
    fetched.locator("a.assignment-notebooks-link").click()  # lists the week's notebooks
    notebook_link = fetched.locator(".nested_list_item a", has_text=ASSIGNMENT)
    notebook_link.wait_for()
    shot(SCREENSHOTS[1])

    notebook_link.click()
    panel = page.locator(".jp-NotebookPanel", has_text="conv_output_size")
    panel.wait_for()
    page.wait_for_function(KERNEL_DONE)  # the kernel has started and is idle
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    panel.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).first.wait_for()  # it began
    page.wait_for_function(KERNEL_DONE)
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')")
    error = panel.locator(".jp-OutputArea-output", has_text="NotImplementedError").first
    error.scroll_into_view_if_needed()
    shot(SCREENSHOTS[2])

    panel.locator(".validate-button").get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    text = dialog.inner_text()
    assert "Validation Results" in text, text[:2000]
    # the blank release: each problem's self-check says its stub is not implemented
    assert "The following cell failed" in text and "not implemented yet" in text, text[:2000]
    shot(SCREENSHOTS[3])
    dialog.get_by_role("button", name="Ok").click()
    dialog.wait_for(state="hidden")

    page.get_by_role("tab", name="Assignments").click()
    submit = fetched.get_by_role("button", name="Submit")
    submit.click()
    submitted = page.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT)
    submitted.wait_for()
    expect(submit).to_be_enabled(timeout=STEP_MS)  # the submission is done
    shot(SCREENSHOTS[4])
