"""Every behavioural sentence of the course spec for weeks 3-5 is tied to a named check group.

``tests/spec_trace.py`` splits each week's section of ``docs/course-spec.md`` into sentences
and maps each one to the groups (``<graded name>/<group>``) that check it, or says why it
promises nothing about a student's code (data, a heading, the grader's procedure, measured
margins). A sentence added to the spec without an entry, an entry that no sentence (or more
than one) starts with, and a group that the problem does not declare or never draws all fail.
``test_counts`` prints the numbers for the closing note.
"""
from __future__ import annotations

import pytest

from autograder.cases import Draw
from autograder.checks import problems_for
from autograder.judge import case_rng

from .spec_trace import NOT_BEHAVIOURAL, TRACE, WEEKS, sentences

#: Seeds over which a mapped group must be drawn at least once.
DRAW_SEEDS = 2


def _entries(assignment: str) -> dict[str, str | tuple]:
    """Sentence -> its TRACE entry (a tuple of groups or a reason); fails on a sentence without
    exactly one entry, or an entry without exactly one sentence."""
    table, found = TRACE[assignment], {}
    text = sentences(assignment)
    for sentence in text:
        keys = [k for k in table if k in sentence]
        assert len(keys) == 1, f"{assignment}: {len(keys)} TRACE entries for the sentence: {sentence[:160]!r}"
        found[sentence] = table[keys[0]]
    for key in table:
        matches = [s for s in text if key in s]
        assert len(matches) == 1, f"{assignment}: the TRACE entry {key!r} starts {len(matches)} sentences"
    return found


@pytest.mark.parametrize("assignment", WEEKS)
def test_every_sentence_has_an_entry(assignment):
    entries = _entries(assignment)
    assert entries, f"no sentences found for {assignment}"
    for sentence, entry in entries.items():
        if isinstance(entry, str):
            assert entry in NOT_BEHAVIOURAL, (sentence[:80], entry)
        else:
            assert entry, f"{sentence[:80]!r}: a behavioural sentence needs at least one group"


@pytest.mark.parametrize("assignment", WEEKS)
def test_every_named_group_is_declared_and_drawn(assignment):
    problems = problems_for(assignment)
    drawn = {name: {c.group for seed in range(DRAW_SEEDS) for c in problem.cases(Draw(case_rng(seed, name)))}
             for name, problem in problems.items()}
    for sentence, entry in _entries(assignment).items():
        for item in () if isinstance(entry, str) else entry:
            name, _, group = item.partition("/")
            assert name in problems, f"{item}: no graded name {name!r} in {assignment} ({sentence[:60]!r})"
            assert group in {g.name for g in problems[name].groups}, f"{item}: {group!r} is not a group of {name}"
            assert group in drawn[name], f"{item}: {name} never draws a case of {group!r}"


def test_counts():
    """The numbers for the closing note: sentences, behavioural ones, and the groups they name."""
    total = behavioural = 0
    groups = set()
    for assignment in WEEKS:
        for entry in _entries(assignment).values():
            total += 1
            if not isinstance(entry, str):
                behavioural += 1
                groups |= {f"{assignment}:{g}" for g in entry}
    declared = sum(len(p.groups) for a in WEEKS for p in problems_for(a).values())
    print(f"weeks 3-5: {total} sentences, {behavioural} behavioural, tied to {len(groups)} of {declared} "
          "declared check groups")
    assert behavioural > total / 2 and len(groups) > declared / 2
