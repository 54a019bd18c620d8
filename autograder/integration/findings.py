"""Integrity findings: the static scan of the student's cells, what the graded kernel's audit hook
reported, and the zero they give every problem."""
from __future__ import annotations

from nbgrader.utils import is_solution

from ..isolation.sandbox.core import Sandbox
from ..isolation.sandbox.errors import GradingInfrastructureError
from ..isolation.sanitize.integrity import integrity_findings
from ..problem import Verdict
from .cells import is_test_cell


class IntegrityFindings:
    """How :class:`~.execute.JudgedExecute` finds code that reaches for the grader (a mixin)."""

    @staticmethod
    def _provided_sources(source_cells: list) -> set[str]:
        """Code cells of the instructor's source notebook that are not graded (trusted)."""
        return {c.source.strip() for c in source_cells if not is_solution(c) and not is_test_cell(c)}

    def _findings(self, nb, source_cells: list) -> list[str]:
        if self.integrity == "off":
            return []
        provided = self._provided_sources(source_cells)
        cells, context = [], []
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or is_test_cell(cell):
                continue
            if cell.source.strip() in provided:
                context.append(cell.source)
            else:
                cells.append((f"cell {i + 1}", cell.source))
        return integrity_findings(cells, context)

    def _channel_findings(self, sandbox: Sandbox, error) -> list[str]:
        """What the graded kernel's audit hook reported while the cells ran (:mod:`gradekit.kernel`):
        code made from data (pickle, marshal, exec...), and a channel closed while cells still ran."""
        channel = sandbox.channel_report()
        run = self._run
        if run["cells_started"] and not channel["ready"]:
            raise GradingInfrastructureError("the graded kernel's audit hook never reported (gradekit.kernel)")
        found = [f"while the notebook ran: {finding}" for finding in channel["findings"]]
        closed, last = channel["closed_at"], run.get("last_cell_end")
        if error is None and sandbox.reason is None and closed is not None and last is not None \
                and closed < last - 1.0:
            found.append("while the notebook ran: the grader's audit channel was closed by the notebook's code")
        return found

    @staticmethod
    def _integrity(verdicts: dict[str, Verdict], findings: list[str]) -> dict[str, Verdict]:
        """Zero for every problem; the status stays when it says more than "failed"."""
        shown = findings[:8] + ([f"... and {len(findings) - 8} more"] if len(findings) > 8 else [])
        out = {}
        for name, verdict in verdicts.items():
            status = "failed" if verdict.status in ("passed", "failed") else verdict.status
            out[name] = Verdict(name, status, 0.0, [
                f"{name}: not graded: the notebook contains code that interferes with the grader:",
                *[f"  {f}" for f in shown],
                "  Remove it and submit again; ask your instructor if you think this is a mistake."])
        return out
