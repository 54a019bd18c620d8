"""Before the kernel starts: the scratch folder (the submission copied, the judge's inputs written
and staged out of the kernel's view), the sandbox built and started, the notebook's seed, and the
instructor's source notebook read."""
from __future__ import annotations

import copy
import time
from pathlib import Path

from nbgrader.utils import is_solution

from gradekit.capture import WORKDIR_NAME

from ..isolation.sandbox.core import Sandbox
from ..isolation.sandbox.errors import GradingInfrastructureError, SandboxError
from ..isolation.sandbox.files import safe_copytree
from ..isolation.sandbox.limits import Limits, MiB
from ..judge import Judge
from ..seeds import SECRET_FILE, course_secret, grading_seed
from .cells import SKIP_TAG, _read_code_cells, is_test_cell


class GradingPreparation:
    """What :class:`~.execute.JudgedExecute` does before a notebook's kernel starts (a mixin)."""

    def _limits(self) -> Limits:
        return Limits(memory=self.memory_limit, address_space=self.address_space_limit,
                      processes=self.max_processes, file_size=self.max_file_size,
                      tmp_size=self.tmp_size, work_size=self.work_size,
                      record_size=self.max_record_bytes + 16 * MiB, wall_time=self.notebook_timeout or None)

    def _source_cells(self, resources) -> list:
        """The code cells of the instructor's source notebook ([] when it cannot be read)."""
        meta = resources.get("nbgrader", {})
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(parent=self)
            path = Path(coursedir.format_path(coursedir.source_directory, ".", meta["assignment"])) \
                / f"{meta['notebook']}.ipynb"
            info = path.stat()
            return copy.deepcopy(_read_code_cells(str(path), info.st_mtime_ns, info.st_size))
        except Exception:  # noqa: BLE001  (no source notebook)
            return []

    def _skipped_sources(self, source_cells: list) -> set[str]:
        """Demonstrations the instructor tagged :data:`SKIP_TAG` in the source notebook: not run
        while grading (matched by their text, so a student's own cell is never skipped)."""
        if not self.skip_tagged_cells:
            return set()
        return {c.source.strip() for c in source_cells
                if SKIP_TAG in (c.get("metadata", {}).get("tags") or []) and not is_solution(c) and not is_test_cell(c)}

    def _seed(self, resources) -> int:
        meta = resources.get("nbgrader", {})
        if self.secret_file:
            path = Path(self.secret_file)
        else:
            from nbgrader.coursedir import CourseDirectory

            path = Path(CourseDirectory(parent=self).root) / SECRET_FILE
        return grading_seed(course_secret(path), meta.get("assignment", ""), meta.get("student", ""),
                            meta.get("notebook", ""))

    def _prepare_scratch(self, scratch: Path, source_dir: Path, cases: Path, problems, seed: int, notes: list[str],
                         timings: dict, clock: float):
        """The scratch folder: the submission copied in (code withheld when sandboxed), the judge's
        inputs written, then staged where the kernel cannot read them. Returns the judge, the
        staged cases' folder and the withheld files."""
        isolated = self.sandbox != "none"
        work, private = scratch / "work", scratch / "private"
        withheld: list[str] = []
        try:
            scratch.chmod(0o711)
            private.mkdir(mode=0o700)
            # Trusted code (sandbox = "none") gets the folder as it is, like stock nbgrader.
            skipped = safe_copytree(source_dir, work, withheld=withheld, withhold_code=isolated)
            judge = Judge(problems, seed, cases)
            judge.prepare()
            timings["prepare"] = time.monotonic() - clock
            # The kernel sees a problem's inputs only from its test cell on: a definition cell cannot
            # read them ahead and answer from a lookup table computed with built-ins.
            staged = private / "cases"
            (cases / "cases").rename(staged)
            (cases / "cases").mkdir(mode=0o755)
        except OSError as exc:  # the grader's own disk: not the student's doing
            raise GradingInfrastructureError(f"cannot prepare the grader's scratch folder: {exc}") from exc
        if skipped:
            self.log.warning("not copied into the sandbox (links, special, too deep or too large files): %s",
                             skipped[:20])
        if withheld:
            shown = ", ".join(withheld[:6]) + (f" and {len(withheld) - 6} more" if len(withheld) > 6 else "")
            notes.append(f"files beside the notebook that Python could import or run were not available "
                         f"while grading ({shown}): only code in the notebook's cells is graded.")
        return judge, staged, withheld

    def _new_sandbox(self, work: Path, rundir: Path, cases: Path) -> Sandbox:
        """The notebook's sandbox, from the executor's settings (not started yet)."""
        isolated = self.sandbox != "none"
        return Sandbox(work, rundir, mode=self.sandbox, limits=self._limits(),
                      ro_paths=list(self.extra_ro_paths), kernel_packages=tuple(self.kernel_packages),
                      hidden_packages=tuple(self.hidden_packages), gpu=self.gpu, gpu_wait=self.gpu_wait,
                      lock_dir=Path(self.lock_dir), uid_base=self.sandbox_uid, threads=self.threads,
                      bwrap=self.bwrap, cases=(cases / "cases") if isolated else None,
                      gradekit_dir=WORKDIR_NAME)

    @staticmethod
    def _start_sandbox(sandbox: Sandbox) -> None:
        """Check the sandbox's tools, take its uid slot and GPU: a failure there is the grader's, not the
        student's."""
        try:
            sandbox.prepare()
        except OSError as exc:
            sandbox.close()
            raise GradingInfrastructureError(f"cannot prepare the sandbox: {exc}") from exc
        except SandboxError as exc:
            sandbox.close()
            raise GradingInfrastructureError(str(exc)) from exc
