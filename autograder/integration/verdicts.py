"""From the judge's verdicts to the notebook: the reason a stopped kernel gives unfinished problems,
provenance, the sandbox's record, and the test cells' outputs and metadata nbgrader reads."""
from __future__ import annotations

import json
import re
import time

from nbformat.v4 import new_output

from ..isolation.sandbox.core import Sandbox
from ..isolation.sandbox.limits import GiB, MiB
from ..isolation.source_check import foreign_definition
from ..problem import Verdict
from .cells import captured_names, is_test_cell, student_sources

_STOPPED = {"out of memory": "out of memory", "timeout": "timeout"}


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


class VerdictRules:
    """How :class:`~.execute.JudgedExecute` turns the judge's verdicts into grades (a mixin)."""

    def _verdicts(self, judge, private, nb, sandbox: Sandbox, error, findings: list[str]) -> dict[str, Verdict]:
        """The judge's verdicts on the copied recordings, with the reason the kernel stopped,
        provenance and integrity findings applied."""
        run = self._run
        judge.workdir = private
        sources = student_sources(nb)
        verdicts = judge.collect(sources, kernel_died=error is not None or sandbox.reason is not None)
        verdicts = self._statuses(verdicts, run, sandbox, error)
        if self.integrity != "off":
            verdicts = self._provenance(verdicts, sources)
        if findings:
            verdicts = self._integrity(verdicts, findings)
        return verdicts

    def _statuses(self, verdicts: dict[str, Verdict], run: dict, sandbox: Sandbox, error) -> dict[str, Verdict]:
        """Give problems the kernel did not finish the reason it stopped."""
        stopped = sandbox.reason
        for name, verdict in verdicts.items():
            if name in run["recordings"].oversize:
                verdicts[name] = Verdict(name, "error", 0.0, [
                    f"{name}: not graded: the results it produced are larger than the grader "
                    f"accepts ({self.max_record_bytes // MiB} MiB)."])
            elif verdict.status == "passed":
                continue
            elif stopped in _STOPPED and verdict.status in ("kernel died", "missing"):
                why = (f"the notebook used more than {self.memory_limit / GiB:.1f} GiB of memory and was stopped"
                       if stopped == "out of memory" else
                       f"the notebook ran past its time limit ({self.notebook_timeout} s) and was stopped")
                verdict.status = _STOPPED[stopped]
                if not verdict.groups:  # nothing was recorded: say why, not "died" or "did not run"
                    verdict.lines = [f"{name}: not graded, {why} before this test finished."]
                else:
                    verdict.lines = verdict.lines + [f"  ({why})"]
            elif name in run["definition_timeouts"] and verdict.status in ("missing", "failed", "error"):
                verdict.status, verdict.fraction, verdict.groups = "timeout", 0.0, {}
                verdict.lines = [f"{name}: not graded, the cell that defines it (cell {run['definition_timeouts'][name] + 1}) "
                                 f"ran past the time limit of {self.code_cell_timeout} s for cells that are not "
                                 "tests and was interrupted (an infinite loop, or far too slow)."]
            elif name in run["cell_timeouts"]:
                verdict.status = "timeout"
                why = f"its test cell ran past the time limit of {self.timeout} s and was interrupted"
                if verdict.groups:  # some results were recorded and judged
                    verdict.lines = verdict.lines + [f"  ({why})"]
                else:
                    verdict.lines = [f"{name}: not graded, {why} (an infinite loop, or far too slow)."]
            elif verdict.status == "missing" and error is not None and name not in run["ran"]:
                verdict.status = "kernel died"
        return verdicts

    @staticmethod
    def _provenance(verdicts: dict[str, Verdict], sources: list[str]) -> dict[str, Verdict]:
        """A graded name that the notebook's cells do not define (imported from a module
        written or submitted beside the notebook, loaded with ``exec``...) is not
        implemented: only code in the notebook's cells is graded."""
        out = {}
        for name, verdict in verdicts.items():
            out[name] = verdict
            if verdict.status not in ("passed", "failed", "error", "missing"):
                continue
            reason = foreign_definition(sources, name)
            if reason is None:
                continue
            if verdict.status != "missing":
                out[name] = Verdict(name, "missing", 0.0, [
                    f"{name}: not graded: {reason}. Only code in the notebook's cells is graded: "
                    f"define {name} in its solution cell."])
            elif not reason.endswith("is not defined in the notebook's cells"):  # say where it went
                out[name] = Verdict(name, "missing", 0.0, verdict.lines + [
                    f"  ({reason}: only code in the notebook's cells is graded.)"])
        return out

    def _sandbox_record(self, sandbox: Sandbox, survivors: list[int], error, withheld: list[str], timings: dict,
                        judged: float, clock: float) -> dict:
        """The sandbox's record of the notebook (``metadata.gradekit.sandbox``): limits hit, time, memory."""
        run = self._run
        return {"mode": self.sandbox, "peak_memory_bytes": sandbox.peak_memory, "stopped": sandbox.reason,
                "seconds": round(time.monotonic() - sandbox.started, 2) if sandbox.started else None,
                "cpu_seconds": sandbox.cpu_seconds if sandbox.started else None,
                "uid": sandbox.uid, "gpu": sandbox.gpu_device, "survivors": survivors,
                "kernel_error": f"{type(error).__name__}: {error}"[:300] if error else None,
                "truncated_cells": sorted(run["truncated"]), "withheld_files": withheld[:50],
                "timings": {**{k: round(v, 3) for k, v in timings.items()},
                            "judge": round(time.monotonic() - judged, 3), "cells": run["cells"],
                            "total": round(time.monotonic() - clock, 3)}}

    def _finish(self, nb, verdicts, seed, notes, record, findings) -> None:
        for note in notes:  # on the problems it is about, else on the first one
            about = [n for n in verdicts if re.search(rf"\b(test_)?{re.escape(n)}\b", note)] or list(verdicts)[:1]
            for name in about:
                verdicts[name].lines = verdicts[name].lines + [f"  note: {note}"]
        report = annotate(nb, verdicts, seed)
        report["sandbox"] = record
        report["sanitize"] = notes
        report["integrity"] = findings
        nb.metadata["gradekit"] = json.loads(json.dumps(report, default=str))
        for name, verdict in verdicts.items():
            self.log.info("%s: %s (%.0f%%)", name, verdict.status, 100 * verdict.fraction)
