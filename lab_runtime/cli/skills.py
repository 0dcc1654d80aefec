"""`lab skills`: a learner's level per skill of the skills matrix (labs/skills.yaml), from their journal or a
verified bundle, and the gaps to their role's next milestone."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from lab_runtime.cli.common import JSON, app, friendly, grid, journal, learner_name, out, plain, print_json, settings
from lab_runtime.errors import LabError

if TYPE_CHECKING:
    from grader.skills import References


def references() -> References:
    """What the matrix may name: every lab with its steps, every catalog drill with its kind."""
    from drills.spec import catalog
    from grader.skills import References
    from lab_runtime.labs.catalog import all_labs

    return References({lab.id: [s.id for s in lab.steps] for lab in all_labs()}, {d.id: d.kind for d in catalog()})


@app.command("skills")
@friendly
def skills_cmd(
    learner: str | None = typer.Option(None, "--learner", help="whose levels (default: LAB_LEARNER)"),
    bundle: Path | None = typer.Option(None, "--bundle", help="a verified result bundle instead of the journal"),
    role: str | None = typer.Option(None, "--role", help="a role of the matrix: show the gaps to its milestone"),
    milestone: str | None = typer.Option(None, "--milestone", help="day-30, day-60 or day-90 (default: the next)"),
    key_file: Path | None = typer.Option(None, "--key-file", help="the instructor key, to verify --bundle"),
    as_json: bool = JSON,
) -> None:
    """Your level per skill, and what showed it; with --role, what your role's next milestone still needs."""
    from grader.skills import MILESTONES, from_bundle, from_journal, levels, load_matrix, progress

    if milestone is not None and milestone not in MILESTONES:
        raise LabError(f"--milestone {milestone!r} is not a milestone; use {', '.join(MILESTONES)}")
    if milestone is not None and role is None:
        raise LabError("--milestone needs --role (the milestones are a role's)")
    refs = references()
    matrix = load_matrix(refs)
    chosen = matrix.role(role) if role else None
    current = settings()
    if bundle is not None:
        from grader.bundles import instructor_key
        from grader.results import read_bundle

        verified = read_bundle(bundle, instructor_key(current, key_file))
        who, results = verified.learner, from_bundle(verified)
    else:
        who = learner_name(learner, current)
        results = from_journal(journal(current).events(), who)
    found = levels(matrix, results, refs.drills)
    standing = progress(chosen, found, milestone) if chosen else None
    needs = chosen.milestones[standing.milestone] if chosen and standing and standing.milestone else {}
    if as_json:
        print_json(
            {
                "learner": who,
                "skills": [{**asdict(s), "needed": needs.get(s.skill)} for s in found],
                "role": None if standing is None or chosen is None else {**asdict(standing), "title": chosen.title},
            }
        )
        return
    table = grid("skill", "level", "shown by", *(["needed", "gap"] if standing else []))
    for s in found:
        need = needs.get(s.skill)
        cells = [escape(s.skill), f"{s.level} {s.name}", escape(s.evidence or "-")]
        if standing:
            short = need is not None and s.level < need
            cells += ["-" if need is None else f"{need} {matrix.level_name(need)}", "[red]short[/]" if short else ""]
        table.add_row(*cells)
    plain(f"skills of {who} ({'bundle ' + str(bundle) if bundle else 'journal'}):")
    out.print(table)
    if standing is None:
        plain(
            f"roles: {', '.join(r.id for r in matrix.roles)} (`lab skills --role ID` shows the gaps to its milestones)"
        )
        return
    assert chosen is not None
    met = f"met: {', '.join(standing.met)}" if standing.met else "no milestone met yet"
    if standing.milestone is None:
        plain(f"{chosen.title}: every milestone met ({met})")
    elif not standing.gaps:
        plain(f"{chosen.title}: {standing.milestone} met ({met})")
    else:
        gaps = ", ".join(f"{g.skill} {g.level}->{g.needed}" for g in standing.gaps)
        plain(f"{chosen.title}: {standing.milestone} needs {len(standing.gaps)} more: {gaps} ({met})")
