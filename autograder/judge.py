"""The trusted judge: writes hidden inputs, reads what the kernel recorded, decides.

It runs in the grader's own process (never in the student's kernel) and never
imports or executes student code: it reads plain data (JSON, ``.npy`` without
pickles) and the notebook's source text.

Life cycle for one notebook::

    judge = Judge(problems, seed, workdir)
    judge.prepare()            # writes workdir/cases/<name>.json (+ arrays)
    ... the kernel runs the notebook; each hidden test cell calls gradekit.capture ...
    verdicts = judge.collect(solution_sources)   # reads workdir/out/<name>/
"""
from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np

from gradekit.capture import file_digest
from gradekit.codec import CodecError, Reader, Writer, dump_json, load_json
from gradekit.trace import describe_call, trace_hits

from .cases.sample import Draw
from .problem import Case, CheckBug, Outcome, Problem, Verdict, error_message
from .isolation.source_check import banned_uses, defining_cells

_KERNEL_STATUS = {"timeout": "timeout", "oom": "out of memory"}
_RECORD_FILE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
#: Why a record is refused (see :func:`record_problem`), as the student reads it.
RECORD_REFUSED = {
    "changed": "the result recorded for this check was changed after it was written (by code that ran "
               "later, or in the background): results are the grader's, leave its files alone",
    "no digest": "the grader did not receive the confirmation the kernel sends for this result (its "
                 "output was blocked or replaced): leave the notebook's output machinery alone",
    "duplicate": "the grader received more than one confirmation for this result: output imitating "
                 "the grader's was printed",
}


def record_problem(out_dir: Path, index: int, digests: dict) -> str | None:
    """Why record ``index`` in ``out_dir`` cannot be trusted (a key of :data:`RECORD_REFUSED`), or None.

    ``digests``: record index (str) -> ``{file: sha256}`` as the kernel published them
    right after writing the record (or ``"duplicate"``).
    """
    entry = digests.get(str(index))
    if entry is None:
        return "no digest"
    if not isinstance(entry, dict):
        return "duplicate"
    if f"{index}.json" not in entry:
        return "changed"
    for name, expected in entry.items():
        if not isinstance(name, str) or not _RECORD_FILE.match(name) or name in (".", ".."):
            return "changed"
        path = out_dir / name
        try:
            if path.is_symlink() or not path.is_file() or file_digest(path) != expected:
                return "changed"
        except OSError:
            return "changed"
    return None


#: Said under a report whose passing validation groups earn less than their weight.
VALIDATION_NOTE = "argument validation (raising for bad arguments) earns its weight in proportion to the " \
                  "other checks passed"


def group_score(passed: dict[str, bool], weights: dict[str, float], validation: set[str]) -> float:
    """A problem's score in [0, 1] from its groups (``passed``: group -> all its cases passed).

    A passing group earns its weight; a validation group (all of whose cases expect an
    exception) earns its weight times the share, by weight, of the other groups that pass,
    so raising for every input earns nothing and rejecting bad arguments counts as far as
    the function works on good ones (a problem with validation groups only: their weight).
    The sum is divided by the total weight.
    """
    total = sum(weights.values()) or 1.0
    valid = {g: w for g, w in weights.items() if g not in validation}
    share = sum(w for g, w in valid.items() if passed[g]) / (sum(valid.values()) or 1.0) if valid else 1.0
    return sum(w * (share if g in validation else 1.0) for g, w in weights.items() if passed[g]) / total


