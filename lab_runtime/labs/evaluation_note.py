"""The evaluation note a learner writes in lab 07 (`evaluation-note.md`): the go/no-go decision on a candidate, the
slice that decided it, and the evidence, judged against the recorded evaluation. Pure: text and record in, problems
out. Fields are `Decision:` (go or no-go), `Slice:` (a slice's name as `lab eval run` prints it, or none) and
`Evidence:` (the figures, in the learner's words).
"""

from __future__ import annotations

from collections.abc import Sequence

from lab_runtime.labs.incident_note import read_fields, uncommented
from lab_runtime.registry.path import GO, NO_GO

FIELDS = ("decision", "slice", "evidence")


def judge(text: str, verdict: str, flagged: Sequence[str]) -> list[str]:
    """Every way the note disagrees with an evaluation whose verdict is `verdict` and whose flagged slices are
    `flagged`, or is unfinished; empty when it holds."""
    written = read_fields(uncommented(text), FIELDS)
    unfilled = [f.capitalize() for f in FIELDS if not written.get(f) or "todo" in written[f].lower()]
    if unfilled:
        return [f"fill in {', '.join(unfilled)}"]
    problems = []
    decision = written["decision"].strip().lower()
    if decision not in (GO, NO_GO):
        problems.append(f"Decision {written['decision']!r} is neither {GO} nor {NO_GO}")
    elif decision != verdict:
        problems.append(f"Decision {decision} is not what the evaluation's evidence says; read its report again")
    named = written["slice"].replace(" ", "").lower()
    if flagged and not any(s.lower() in named for s in flagged):
        problems.append(f"Slice {written['slice']!r} is not the slice the evaluation flagged; `lab eval run` names it")
    if len(written["evidence"].split()) < 5:
        problems.append("Evidence: give the figures behind the decision in a sentence (what, how much, how sure)")
    return problems
