"""The week-1 explorer in a real browser: headless Chromium (Playwright, Debian's ``chromium``)
against a JupyterLab started from the students' environment, as in ``tests/test_browser.py``,
whose helpers this test uses.

The instructor releases ``w1_conv_arithmetic`` (stock ``nbgrader generate_assignment`` on a
temporary copy of the course); the released folder is the student's working folder. The
student opens the blank notebook, runs the explorer's cell alone (it needs no solved
problem), reads the output size it shows, moves the ``stride`` slider one step with the
keyboard, and the output size and the drawing change.

Screenshots, replaced on each run, in ``test-artifacts/browser/``:

- ``06-explorer-before.png``: the explorer as first drawn (a 7x7 input, a 3x3 kernel)
- ``07-explorer-after.png``: after the stride slider moved from 1 to 2
- ``explorer-failure.png``: the page when a step failed (only then)
"""
from __future__ import annotations

import re
import shutil
import time

import pytest

from .conftest import make_course
from .test_browser import (ARTIFACTS, KERNEL_DONE, TOKEN, free_port, in_chromium, start_lab, stop, sync_playwright,
                           wait_for_lab)

ASSIGNMENT = "w1_conv_arithmetic"
SCREENSHOTS = ["06-explorer-before.png", "07-explorer-after.png"]

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_conv_explorer_responds_to_a_slider_in_jupyterlab(student_env, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*SCREENSHOTS, "explorer-failure.png"]:
        (ARTIFACTS / old).unlink(missing_ok=True)
    course, exchange, home, root = (tmp_path / name for name in ("course", "exchange", "home", "student"))
    for folder in (exchange, home, root):
        folder.mkdir()
    log = tmp_path / "jupyterlab.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    playwright = sync_playwright()  # fails here, before anything starts, without a browser
    make_course(course, [ASSIGNMENT])
    shutil.copytree(course / "release" / ASSIGNMENT, root / ASSIGNMENT)
    lab = start_lab(student_env, root, home, exchange, port, log)
    try:
        wait_for_lab(lab, url, log)
        with playwright as p:
            sizes = in_chromium(p, lambda page: explorer_session(page, url), "explorer-failure.png", height=1000)
    finally:
        stop(lab)
        shutil.copy(log, ARTIFACTS / "jupyterlab-explorer.log")
    assert sizes == ("5 x 5", "3 x 3"), sizes  # (7 - 3) // 1 + 1 and (7 - 3) // 2 + 1, as nn.Conv2d gives
    for name in SCREENSHOTS:
        assert (ARTIFACTS / name).stat().st_size > 10_000, name


def explorer_session(page, url: str) -> tuple[str, str]:
    """Open the released notebook, run the explorer's cell, move the stride slider; return the
    output size shown before and after."""
    start = time.monotonic()

    def shot(name: str, cell) -> None:
        cell.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / name))
        print(f"{time.monotonic() - start:6.1f} s  {name}")

    page.goto(f"{url}/lab/tree/{ASSIGNMENT}/{ASSIGNMENT}.ipynb?token={TOKEN}")
    panel = page.locator(".jp-NotebookPanel", has_text="conv_output_size")
    panel.wait_for()
    page.wait_for_function(KERNEL_DONE)  # the kernel has started and is idle
    cell = panel.locator(".jp-CodeCell", has_text="from coursedata.explorers import conv_arithmetic")
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")  # run this cell only

    readout = cell.locator(".widget-html", has_text="output:")
    readout.wait_for()
    image = cell.locator("img.widget-image")
    image.wait_for()
    before = re.search(r"output: (\d+ x \d+)", readout.inner_text()).group(1)
    drawing = image.get_attribute("src")
    picture = image.screenshot()
    shot(SCREENSHOTS[0], cell)

    stride = cell.locator(".widget-slider", has_text="stride")
    stride.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")  # stride 1 -> 2
    page.wait_for_function("([el, old]) => !el.innerText.includes(old)",
                           arg=[readout.element_handle(), f"output: {before}"])
    after = re.search(r"output: (\d+ x \d+)", readout.inner_text()).group(1)
    page.wait_for_function("([el, old]) => el.getAttribute('src') !== old", arg=[image.element_handle(), drawing])
    page.wait_for_timeout(500)  # the new PNG decoded and painted
    assert image.screenshot() != picture, "the drawing did not change"
    assert stride.locator(".widget-readout").inner_text().strip() == "2"
    shot(SCREENSHOTS[1], cell)
    return before, after
