"""`lab eval run`: a registered version evaluated on a test set and its slices, against another version.

MLflow's own evaluation (`mlflow.models.evaluate`: metrics and plots, the test set as the run's dataset input) is
logged into the version's source run, the run that registered it. What MLflow lacks is judged here (`judge`):
the candidate against the compared version on the same rows, slices, output-policy violations, the verdict. The
verdict goes on the version as tags (`registry.path`'s `EVAL_*`), the figures to `.lab/reports/eval-<V>.json`
and the report to `eval-<V>.html`; the review queue to `.lab/reviews.db`; the move to the journal (`eval.run`).
Every MLflow failure is one RegistryError line.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab_runtime.errors import RegistryError
from lab_runtime.evaluation.coverage import Coverage, coverage
from lab_runtime.evaluation.judge import Evaluation, Scored, decide, judge
from lab_runtime.evaluation.review import Item, ReviewSummary, select_queue, summarize
from lab_runtime.evaluation.slices import choose, load_slices
from lab_runtime.evaluation.store import FILE, ReviewStore
from lab_runtime.evaluation.testset import EvaluationSet, default_set, read_set
from lab_runtime.events import ALIAS_CHANGED, EVAL_RUN, LEARNER_ACTION, LearnerAction
from lab_runtime.files.atomic import write_atomic
from lab_runtime.files.watched import WatchedFile
from lab_runtime.modeling.columns import FEATURES, LABEL
from lab_runtime.registry.model_ops import aliases, mlflow_client, resolve_version
from lab_runtime.registry.path import (
    EVAL_AGAINST_TAG,
    EVAL_AT_TAG,
    EVAL_REASONS_TAG,
    EVAL_REPORT_TAG,
    EVAL_TEST_SET_TAG,
    EVAL_VERDICT_TAG,
)
from lab_runtime.registry.rest import CHAMPION
from lab_runtime.service.policy import BUILTIN, Policy, load_policy

if TYPE_CHECKING:
    from lab_runtime.journal import Journal
    from lab_runtime.settings import Settings

AGAINST_CHAMPION, AGAINST_NONE = "champion", "none"
METRIC_PREFIX = "eval_"  # MLflow's evaluation metrics beside the training run's own accuracy, f1, roc_auc


def review_store(settings: Settings) -> ReviewStore:
    return ReviewStore(settings.root / FILE)


def _stem(version: str, recorded: bool) -> str:
    return f"eval-{version}" if recorded else f"eval-{version}-partial"


def report_path(settings: Settings, version: str, recorded: bool = True) -> Path:
    """The HTML report of `version`'s evaluation (of its latest partial one: `recorded` False)."""
    return settings.reports_dir / f"{_stem(version, recorded)}.html"


def record_path(settings: Settings, version: str, recorded: bool = True) -> Path:
    """The evaluation's figures as JSON, beside its report (the report is re-rendered from them)."""
    return settings.reports_dir / f"{_stem(version, recorded)}.json"


def policy_in_force(settings: Settings) -> tuple[Policy, str]:
    """The output policy the service follows (the learner's file when it is valid, else the built-in one), and
    which one it is."""
    watched = WatchedFile(settings.policy_path, load_policy, BUILTIN)
    which = str(watched.source) if watched.source == settings.policy_path else "built-in"
    return watched.value, which + (f" ({watched.problem})" if watched.problem else "")


CHAMPION_HOW = "@champion"


