"""`lab review next|label|status|verdict`: a person reviews the rows an evaluation was unsure or split on."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import typer

from lab_runtime.cli.common import JSON, app, friendly, grid, journal, out, plain, print_json, settings
from lab_runtime.errors import LabError
from lab_runtime.settings import learner_refusal

if TYPE_CHECKING:
    from lab_runtime.evaluation.review import Item
    from lab_runtime.settings import Settings

review_app = typer.Typer(
    help="Human review of an evaluation's queue: label rows, then see the truth, your accuracy and agreement.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")

REVIEWER = typer.Option(
    None, "--reviewer", metavar="NAME", help="who reviews (default: LAB_LEARNER): two people can review one queue"
)
VERSION = typer.Option(None, "--version", metavar="VERSION", help="the version's queue (default: the latest)")
TRUTH = {0: "the applicant repaid (label 0)", 1: "the applicant defaulted (label 1)"}


def _as_reviewer(name: str | None) -> Settings:
    """The settings with the reviewer as the learner, so the journal credits the review to them."""
    current = settings()
    if name is None:
        return current
    if refusal := learner_refusal(name, "--reviewer"):
        raise LabError(refusal)
    return current.model_copy(update={"learner": name})


def _shown(item: Item) -> dict[str, Any]:
    """What a reviewer may see of an item: never its truth."""
    against = None
    if item.against is not None:
        against = {"version": item.against, "decision": item.against_decision, "probability": item.against_probability}
    return {
        "id": item.id,
        "version": item.version,
        "row": item.row,
        "why": item.why,
        "features": item.features,
        "candidate": {"version": item.version, "decision": item.decision, "probability": item.probability},
        "against": against,
    }


@review_app.command("next")
@friendly
def next_cmd(version: str | None = VERSION, reviewer: str | None = REVIEWER, as_json: bool = JSON) -> None:
    """The next row of the queue you have not labelled: its features and both versions' decisions (not the truth)."""
    from lab_runtime.evaluation.reviewing import next_item

    current = _as_reviewer(reviewer)
    found = next_item(current, current.learner, version)
    queue, v = found.summary.queue, found.summary.version
    if as_json:
        shown = None if found.item is None else _shown(found.item)
        print_json({"version": v, "reviewer": current.learner, "queue": queue, "labelled": found.labelled_by_reviewer,
                    "item": shown})  # fmt: skip
        return
    if found.item is None:
        plain(f"{current.learner} labelled all {queue} rows of version {v}'s review queue; `lab review status` "
              "shows how the review went")  # fmt: skip
        return
    item = found.item
    why = {"disagree": "the versions decide differently", "unsure": "the candidate is unsure"}
    reasons = " and ".join(why[w] for w in item.why.split(", "))
    plain(f"version {v}'s review queue, item {item.id} ({found.labelled_by_reviewer} of {queue} labelled by "
          f"{current.learner}): {reasons}")  # fmt: skip
    table = grid("feature", "value")
    for name, value in item.features.items():
        table.add_row(name, f"{value:g}" if isinstance(value, float) else str(value))
    out.print(table)
    plain(f"version {item.version} (candidate): {item.decision} (probability of default {item.probability:.3f})")
    if item.against is not None:
        plain(
            f"version {item.against}: {item.against_decision} (probability of default {item.against_probability:.3f})"
        )
    plain(f"your decision: `lab review label {item.id} approve|decline|refer [--note TEXT]`")


@review_app.command("label")
@friendly
def label_cmd(
    item_id: int = typer.Argument(..., metavar="ID", help="the item's id, as `lab review next` shows it"),
    label: str = typer.Argument(..., metavar="approve|decline|refer"),
    note: str = typer.Option("", "--note", help="why, in a few words"),
    reviewer: str | None = REVIEWER,
    as_json: bool = JSON,
) -> None:
    """Your decision on an item; then its truth. A label stands: the truth is shown once it is given."""
    from lab_runtime.evaluation.review import right
    from lab_runtime.evaluation.reviewing import record_label

    current = _as_reviewer(reviewer)
    item, given = record_label(current, journal(current), item_id, label, current.learner, note)
    verdict = right(given.label, item.truth)
    if as_json:
        decided = {"decision": item.decision, "against": item.against, "against_decision": item.against_decision}
        print_json({**asdict(given), "version": item.version, "truth": item.truth, "right": verdict, **decided})
        return
    judged = {True: "your label was right", False: "your label was wrong", None: "refer is neither right nor wrong"}
    plain(
        f"item {item.id} labelled {given.label} by {given.reviewer}; the truth: {TRUTH[item.truth]}: {judged[verdict]}"
    )
    models = f"version {item.version} decided {item.decision}"
    if item.against is not None:
        models += f", version {item.against} {item.against_decision}"
    plain(f"{models}; next: `lab review next`")


@review_app.command("status")
@friendly
def status_cmd(version: str | None = VERSION, as_json: bool = JSON) -> None:
    """Per reviewer: rows labelled, accuracy against the truth, agreement with the model; kappa between reviewers."""
    from lab_runtime.evaluation.reviewing import status

    summary = status(settings(), version)
    if as_json:
        print_json(asdict(summary))
        return
    plain(f"version {summary.version}'s review queue: {summary.labelled} of {summary.queue} rows labelled")
    if summary.reviewers:
        table = grid("reviewer", "labelled", "approve / decline / refer", "accuracy", f"agreement with version "
                     f"{summary.version}")  # fmt: skip
        for r in summary.reviewers:
            counts = " / ".join(str(r.counts[k]) for k in ("approve", "decline", "refer"))
            accuracy = "-" if r.accuracy is None else f"{r.accuracy:.0%}"
            agreement = "-" if r.agreement is None else f"{r.agreement:.0%}"
            table.add_row(r.reviewer, str(r.labelled), counts, accuracy, agreement)
        out.print(table)
        plain("accuracy: approve is right when the applicant repaid, decline when they defaulted; refer is neither")
    for pair in summary.pairs:
        kappa = "undefined (no common rows, or one label only)" if pair.kappa is None else f"{pair.kappa:.2f}"
        plain(f"Cohen's kappa, {pair.reviewers[0]} and {pair.reviewers[1]}: {kappa} on {pair.items} common row(s)")
    v = summary.verdict
    if v is not None:
        plain(f"review verdict: {v.verdict} by {v.reviewer} after {v.labels} labelled row(s)")


@review_app.command("verdict")
@friendly
def verdict_cmd(
    verdict: str = typer.Argument(..., metavar="go|no-go"),
    note: str = typer.Option("", "--note", help="the evidence, in a line"),
    version: str | None = VERSION,
    reviewer: str | None = REVIEWER,
    as_json: bool = JSON,
) -> None:
    """The review's go or no-go on the version, once enough of its queue is labelled; recorded on the version."""
    from lab_runtime.evaluation.review import MIN_VERDICT_LABELS
    from lab_runtime.evaluation.reviewing import record_verdict

    current = _as_reviewer(reviewer)
    given = record_verdict(current, journal(current), verdict, current.learner, version, note)
    if as_json:
        print_json(asdict(given))
        return
    plain(f"review verdict on version {given.version}: {given.verdict} ({given.reviewer}, {given.labels} rows "
          f"labelled, at least {MIN_VERDICT_LABELS} needed); recorded on the version and in its report")  # fmt: skip