def case_rng(seed: int, name: str) -> np.random.Generator:
    """The generator a problem's cases are drawn from: one per (seed, problem)."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


class Judge:
    def __init__(self, problems: dict[str, Problem], seed: int, workdir: Path, strict: bool = False):
        """``strict``: an exception in a check propagates (the test suite's mode: a bug in
        check code must fail loudly) instead of becoming a message for the student."""
        self.problems = problems
        self.strict = strict
        self.seed = int(seed)
        self.workdir = Path(workdir)
        self.cases: dict[str, list[Case]] = {}

    # ------------------------------------------------------------------ prepare
    def prepare(self, select=None) -> None:
        """Draw every problem's cases and write their requests (``select(case)``: keep only some)."""
        for name, problem in self.problems.items():
            cases = [c for c in problem.cases(Draw(case_rng(self.seed, name))) if select is None or select(c)]
            self.write(name, cases)

    def write(self, name: str, cases: list[Case]) -> None:
        """Write the requests of ``cases`` for problem ``name`` (what the kernel reads)."""
        cases_dir = self.workdir / "cases"
        cases_dir.mkdir(parents=True, exist_ok=True)
        self.cases[name] = cases
        writer, requests = Writer(cases_dir, prefix=f"{name}_"), []
        for i, case in enumerate(cases):
            request = case.request() if callable(case.request) else case.request
            requests.append(writer.encode({"seconds": self.problems[name].seconds, "seed": self.seed % 2**31 + i,
                                           **request}))
        dump_json(cases_dir / f"{name}.json", requests)

    # ------------------------------------------------------------------ collect
    def _digests(self, name: str) -> dict | None:
        """The digests the grader received for ``name``'s records (``digests/<name>.json``,
        written by :class:`autograder.integration.recordings.Recordings`), or None where there is
        no such file (in-process grading, :mod:`autograder.local`, has no kernel to check)."""
        path = self.workdir / "digests" / f"{name}.json"
        if not path.exists():
            return None
        try:
            records = load_json(path).get("records")
        except (CodecError, ValueError, OSError, AttributeError):
            return {}
        return records if isinstance(records, dict) else {}

    def _outcomes(self, name: str) -> tuple[list[Outcome], bool]:
        out_dir = self.workdir / "out" / name
        reader = Reader(out_dir, as_torch=False)
        digests = self._digests(name)
        outcomes = []
        for i in range(len(self.cases[name])):
            path = out_dir / f"{i}.json"
            if not path.exists():
                outcomes.append(Outcome("missing"))
                continue
            refused = record_problem(out_dir, i, digests) if digests is not None else None
            if refused is not None:
                outcomes.append(Outcome("error", {"stage": "record", "error": {
                    "type": "RecordRefused", "message": RECORD_REFUSED[refused]}}))
                continue
            try:
                record = reader.decode(load_json(path))
                if not isinstance(record, dict) or not isinstance(record.get("status"), str):
                    raise CodecError("malformed record")
            except (CodecError, ValueError, OSError, json.JSONDecodeError) as exc:
                outcomes.append(Outcome("error", {"error": {"type": "GraderInputError",
                                                            "message": f"unreadable result ({exc})"}}))
                continue
            outcomes.append(Outcome(record["status"], record))
        return outcomes, (out_dir / "done.json").exists()

    def case_message(self, name: str, case: Case, outcome: Outcome) -> str | None:
        """One case's verdict: None when it passed, else what the student reads."""
        raised = (outcome.get("error") or {}).get("type") if outcome.status == "error" else None
        if case.raises and raised == case.raises and outcome.get("stage") == "call":
            return None
        if case.raises and raised and raised != "NotImplementedError" and outcome.get("stage") == "call":
            return f"{case.label}: raised {raised}, expected {case.raises}"  # an error all the same
        if not outcome.ok:
            return error_message(name, outcome, case.label)
        try:
            return case.check(outcome)
        except CheckBug:
            raise
        except Exception as exc:  # noqa: BLE001  (malformed data from the kernel)
            if self.strict:
                raise
            return f"{case.label}: the result could not be checked ({type(exc).__name__})"

    def judge_problem(self, name: str, sources: list[str] | None, kernel_died: bool = False) -> Verdict:
        problem, cases = self.problems[name], self.cases[name]
        outcomes, done = self._outcomes(name)
        if all(o.status == "missing" for o in outcomes):
            status = "kernel died" if kernel_died else "missing"
            why = ("the kernel died before this test ran" if kernel_died else
                   "its hidden test did not run: the test cell is missing, or the notebook "
                   "stopped (or timed out) before reaching it")
            return Verdict(name, status, 0.0, [f"{name}: not graded, {why}."])
        if all(o.status == "error" and o.get("stage") == "lookup" for o in outcomes):
            return Verdict(name, "missing", 0.0, [
                f"{name}: not graded, it is not defined when its test runs: the cell that defines it "
                "is missing, defines another name, or failed to run."])

        # Forbidden built-ins: in the source of the definition, or seen at run time.
        if sources is not None and problem.banned_names:
            used = sorted({u for src in defining_cells(sources, name) for u in banned_uses(src, problem.banned_names)})
            if used:
                return Verdict(name, "failed", 0.0, [
                    f"{name} uses {', '.join(used)}, a built-in this problem asks you to implement "
                    "yourself. Rewrite it with basic tensor operations."])
        banned = forbidden_at_run_time(problem, outcomes)
        if banned is not None:
            return banned

        groups: dict[str, bool] = {}
        first_failure: dict[str, str] = {}
        statuses = []
        wrong = 0  # cases that failed on a wrong answer (not an error, timeout...)
        for case, outcome in zip(cases, outcomes):
            message = self.case_message(name, case, outcome)
            raised = (outcome.get("error") or {}).get("type") if outcome.status == "error" else None
            if outcome.ok:
                wrong += message is not None
            elif not (case.raises and raised and raised != "NotImplementedError" and outcome.get("stage") == "call"):
                statuses.append(_KERNEL_STATUS.get(outcome.status, "error"))
            passed = message is None
            groups[case.group] = groups.get(case.group, True) and passed
            if not passed and case.group not in first_failure:
                first_failure[case.group] = message
        weights = {g: float(problem.group(g).weight) for g in groups}
        validation = {c.group for c in cases if c.raises} - {c.group for c in cases if not c.raises}
        fraction = group_score(groups, weights, validation)
        passed_groups = sum(groups.values())
        lines = [f"{name}: {passed_groups} of {len(groups)} checks passed"]
        for group, ok in groups.items():
            if ok:
                lines.append(f"  ok    {group}")
            else:
                lines.append(f"  FAIL  {group}: {first_failure[group]}")
                lines.append(f"        hint: {problem.group(group).hint}")
        if any(groups[g] for g in validation) and fraction < 1.0:
            lines.append(f"  note: {VALIDATION_NOTE}")
        if fraction == 1.0:
            status = "passed"
        elif statuses and not wrong and all(not groups[c.group] for c in cases) and len(set(statuses)) == 1:
            # Nothing passed and nothing was a wrong answer: what stopped every case.
            status = statuses[0]
        elif not done and kernel_died:
            status = "kernel died"
        else:
            status = "failed"
        if any(o.get("error", {}).get("type") == "NotImplementedError" for o in outcomes if not o.ok) \
                and fraction == 0.0:
            lines = [f"{name}: not implemented yet (the stub still raises NotImplementedError)."]
        return Verdict(name, status, round(fraction, 4), lines, groups)

    def collect(self, sources: list[str] | None = None, kernel_died: bool = False) -> dict[str, Verdict]:
        return {name: self.judge_problem(name, sources, kernel_died) for name in self.problems}


