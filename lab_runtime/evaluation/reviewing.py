"""`lab review ...`: a person works through an evaluation's review queue. The next item a reviewer has not
labelled (never its truth), a label (then the truth), the review's figures, and its verdict, which goes on the
version as tags (`REVIEW_*`) and into the evaluation's report. Labels and verdicts are journaled as the reviewer's
moves (`review.label`, `review.verdict`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab_runtime.errors import LabError, NotFound
from lab_runtime.evaluation.harness import recorded, review_store, write_report
from lab_runtime.evaluation.review import LABELS, Item, Label, ReviewSummary, ReviewVerdict, summarize, verdict_refusal
from lab_runtime.evaluation.store import ReviewStore
from lab_runtime.events import LEARNER_ACTION, REVIEW_LABEL, REVIEW_VERDICT, LearnerAction
from lab_runtime.registry.model_ops import mlflow_client
from lab_runtime.registry.path import GO, NO_GO, REVIEW_AT_TAG, REVIEW_LABELS_TAG, REVIEW_VERDICT_TAG

if TYPE_CHECKING:
    from lab_runtime.journal import Journal
    from lab_runtime.settings import Settings

NO_QUEUE = "no review queue yet: `lab eval run VERSION` builds one"


def _version(store: ReviewStore, version: str | None) -> str:
    """`version` when it has a queue (default: the version queued last); else refused, naming those that have."""
    known = store.versions()
    if not known:
        raise NotFound(NO_QUEUE)
    if version is None:
        return known[-1]
    if version.strip() not in known:
        raise NotFound(f"version {version} has no review queue; queues: version {', '.join(known)} "
                       f"(`lab eval run {version}` builds one)")  # fmt: skip
    return version.strip()


@dataclass(frozen=True)
class Next:
    item: Item | None  # None: this reviewer labelled the whole queue
    summary: ReviewSummary
    labelled_by_reviewer: int


def next_item(settings: Settings, reviewer: str, version: str | None = None) -> Next:
    """The first item of the queue `reviewer` has not labelled, with the review so far."""
    store = review_store(settings)
    try:
        version = _version(store, version)
        items, labels = store.queue(version), store.labels(version)
        done = {lab.item for lab in labels if lab.reviewer == reviewer}
        pending = next((i for i in items if i.id not in done), None)
        return Next(pending, summarize(version, items, labels, store.verdict(version)), len(done))
    finally:
        store.close()


def _refresh_report(settings: Settings, version: str) -> None:
    """Re-render the evaluation's report with the review as it is now (when this sandbox has its figures). The
    label or verdict is recorded already: a report that cannot be written now (another reviewer's command writing
    it at the same moment) is written whole by the next one."""
    evaluation = recorded(settings, version)
    if evaluation is not None:
        with contextlib.suppress(OSError):
            write_report(settings, evaluation)


def record_label(
    settings: Settings, journal: Journal, item_id: int, label: str, reviewer: str, note: str = ""
) -> tuple[Item, Label]:
    """`reviewer`'s label of an item (once per reviewer and item); returns the item, whose truth may now be shown."""
    if label not in LABELS:
        raise LabError(f"a review label is one of {', '.join(LABELS)}, not {label!r}")
    store = review_store(settings)
    try:
        item = store.item(item_id)
        if item is None:
            raise NotFound(
                f"no review item {item_id} in a current queue; `lab review next` shows the next item and its id, "
                "`lab review status` the queues"
            )
        began = journal.began_now()
        given = Label(item.id, reviewer, label, note, began)
        store.add_label(given)
    finally:
        store.close()
    action = LearnerAction(action=REVIEW_LABEL, version=item.version, item=str(item.id), label=label, note=note)
    journal.append(LEARNER_ACTION, action, began=began)
    _refresh_report(settings, item.version)
    return item, given


def status(settings: Settings, version: str | None = None) -> ReviewSummary:
    """The review of a version's queue (default: the version queued last)."""
    store = review_store(settings)
    try:
        version = _version(store, version)
        return summarize(version, store.queue(version), store.labels(version), store.verdict(version))
    finally:
        store.close()


def record_verdict(
    settings: Settings, journal: Journal, verdict: str, reviewer: str, version: str | None = None, note: str = ""
) -> ReviewVerdict:
    """The review's go or no-go on a version, once enough of its queue is labelled: tags, journal, report."""
    if verdict not in (GO, NO_GO):
        raise LabError(f"a review verdict is {GO} or {NO_GO}, not {verdict!r}")
    summary = status(settings, version)
    if refusal := verdict_refusal(summary):
        raise LabError(refusal)
    began = journal.began_now()
    given = ReviewVerdict(summary.version, reviewer, verdict, note, summary.labelled, began)
    tags = {REVIEW_VERDICT_TAG: verdict, REVIEW_LABELS_TAG: str(summary.labelled), REVIEW_AT_TAG: f"{began:.3f}"}
    with mlflow_client(settings, f"record the review's verdict on version {summary.version}") as client:
        for key, value in tags.items():
            client.set_model_version_tag(settings.model_name, summary.version, key, value)
    store = review_store(settings)
    try:
        store.add_verdict(given)
    finally:
        store.close()
    action = LearnerAction(action=REVIEW_VERDICT, version=summary.version, verdict=verdict, note=note)
    journal.append(LEARNER_ACTION, action, began=began)
    _refresh_report(settings, summary.version)
    return given
