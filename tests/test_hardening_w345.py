"""Issue 20's attacks on weeks 3-5 (``tests/cheats_w345/``), graded with honest submissions.

For each of weeks 3, 4 and 5 a subset course (``tests/faults/harness345.py``: the week's
set-up cell and a few of its problems, one with a training smoke test at least) is graded by
one stock ``nbgrader autograde`` over its whole class with the course's sandboxed judge: the
full reference, the blank release and every corpus file of that week (attacks, the controls
they name, honest alternatives). The three batches run concurrently. Week 4 is graded at a
seed where the hidden cases of DepthwiseSeparableConv and ASPP repeat the release's public
cases when there is one (class 5's worst case); weeks 3 and 5 at seed 7.

Asserted: every attack scores no more than its control, on each problem it attacks and in
total (its control is the same work without the trick: another corpus file, or ``blank``,
the reference with the attacked problems left as stubs); every honest alternative keeps full
marks on the problems it answers; the reference gets full marks and the blank release zero.
A closing note (each attack and honest alternative with its statuses, scores and its
control's scores, and each batch's wall time) goes to ``$HARDENING_NOTE`` or
``closing-note-w345.md`` in the test's temporary folder; its path is printed.
"""
from __future__ import annotations

import ast
import os
import time
from pathlib import Path

import pytest

from .faults.harness345 import (WEEKS, Batch, control_scores, corpus, gradebook, implementations, make_course,
                                points, populate, public_seed, report, run_batches)

#: The batches grade 51 notebooks through stock nbgrader (about 25 minutes of a 2-core machine):
#: they run with ``make test-corpus`` (``pytest -m corpus``), not in ``make test``.
slow = pytest.mark.corpus

ENTRIES = corpus()
BY_STEM = {e.stem: e for e in ENTRIES}
ATTACKS = [e for e in ENTRIES if e.role == "attack"]
HONEST = [e for e in ENTRIES if e.role == "honest"]
#: Class 5's problems: week 4's seed is one where their hidden cases repeat the public ones.
POOLED = ("DepthwiseSeparableConv", "ASPP")
SEED = 7
TOLERANCE = 1e-6


# ----------------------------------------------------------------------------- the corpus itself
def test_the_corpus_covers_every_class_in_every_week():
    weeks = {k: {e.week.number for e in ATTACKS if e.klass == k} for k in range(1, 7)}
    for klass in range(1, 5):
        assert weeks[klass] == {3, 4, 5}, (klass, weeks[klass])
        assert sum(e.klass == klass for e in ATTACKS) >= 3, klass
    assert weeks[5] and weeks[6], weeks
    assert {e.week.number for e in HONEST} == {3, 4, 5}


def test_every_attack_names_a_control_of_its_own_week():
    for entry in ATTACKS:
        assert entry.attacked, entry.stem
        if entry.control != "blank":
            control = BY_STEM.get(entry.control)
            assert control is not None and control.role == "control", (entry.stem, entry.control)
            assert control.week is entry.week and set(entry.attacked) <= set(control.targets), entry.stem
    used = {e.control for e in ATTACKS}
    assert all(e.stem in used for e in ENTRIES if e.role == "control")


def test_every_corpus_cell_is_python():
    for entry in ENTRIES:
        for name, source in implementations(entry).items():
            ast.parse(source, f"{entry.stem}:{name}")


# ----------------------------------------------------------------------------- the batches
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("hardening-w345")
    seeds = {3: SEED, 5: SEED}
    seeds[4], repeated = public_seed(WEEKS[4], POOLED)
    roots = {}
    for number, week in WEEKS.items():
        entries = corpus(number)
        roots[number] = make_course(base / week.assignment, week, seed=seeds[number],
                                    selfcheck=any(e.pack_as for e in entries))
        populate(roots[number], week, entries)
    started = time.perf_counter()
    batches = [Batch(week.assignment, roots[number], week) for number, week in WEEKS.items()]
    run_batches(batches)
    wall = time.perf_counter() - started
    books = {b.week.number: gradebook(b.root, b.week) for b in batches}
    print(f"\nweek 3-5 autograde batches: {wall:.0f} s wall in all; "
          + ", ".join(f"{b.name} {b.seconds:.0f} s" for b in batches))
    return {"base": base, "batches": {b.week.number: b for b in batches}, "books": books, "wall": wall,
            "seeds": seeds, "repeated": repeated}


def scores(graded, entry_or_week, student: str | None = None) -> dict[str, float]:
    if student is None:
        return graded["books"][entry_or_week.week.number][entry_or_week.student]
    return graded["books"][entry_or_week][student]


def statuses(graded, week: int, student: str) -> dict[str, str]:
    batch = graded["batches"][week]
    return {n: p["status"] for n, p in report(batch.root, batch.week, student).get("problems", {}).items()}


@slow
def test_every_batch_grades_every_submission(graded):
    for number, batch in graded["batches"].items():
        log = (batch.root / "autograde.out").read_text()
        assert batch.killed is None and batch.returncode == 0, f"week {number}: {batch.killed} {log[-3000:]}"
        students = sorted(p.name for p in (batch.root / "submitted").iterdir())
        book = graded["books"][number]
        assert sorted(book) == students, number
        for student in students:
            assert book[student] is not None and set(book[student]) == set(batch.week.problems), (number, student)


