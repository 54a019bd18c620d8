"""nbclient's hooks, as :class:`~.execute.JudgedExecute` uses them: the sandboxed kernel manager,
record digests taken out of the outputs and long outputs cut, test cells' cases released and
records taken around each cell, per-cell time limits."""
from __future__ import annotations

import time

from nbformat.v4 import new_output
from nbgrader.utils import is_solution

from gradekit.capture import DIGEST_MIME

from ..isolation.sandbox.kernel import SandboxedKernelManager
from ..notebooks import defined_names
from .cells import SKIPPED_TEXT, captured_names, is_test_cell
from .recordings import release_cases


class CellHooks:
    """The nbclient hooks of :class:`~.execute.JudgedExecute` (a mixin placed before ``Execute``:
    ``super()`` reaches nbclient's own)."""

    # ---------------------------------------------------------------- kernel
    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        run = self._run
        if run is not None and isinstance(km, SandboxedKernelManager):
            km.sandbox = run["sandbox"]
            if run["sandbox"].isolated:
                km.transport = "ipc"
                km.connection_file = str(run["sandbox"].rundir / "kernel.json")
                km.ip = str(run["sandbox"].rundir / "kernel-ipc")
        return km

    def output(self, outs, msg, display_id, cell_index):
        """Record digests are taken out of the outputs and long outputs cut (nbclient has no
        hook that can drop or change an output, hence this override)."""
        run = self._run
        if run is not None:
            content = msg.get("content", {})
            data = content.get("data") if isinstance(content, dict) else None
            if isinstance(data, dict) and DIGEST_MIME in data:  # a record's digest: never an output
                if msg.get("msg_type", msg.get("header", {}).get("msg_type")) == "display_data":
                    run["recordings"].receive(data[DIGEST_MIME])
                return None
            size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in (content.get("data") or {}).values())
            used = run["output_bytes"].get(cell_index, 0) + size
            run["output_bytes"][cell_index] = used
            if used > self.max_output_bytes:
                if cell_index not in run["truncated"]:
                    run["truncated"].add(cell_index)
                    outs.append(new_output("stream", name="stdout",
                                           text=f"\n[output truncated by the grader after {self.max_output_bytes} bytes]\n"))
                return None
        return super().output(outs, msg, display_id, cell_index)

    def _on_cell_start(self, cell, cell_index):
        """nbclient's ``on_cell_start`` hook: a test cell's cases are released and its old
        records cleared just before it runs; the first code cell seals the run folder."""
        run = self._run
        if run is None:
            return
        for name in captured_names(cell.source) if is_test_cell(cell) else []:
            run["recordings"].clear(name)
            release_cases(name, *run["cases"])
        if cell.cell_type == "code":
            if run["cells_started"] == 0:  # the kernel is up, its sockets bound
                run["timings"]["kernel start"] = time.monotonic() - run["clock"]
                run["sandbox"].seal_rundir()
            run["cells_started"] += 1

    def preprocess_cell(self, cell, resources, index):
        """The records of a test cell are taken after it ran, whatever ended it (a timeout or a
        dead kernel raise past nbclient's ``on_cell_executed`` hook, hence this override).
        A demonstration the instructor tagged :data:`SKIP_TAG` is not run: it says so instead."""
        run = self._run
        if run is not None and cell.cell_type == "code" and cell.source.strip() in run["skipped"]:
            cell.outputs = [new_output("stream", name="stdout", text=SKIPPED_TEXT)]
            cell.execution_count = None
            run["cells"].append((index, "skipped", 0.0))
            return cell, resources
        names = captured_names(cell.source) if run is not None and is_test_cell(cell) else []
        started = time.monotonic()
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            if run is not None:
                run["last_cell_end"] = time.monotonic()
            if run is not None and cell.cell_type == "code":
                kind = "test" if is_test_cell(cell) else "solution" if is_solution(cell) else "other"
                run["cells"].append((index, kind, round(time.monotonic() - started, 3)))
            if run is not None and cell.cell_type == "code" and not names and not is_test_cell(cell):
                limit = self._get_timeout(cell)
                if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])) or \
                        (limit and time.monotonic() - started >= limit):
                    for name in defined_names(cell.source):
                        run["definition_timeouts"][name] = index
            if names:
                for name in names:
                    run["recordings"].take(name)
                run["ran"].update(names)
                timed_out = any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))
                if timed_out or (self.timeout and time.monotonic() - started >= self.timeout):
                    run["cell_timeouts"].update(names)

    def _get_timeout(self, cell):
        """nbclient's per-cell limit: test cells the budget of their cases, other cells
        (solutions, demonstrations) ``code_cell_timeout``."""
        if self._run is not None and cell is not None and not is_test_cell(cell) and self.code_cell_timeout > 0:
            return self.code_cell_timeout
        return super()._get_timeout(cell)
