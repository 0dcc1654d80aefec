"""`lab eval` and `lab review` against a real MLflow server and registry watcher: a candidate with a slice regression
the overall accuracy hides, evaluated against the champion; its report, tags and MLflow run; a review round by two
reviewers; coverage once it is promoted; and the refusals, each in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from lab_runtime.evaluation.stats import cohens_kappa
from lab_runtime.events import ALIAS_CHANGED, LEARNER_ACTION
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import LABEL
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import Registered, train_and_register
from lab_runtime.modeling.regression import Regression
from lab_runtime.registry.path import (
    EVAL_AGAINST_TAG,
    EVAL_REPORT_TAG,
    EVAL_TEST_SET_TAG,
    EVAL_VERDICT_TAG,
    NO_GO,
    REVIEW_LABELS_TAG,
    REVIEW_VERDICT_TAG,
)
from lab_runtime.settings import Settings
from tests.cli import lab, ok, one_line_error
from tests.lab_runtime.services import running_services
from tests.sandbox import wait_for

pytestmark = pytest.mark.integration
Sandbox = tuple[Settings, Registered, Registered]  # the settings, the champion, the candidate

EDUCATION_BUG = Regression(repaid_in={"purpose": ["education"]})  # education applicants trained on as repaid


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """MLflow and the registry watcher; version 1 @champion, version 2 with the education labelling bug."""
    with running_services(tmp_path_factory.mktemp("evaluation") / "state", "mlflow", "registry-watcher") as settings:
        champion = train_and_register(settings.mlflow_url, settings.model_name, alias="champion")
        candidate = train_and_register(settings.mlflow_url, settings.model_name, regression=EDUCATION_BUG)
        yield settings, champion, candidate


def tags(settings: Settings, version: str) -> dict[str, str]:
    client = MlflowClient(settings.mlflow_url, registry_uri=settings.mlflow_url)
    return dict(client.get_model_version(settings.model_name, version).tags)


def actions(settings: Settings, action: str) -> list[dict[str, Any]]:
    journal = Journal(settings.journal_path, source="test")
    return [e.payload for e in journal.events([LEARNER_ACTION]) if e.payload.get("action") == action]


def test_a_slice_regression_the_overall_accuracy_hides_is_a_no_go(
    sandbox: Sandbox,
) -> None:
    settings, champion, candidate = sandbox
    v1, v2 = champion.version, candidate.version
    body = json.loads(ok(lab("eval", "run", v2, "--json")))
    assert (body["version"], body["against"], body["against_how"], body["test_set"], body["rows"]) == (
        v2,
        v1,
        "@champion",
        "credit-v1",
        2000,
    )
    accuracy = next(f for f in body["overall"] if f["metric"] == "accuracy")
    assert -0.02 <= accuracy["difference"] < 0  # the overall figure passes the promotion gate ...
    assert accuracy["low"] <= accuracy["difference"] <= accuracy["high"]
    flagged = [s["name"] for s in body["slices"] if s["flagged"]]
    assert flagged == ["purpose=education"]  # ... the slice does not
    assert body["verdict"] == NO_GO and any(r.startswith("slice purpose=education: accuracy") for r in body["reasons"])
    assert [v["version"] for v in body["violations"]] == [v2, v1]
    assert body["queue"] == 20

    report = Path(body["report"])
    assert report == settings.reports_dir / f"eval-{v2}.html"
    page = report.read_text()
    assert '<tr class="flagged"><td>purpose=education</td>' in page and "<svg" in page
    assert "<script" not in page and 'src="' not in page  # self-contained
    found = tags(settings, v2)
    assert (found[EVAL_VERDICT_TAG], found[EVAL_AGAINST_TAG], found[EVAL_TEST_SET_TAG], found[EVAL_REPORT_TAG]) == (
        NO_GO,
        v1,
        "credit-v1",
        str(report),
    )
    run = MlflowClient(settings.mlflow_url).get_run(candidate.run_id)  # the version's own source run
    assert run.data.metrics["eval_accuracy_score"] == pytest.approx(accuracy["candidate"], abs=1e-6)
    assert run.data.metrics["accuracy"] == candidate.metrics["accuracy"]  # the training run's own figure kept
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["credit-v1"]
    assert {"roc_curve_plot", "confusion_matrix"} <= set(body["mlflow_artifacts"])
    [action] = actions(settings, "eval.run")
    assert action == {"action": "eval.run", "version": v2, "against": v1, "verdict": NO_GO, "report": str(report)}


def test_the_champion_alone_in_text_and_a_csv_test_set_with_chosen_slices(sandbox: Sandbox, tmp_path: Path) -> None:
    settings, champion, candidate = sandbox
    text = ok(lab("eval", "run", champion.version))
    assert f"version {champion.version} with no comparison (it is the @champion), on credit-v1 (2000 rows)" in text
    assert "verdict: go, not recorded: only a full run (against @champion, on credit-v1, every slice)" in text
    assert f"report: {settings.reports_dir / f'eval-{champion.version}-partial.html'}" in text
    assert EVAL_AGAINST_TAG not in tags(settings, champion.version)  # the figures only: nothing to gate on

    rows = tmp_path / "mine.csv"
    DataGenerator(7).evaluation(400).to_csv(rows, index=False)
    body = json.loads(
        ok(
            lab(
                "eval",
                "run",
                candidate.version,
                "--against",
                champion.version,
                "--test-set",
                str(rows),
                "--slice",
                "income",
                "--slice",
                "region=west",
                "--json",
            )
        )
    )
    assert body["test_set"].startswith("mine-") and body["rows"] == 400 and body["against_how"] == "given"
    assert [s["name"] for s in body["slices"]] == [
        "region=west",
        "income=under-40k",
        "income=40-80k",
        "income=80k-and-over",
    ]
    assert body["recorded"] is False and body["queue"] == 0 and body["report"].endswith("-partial.html")
    assert tags(settings, candidate.version).get(EVAL_TEST_SET_TAG) != body["test_set"]  # not the version's record


def test_evaluation_refusals_name_what_is_known(sandbox: Sandbox, tmp_path: Path) -> None:
    settings, _, candidate = sandbox
    journaled = len(actions(settings, "eval.run"))
    one_line_error(lab("eval", "run", "99"), "model 'credit-risk' has no version '99'; its versions: 1, 2")
    one_line_error(lab("eval", "run", candidate.version, "--against", "42"), "has no version '42'; its versions: 1, 2")
    unknown = lab("eval", "run", candidate.version, "--slice", "purpose=boats")
    one_line_error(unknown, "unknown slice 'purpose=boats'; slices: purpose=debt_consolidation, purpose=car")
    assert "income=80k-and-over" in unknown.stderr
    bad = tmp_path / "bad.csv"
    DataGenerator(7).evaluation(50).drop(columns=["credit_score", LABEL]).to_csv(bad, index=False)
    one_line_error(
        lab("eval", "run", candidate.version, "--test-set", str(bad)), "missing columns credit_score, default"
    )
    assert len(actions(settings, "eval.run")) == journaled  # no refusal journaled


def test_a_review_round_by_two_reviewers(sandbox: Sandbox) -> None:
    settings, _, candidate = sandbox
    ok(lab("eval", "run", candidate.version, "--json"))  # the queue of the comparison with the champion again
    shown = json.loads(ok(lab("review", "next", "--json")))
    assert (shown["version"], shown["reviewer"], shown["queue"], shown["labelled"]) == (
        candidate.version,
        "learner",
        20,
        0,
    )
    item = shown["item"]
    assert "truth" not in json.dumps(shown) and LABEL not in item["features"]
    assert item["candidate"]["decision"] in ("approve", "refer", "decline") and item["against"]["version"] == "1"
    text = ok(lab("review", "next"))
    assert f"item {item['id']}" in text and "truth" not in text and f"lab review label {item['id']}" in text

    labelled = ok(lab("review", "label", str(item["id"]), "decline", "--note", "high debt"))
    assert f"item {item['id']} labelled decline by learner; the truth: the applicant" in labelled
    one_line_error(lab("review", "label", str(item["id"]), "approve"), f"learner labelled item {item['id']} already")
    one_line_error(
        lab("review", "label", "99999", "approve"), "no review item 99999 in a current queue; `lab review next`"
    )
    one_line_error(lab("review", "label", str(item["id"]), "maybe"), "a review label is one of approve, decline, refer")
    one_line_error(lab("review", "verdict", "go"), "only 1 of the 20 items of version 2's review queue are labelled")

    ids, mine = [item["id"]], ["decline"]
    for _ in range(10):  # the learner labels ten more, bob the same eleven
        nxt = json.loads(ok(lab("review", "next", "--json")))["item"]
        ids.append(nxt["id"])
        mine.append("approve" if nxt["candidate"]["probability"] < 0.3 else "decline")
        ok(lab("review", "label", str(nxt["id"]), mine[-1]))
    for i, item_id in enumerate(ids):
        answer = json.loads(
            ok(
                lab(
                    "review", "label", str(item_id), "refer" if i % 4 == 0 else "decline", "--reviewer", "bob", "--json"
                )
            )
        )
        assert answer["reviewer"] == "bob" and answer["truth"] in (0, 1)
    status = json.loads(ok(lab("review", "status", "--json")))
    assert status["labelled"] == 11 and [r["reviewer"] for r in status["reviewers"]] == ["bob", "learner"]
    [pair] = status["pairs"]
    assert pair["reviewers"] == ["bob", "learner"] and pair["items"] == 11
    bobs = ["refer" if i % 4 == 0 else "decline" for i in range(len(ids))]
    assert pair["kappa"] == pytest.approx(cohens_kappa(bobs, mine)) or pair["kappa"] is cohens_kappa(bobs, mine)
    assert "Cohen's kappa, bob and learner" in ok(lab("review", "status"))
    journal = Journal(settings.journal_path, source="test")
    bobs = [
        e for e in journal.events([LEARNER_ACTION]) if e.payload.get("action") == "review.label" and e.learner == "bob"
    ]
    assert len(bobs) == 11

    verdict = json.loads(ok(lab("review", "verdict", "no-go", "--note", "education approved", "--json")))
    assert (verdict["version"], verdict["verdict"], verdict["labels"]) == (candidate.version, NO_GO, 11)
    found = tags(settings, candidate.version)
    assert (found[REVIEW_VERDICT_TAG], found[REVIEW_LABELS_TAG]) == (NO_GO, "11")
    assert actions(settings, "review.verdict")[-1] == {
        "action": "review.verdict",
        "version": candidate.version,
        "verdict": NO_GO,
        "note": "education approved",
    }
    page = (settings.reports_dir / f"eval-{candidate.version}.html").read_text()
    assert 'Review verdict: <span class="verdict no-go">no-go</span> by learner' in page and "Cohen's kappa" in page


def test_coverage_of_promoted_versions(sandbox: Sandbox) -> None:
    settings, champion, candidate = sandbox
    journal = Journal(settings.journal_path, source="test")
    ok(lab("model", "promote", candidate.version, "--force"))
    wait_for(
        lambda: any(e.payload["after"] == candidate.version for e in journal.events([ALIAS_CHANGED])),
        20,
        "the promotion in the alias history",
    )
    body = json.loads(ok(lab("eval", "coverage", "--json")))
    assert [(v["version"], v["covered"]) for v in body["versions"]] == [
        (champion.version, False),
        (candidate.version, True),
    ]
    assert (body["promoted"], body["covered"], body["share"]) == (2, 1, 0.5)
    assert body["versions"][1]["verdict"] == NO_GO
    assert "evaluation coverage: 1 of 2 version(s) promoted to @champion (50%) were evaluated first" in ok(
        lab("eval", "coverage")
    )