def forbidden_at_run_time(problem: Problem, outcomes: list[Outcome]) -> Verdict | None:
    """A zero verdict when what ran while the student's code ran is forbidden, else None.

    Decided from the kernel's trace (:mod:`gradekit.trace`), not from how the code is spelled:
    the trace switched off or bypassed (``tamper:``), an operator of ``problem.banned_ops`` or a
    Python function under ``problem.banned_calls`` that ran (in a forward, a build or a backward
    the judge asked for), or a class under ``problem.banned_classes`` in the type hierarchy of a
    built module or of its submodules.
    """
    name = problem.name
    ran = {op for o in outcomes if o.ok or o.status in ("error", "timeout") for op in (o.get("ops") or [])}
    hit, tamper = trace_hits(ran, problem.banned_ops, problem.banned_calls)
    if tamper:
        return Verdict(name, "failed", 0.0, [
            f"{name}: not graded: the grader's trace was switched off or bypassed while it ran "
            f"({', '.join(tamper[:3])}). Graded code may not change how PyTorch records what it runs."])
    prefixes = tuple(problem.banned_classes)
    classes = sorted({c for o in outcomes if o.ok and isinstance(o.facts, dict)
                      for c in (o.facts.get("lineage") or []) if isinstance(c, str) and c.startswith(prefixes)}) \
        if prefixes else []
    if classes:
        return Verdict(name, "failed", 0.0, [
            f"{name} is built from {', '.join(classes[:3])}, a library class that does the job this problem "
            "asks you to implement yourself. Build it from basic layers (nn.Conv2d, nn.BatchNorm2d, ...)."])
    if hit:
        return Verdict(name, "failed", 0.0, [
            f"{name} calls {', '.join(describe_call(h) for h in hit[:4])} while it runs, a built-in this "
            "problem asks you to implement yourself. Rewrite it with basic tensor operations."])
    return None