def _against(settings: Settings, version: str, against: str) -> tuple[str | None, str]:
    """The version to compare with and why that one (or why none)."""
    if against == AGAINST_NONE:
        return None, "no comparison asked"
    if against == AGAINST_CHAMPION:
        champion = aliases(settings).get(CHAMPION)
        if champion is None:
            return None, "there is no @champion to compare with"
        if champion == version:
            return None, "it is the @champion"
        return champion, CHAMPION_HOW
    other = resolve_version(settings, against)
    return (None, "compared with itself: no comparison") if other == version else (other, "given")


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's evaluation logs a line per step, warns about the label's type and about how it reads a dataset's
    source: errors only, meanwhile."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The specified dataset source", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _mlflow_evaluation(
    settings: Settings, run_id: str, model: Any, data: EvaluationSet
) -> tuple[dict[str, float], list[str]]:
    """`mlflow.models.evaluate` of the loaded pyfunc `model` on `data`, logged into run `run_id`: its metrics
    and the names of the plots it logged. SHAP's explanations are off (slow, and not installed)."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    with _quiet_mlflow(), mlflow.start_run(run_id=run_id):
        dataset = from_pandas(data.rows, targets=LABEL, name=data.name, source=data.source)
        result = mlflow.models.evaluate(  # type: ignore[no-untyped-call]
            model,
            dataset,
            model_type="classifier",
            evaluators="default",
            evaluator_config={"log_model_explainability": False, "metric_prefix": METRIC_PREFIX},
        )
    return {k: float(v) for k, v in result.metrics.items()}, sorted(result.artifacts)


def _scored(
    settings: Settings, version: str, against: str | None, data: EvaluationSet
) -> tuple[Any, str, Scored, Scored | None]:
    """The candidate loaded as a pyfunc model (for MLflow's evaluation), its source run, and both versions'
    probabilities of default on the test set."""
    import mlflow.pyfunc
    import mlflow.sklearn

    name = settings.model_name
    with mlflow_client(settings, f"load versions of {name!r} for the evaluation") as client:
        mlflow.set_tracking_uri(settings.mlflow_url)
        mlflow.set_registry_uri(settings.mlflow_url)
        run_id = client.get_model_version(name, version).run_id
        if not run_id:
            raise RegistryError(f"version {version} of {name!r} has no source run to log its evaluation to")
        X = data.rows[list(FEATURES)]
        try:
            model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
            candidate = Scored(version, model.get_raw_model().predict_proba(X)[:, 1])
            other = None
            if against is not None:
                pipeline = mlflow.sklearn.load_model(f"models:/{name}/{against}")
                other = Scored(against, pipeline.predict_proba(X)[:, 1])
        except (RegistryError, OSError, mlflow.exceptions.MlflowException):
            raise
        except Exception as exc:  # a version that does not load or score (sklearn, skops): refused, not a traceback
            which = f"versions {version} and {against}" if against else f"version {version}"
            raise RegistryError(
                f"the evaluation could not score {which} on the test set ({type(exc).__name__}: {str(exc)[:160]})"
            ) from None
    return model, run_id, candidate, other


def _queue(data: EvaluationSet, policy: Policy, candidate: Scored, other: Scored | None, seed: int) -> list[Item]:
    """The review queue's items (ids to come): rows the versions decide differently, or the candidate is unsure of."""
    decided = decide(policy, candidate.proba)
    others = None if other is None else decide(policy, other.proba)
    thresholds = (policy.decision.approve_below, policy.decision.decline_from)
    picks = select_queue(
        decided, candidate.proba, others, thresholds, seed=[seed, zlib.crc32(candidate.version.encode())]
    )
    records = data.rows[list(FEATURES)].to_dict("records")
    labels = data.rows[LABEL].to_numpy()
    return [
        Item(
            id=0,
            version=candidate.version,
            test_set=data.name,
            row=p.row,
            features=records[p.row],
            truth=int(labels[p.row]),
            probability=round(float(candidate.proba[p.row]), 6),
            decision=decided[p.row],
            against=None if other is None else other.version,
            against_probability=None if other is None else round(float(other.proba[p.row]), 6),
            against_decision=None if others is None else others[p.row],
            why=p.why,
        )
        for p in picks
    ]


def review_summary(settings: Settings, version: str) -> ReviewSummary:
    """The review of `version`'s queue so far."""
    store = review_store(settings)
    try:
        return summarize(version, store.queue(version), store.labels(version), store.verdict(version))
    finally:
        store.close()


def write_report(settings: Settings, evaluation: Evaluation) -> Path:
    """The report of `evaluation` with its review so far, written whole (re-rendered as the review goes on)."""
    from lab_runtime.evaluation.report import to_html

    path = Path(evaluation.report)
    write_atomic(path, to_html(evaluation, review_summary(settings, evaluation.version), settings.mlflow_url).encode())
    return path


def recorded(settings: Settings, version: str) -> Evaluation | None:
    """The latest evaluation of `version` on this sandbox, or None."""
    path = record_path(settings, version)
    try:
        return Evaluation.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def run_evaluation(
    settings: Settings,
    version: str,
    against: str = AGAINST_CHAMPION,
    *,
    journal: Journal,
    test_set: Path | None = None,
    slices: Sequence[str] = (),
    on_scoring: Callable[[str, str | None], None] | None = None,
) -> Evaluation:
    """Evaluate `version` against `against` ("champion", "none" or a version) on `test_set` (default: credit-v1)
    and the `slices` named (default: all). Only a full evaluation (against @champion, on credit-v1, every slice) is
    the version's record: its verdict goes on the version as tags, its review queue is built, it is journaled. A
    partial one gives its figures and a report of its own (`eval-V-partial.html`), and changes no record.

    Everything a learner can get wrong (a slice, the test set's columns, a version) is refused before MLflow is
    written to. `on_scoring(version, against)` is called when the scoring starts (it takes seconds).
    """
    chosen = choose(load_slices(), slices)
    data = read_set(test_set) if test_set is not None else default_set()
    policy, which_policy = policy_in_force(settings)
    version = resolve_version(settings, version)
    other_version, how = _against(settings, version, against)
    official = test_set is None and not slices and how == CHAMPION_HOW
    began = journal.began_now()
    if on_scoring is not None:
        on_scoring(version, other_version)
    model, run_id, candidate, other = _scored(settings, version, other_version, data)
    frame, y = data.rows[list(FEATURES)], data.rows[LABEL].to_numpy()
    judged = judge(frame, y, candidate, other, slices=chosen, policy=policy, seed=settings.seed)
    with mlflow_client(settings, f"log the evaluation of version {version} to its run"):
        metrics, artifacts = _mlflow_evaluation(settings, run_id, model, data)
    queue: list[Item] = []
    if official:
        store = review_store(settings)
        try:
            queue = store.replace_queue(version, _queue(data, policy, candidate, other, settings.seed), began)
        finally:
            store.close()
    evaluation = Evaluation(
        **judged.model_dump(),
        model=settings.model_name,
        version=version,
        against=other_version,
        against_how=how,
        test_set=data.name,
        rows=len(data.rows),
        at=began,
        policy=which_policy,
        run_id=run_id,
        mlflow_metrics=metrics,
        mlflow_artifacts=artifacts,
        queue=len(queue),
        recorded=official,
        report=str(report_path(settings, version, official)),
    )
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(record_path(settings, version, official), evaluation.model_dump_json(indent=2).encode())
    write_report(settings, evaluation)
    if not official:
        return evaluation
    tags = {
        EVAL_VERDICT_TAG: evaluation.verdict,
        EVAL_REASONS_TAG: "; ".join(evaluation.reasons),
        EVAL_AT_TAG: f"{began:.3f}",
        EVAL_AGAINST_TAG: other_version or "",
        EVAL_TEST_SET_TAG: data.name,
        EVAL_REPORT_TAG: evaluation.report,
    }
    with mlflow_client(settings, f"record the evaluation's verdict on version {version}") as client:
        for key, value in tags.items():
            client.set_model_version_tag(settings.model_name, version, key, value)
    action = LearnerAction(action=EVAL_RUN, version=version, against=other_version, verdict=evaluation.verdict,
                           report=evaluation.report)  # fmt: skip
    journal.append(LEARNER_ACTION, action, began=began)
    return evaluation


def evaluation_coverage(settings: Settings, journal: Journal) -> Coverage:
    """Of the versions promoted to @champion, which were evaluated first: from the journal and the versions' tags."""
    from lab_runtime.registry.rest import Registry

    registry = Registry(settings.mlflow_url)
    try:
        records = registry.versions(settings.model_name) if registry.model(settings.model_name) else []
    finally:
        registry.close()
    tags: dict[str, dict[str, str]] = {}
    for record in records:
        listed: Any = record.get("tags") or []  # MLflow's [{key, value}]
        tags[str(record["version"])] = {t["key"]: t["value"] for t in listed}
    return coverage(journal.events([ALIAS_CHANGED, LEARNER_ACTION]), settings.model_name, tags)