@slow
def test_the_reference_gets_full_marks_and_the_blank_release_zero(graded):
    for number, week in WEEKS.items():
        assert scores(graded, number, "full") == points(week), (number, statuses(graded, number, "full"))
        assert set(scores(graded, number, "blank").values()) == {0.0}, number


@slow
@pytest.mark.parametrize("entry", HONEST, ids=lambda e: e.stem)
def test_honest_alternatives_keep_full_marks(graded, entry):
    got = scores(graded, entry)
    full = points(entry.week)
    lost = {n: (got[n], full[n]) for n in entry.week.problems if got[n] < full[n]}
    assert not lost, (lost, statuses(graded, entry.week.number, entry.student))


@slow
@pytest.mark.parametrize("entry", ATTACKS, ids=lambda e: e.stem)
def test_no_attack_scores_above_its_control(graded, entry):
    book = graded["books"][entry.week.number]
    got, control = book[entry.student], control_scores(entry, book)
    above = {n: (got[n], control[n]) for n in entry.attacked if got[n] > control[n] + TOLERANCE}
    total, control_total = sum(got.values()), sum(control.values())
    assert not above and total <= control_total + TOLERANCE, (
        f"{entry.stem} (class {entry.klass}) beats its control ({entry.control}): per problem {above}, "
        f"total {total:g} > {control_total:g}; statuses {statuses(graded, entry.week.number, entry.student)}")


# ----------------------------------------------------------------------------- closing note
def _why(graded, entry) -> str:
    """What the grader said: its first integrity finding, else for the first attacked problem
    that did not pass its failed groups and the end of the last failure's message (or the
    verdict's first line when no group ran: a ban)."""
    batch = graded["batches"][entry.week.number]
    rep = report(batch.root, batch.week, entry.student)
    if rep.get("integrity"):
        return "integrity: " + rep["integrity"][0][:110]
    for name in entry.attacked:
        verdict = rep.get("problems", {}).get(name, {})
        if verdict.get("status") == "passed":
            continue
        failed = [g for g, ok in (verdict.get("groups") or {}).items() if not ok]
        lines = [line.strip() for line in verdict.get("lines", [])]
        fails = [line for line in lines if line.startswith("FAIL")]
        if failed and fails:
            return f"{name} failed {', '.join(failed)}: ...{fails[-1][-100:]}".replace("|", "/")
        return (lines[0][:130] if lines else verdict.get("status", "?")).replace("|", "/")
    return "-"


def _row(graded, entry) -> str:
    book = graded["books"][entry.week.number]
    got = book[entry.student]
    full = points(entry.week)
    status = statuses(graded, entry.week.number, entry.student)
    parts = "; ".join(f"{n}: {status.get(n, '?')} ({got[n]:g}/{full[n]:g})" for n in entry.attacked)
    if entry.role == "honest":
        kept = all(got[n] >= full[n] for n in entry.week.problems)
        return f"| honest | w{entry.week.number} | {entry.stem} | {parts} | - | {sum(got.values()):g} | " \
               f"{'kept full marks' if kept else 'LOST POINTS'} | {'-' if kept else _why(graded, entry)} |"
    control = control_scores(entry, book)
    theirs = "; ".join(f"{n}: {control[n]:g}" for n in entry.attacked)
    beats = any(got[n] > control[n] + TOLERANCE for n in entry.attacked) or \
        sum(got.values()) > sum(control.values()) + TOLERANCE
    return (f"| {entry.klass} | w{entry.week.number} | {entry.stem} | {parts} | {entry.control}: {theirs} | "
            f"{sum(got.values()):g} vs {sum(control.values()):g} | {'BEATS ITS CONTROL' if beats else 'held'} | "
            f"{_why(graded, entry)} |")


@slow
def test_closing_note(graded):
    """Every attack and honest alternative with its outcome, and the batches' times."""
    lines = ["| class | week | submission | attacked problems: status (score) | control: its scores | "
             "total vs control | verdict | what the grader said |", "|---|---|---|---|---|---|---|---|"]
    lines += [_row(graded, e) for e in sorted(ATTACKS, key=lambda e: (e.klass, e.week.number, e.stem))]
    lines += [_row(graded, e) for e in HONEST]
    beaten = [e.stem for e in ATTACKS if "BEATS" in _row(graded, e)]
    lines += ["", f"attacks above their control: {len(beaten)} of {len(ATTACKS)}"
              + (f" ({', '.join(beaten)})" if beaten else ""), "",
              "| week | notebooks | seed | wall s | exit |", "|---|---|---|---|---|"]
    for number, batch in graded["batches"].items():
        count = len(list((batch.root / "submitted").iterdir()))
        lines.append(f"| {number} | {count} | {graded['seeds'][number]} | {batch.seconds or 0:.0f} | "
                     f"{batch.returncode} |")
    repeated = ", ".join(graded["repeated"]) or "none found"
    lines.append(f"\nweek 4's seed repeats the public cases of: {repeated}")
    lines.append(f"all batches, concurrently: {graded['wall']:.0f} s wall (on {os.cpu_count()} cores)")
    text = "\n".join(lines) + "\n"
    path = Path(os.environ.get("HARDENING_NOTE") or graded["base"] / "closing-note-w345.md")
    path.write_text(text)
    print("\n" + text + f"(written to {path})")
    assert len(lines) > len(ATTACKS) + len(HONEST)
