"""nbgrader integration: an ``Execute`` replacement whose verdicts come from the judge.

``course/nbgrader_config.py`` puts :class:`JudgedExecute` where stock nbgrader has
``Execute`` in ``Autograde.autograde_preprocessors``. For each notebook it

1. draws a fresh seed and has the :class:`~autograder.judge.Judge` write hidden
   inputs into a private scratch copy of the submission folder;
2. runs the notebook there, in the student's kernel, exactly as ``Execute`` does
   (the hidden test cells, restored from the gradebook by ``OverwriteCells``,
   only record what the student's code returns);
3. judges the recordings in this process and *replaces the outputs* of every test
   cell that calls ``gradekit.capture``: a report on stdout and the cell's score as
   its only ``execute_result``, which nbgrader's ``SaveAutoGrades`` reads as partial
   credit. Whatever the student's code printed, raised or wrote to stderr in that
   cell no longer counts.

The verdicts also go to ``nb.metadata["gradekit"]`` (status, score and messages per
problem), which the class report and the demo read.
"""
from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from pathlib import Path

from nbgrader.preprocessors import Execute
from nbgrader.preprocessors.execute import UnresponsiveKernelError
from nbgrader.utils import is_grade, is_solution
from nbformat.v4 import new_output
from traitlets import Integer

from gradekit.capture import WORKDIR_NAME

from .checks import problems_for
from .judge import Judge
from .problem import Verdict

CAPTURE_RE = re.compile(r"gradekit\s*\.\s*capture\(\s*[\"']([A-Za-z0-9_]+)[\"']")


def captured_names(source: str) -> list[str]:
    """Problem names a (hidden) test cell asks the kernel to capture."""
    return CAPTURE_RE.findall(source)


def is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def student_sources(nb) -> list[str]:
    """Every code cell the student could have written (all but the test cells)."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code" and not is_test_cell(cell)]


def cell_report(names: list[str], verdicts: dict[str, Verdict], points: float) -> tuple[float, str]:
    fractions, lines = [], []
    for name in names:
        verdict = verdicts.get(name)
        if verdict is None:
            fractions.append(0.0)
            lines.append(f"{name}: unknown problem (ask your instructor)")
            continue
        fractions.append(verdict.fraction)
        lines.extend(verdict.lines)
    fraction = sum(fractions) / len(fractions) if fractions else 0.0
    score = round(points * fraction, 2)
    lines.append(f"score: {score:g} / {points:g}")
    return score, "\n".join(lines) + "\n"


def annotate(nb, verdicts: dict[str, Verdict], seed: int) -> dict:
    """Rewrite test-cell outputs from ``verdicts``; return the per-notebook report."""
    cells_report = {}
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        names = captured_names(cell.source)
        if not names:
            continue
        points = float(cell.metadata["nbgrader"].get("points", 0) or 0)
        score, text = cell_report(names, verdicts, points)
        cell.outputs = [
            new_output("stream", name="stdout", text=text),
            new_output("execute_result", data={"text/plain": f"{score}"},
                       execution_count=cell.get("execution_count")),
        ]
        cells_report[cell.metadata["nbgrader"]["grade_id"]] = {
            "problems": names, "score": score, "max_score": points}
    return {"seed": seed, "problems": {n: v.to_json() for n, v in verdicts.items()}, "cells": cells_report}


class JudgedExecute(Execute):
    """Execute the notebook in the student's kernel; score test cells with the judge."""

    seed = Integer(
        None, allow_none=True,
        help="Seed for the hidden cases. Default: a fresh random seed for every notebook, "
             "recorded in the autograded notebook's metadata.",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        problems = problems_for(assignment)
        if not problems:
            return super().preprocess(nb, resources)
        seed = self.seed if self.seed is not None else secrets.randbits(31)
        source_dir = Path(resources.get("metadata", {}).get("path") or ".")
        scratch = Path(tempfile.mkdtemp(prefix="gradekit-"))
        work = scratch / "work"
        shutil.copytree(source_dir, work, ignore=shutil.ignore_patterns("*.ipynb", WORKDIR_NAME))
        resources.setdefault("metadata", {})["path"] = str(work)
        judge = Judge(problems, seed, work / WORKDIR_NAME)
        judge.prepare()
        kernel_died = False
        try:
            try:
                nb, resources = super().preprocess(nb, resources)
            except UnresponsiveKernelError:
                raise
            except Exception as exc:  # noqa: BLE001  (DeadKernelError and friends)
                kernel_died = True
                self.log.warning("Kernel stopped while grading %s: %s", resources.get("unique_key"), exc)
            verdicts = judge.collect(student_sources(nb), kernel_died=kernel_died)
            report = annotate(nb, verdicts, seed)
            nb.metadata["gradekit"] = report
            for name, verdict in verdicts.items():
                self.log.info("%s: %s (%.0f%%)", name, verdict.status, 100 * verdict.fraction)
        finally:
            resources["metadata"]["path"] = str(source_dir)
            shutil.rmtree(scratch, ignore_errors=True)
        return nb, resources
