"""The decision note a learner writes in lab 06 (`decision-note.md`): per situation, the lever pulled first, why,
and the blast radius, judged against what the grader recorded. Pure: text and reference figures in, problems out.

Each situation is a `## Situation N` section with `Lever:` (rollback, disable or throttle), `Why:` and
`Blast radius:` (the policy-violating decisions served before the lever took effect, a whole number).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lab_runtime.labs.incident_note import read_fields, read_sections, uncommented

FIELDS = ("lever", "why", "blast radius")
_COUNT = re.compile(r"^~?\s*(\d+)\b")


@dataclass(frozen=True)
class Situation:
    """What the grader recorded of one situation: the first lever pulled and the blast radius."""

    lever: str | None
    blast_radius: int | None


def allowed_gap(actual: int, tolerance: float) -> float:
    """How far a written blast radius may be from the recorded one: `tolerance` of it, at least 5 decisions."""
    return max(5.0, tolerance * actual)


def judge(text: str, situations: Sequence[Situation], tolerance: float) -> list[str]:
    """Every way the note disagrees with the record of `situations` (in order), or is unfinished; empty when it
    holds."""
    sections = read_sections(uncommented(text))
    problems = []
    for number, recorded in enumerate(situations, start=1):
        name = f"situation {number}"
        body = sections.get(name)
        if body is None:
            problems.append(f"## Situation {number}: the section is missing")
            continue
        written = read_fields(body, FIELDS)
        unfilled = [f for f in FIELDS if not written.get(f) or "todo" in written[f].lower()]
        if unfilled:
            problems.append(f"Situation {number}: fill in {', '.join(f.capitalize() for f in unfilled)}")
            continue
        lever = written["lever"].lower()
        if lever != (recorded.lever or "none"):
            problems.append(
                f"Situation {number}: Lever {written['lever']!r} is not the first lever you pulled (`lab grade`)"
            )
        count = _COUNT.match(written["blast radius"])
        if count is None:
            problems.append(f"Situation {number}: Blast radius {written['blast radius']!r} is not a whole number")
        elif recorded.blast_radius is not None:
            gap = abs(int(count[1]) - recorded.blast_radius)
            if gap > allowed_gap(recorded.blast_radius, tolerance):
                problems.append(
                    f"Situation {number}: Blast radius {count[1]} is {gap} away from what the grader counted "
                    f"(allowed: {allowed_gap(recorded.blast_radius, tolerance):.0f}); `lab grade` shows it"
                )
    return problems
