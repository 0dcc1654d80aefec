"""The evaluation harness's pure parts: bootstrap intervals, slices and their flag, the verdict, test-set columns,
Cohen's kappa, the review queue and its figures, the review store, coverage from a journal, the report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from lab_runtime.errors import InvalidEvaluation, LabError, NotFound
from lab_runtime.evaluation.coverage import coverage
from lab_runtime.evaluation.judge import (
    MAX_DROP,
    Evaluation,
    Figure,
    Scored,
    Violations,
    count_violations,
    judge,
    slice_figures,
    verdict,
)
from lab_runtime.evaluation.report import to_html
from lab_runtime.evaluation.review import (
    Item,
    Label,
    ReviewVerdict,
    select_queue,
    summarize,
    verdict_refusal,
)
from lab_runtime.evaluation.slices import Slice, choose, load_slices
from lab_runtime.evaluation.stats import _metric, cohens_kappa, paired_bootstrap
from lab_runtime.evaluation.store import ReviewStore
from lab_runtime.evaluation.testset import DEFAULT, default_set, problems, read_set
from lab_runtime.events import ALIAS_CHANGED, EVAL_RUN, LEARNER_ACTION, AliasChanged, LearnerAction
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES, LABEL
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.regression import Regression
from lab_runtime.registry.path import EVAL_AT_TAG, EVAL_VERDICT_TAG, GO, NO_GO
from lab_runtime.service.policy import load_policy

# -- bootstrap intervals ------------------------------------------------------------------------------------------


def test_a_paired_interval_of_a_known_accuracy_difference() -> None:
    """A right on all 1,000 rows, B wrong on 100 of them: the difference is the share of those rows in a resample,
    0.1 with a standard error of sqrt(0.1 * 0.9 / 1000) = 0.0095, so the 95 % interval is about 0.1 +- 0.0186."""
    y = np.zeros(1000, dtype=int)
    a = np.full(1000, 0.1)
    b = a.copy()
    b[:100] = 0.9  # predicts a default where there was none
    ci = paired_bootstrap(y, a, b, seed=1, metrics=("accuracy",))["accuracy"]
    assert ci is not None and ci.excludes_zero
    assert ci.low == pytest.approx(0.1 - 0.0186, abs=0.004) and ci.high == pytest.approx(0.1 + 0.0186, abs=0.004)
    assert paired_bootstrap(y, a, b, seed=1, metrics=("accuracy",))["accuracy"] == ci  # seeded: the same interval


def test_the_same_scores_give_an_interval_of_zero_and_auc_is_undefined_on_one_class() -> None:
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 300), rng.random(300)
    same = paired_bootstrap(y, p, p, seed=2)
    assert all(ci is not None and (ci.low, ci.high) == (0.0, 0.0) for ci in same.values())
    assert not same["accuracy"].excludes_zero  # type: ignore[union-attr]
    assert paired_bootstrap(np.zeros(50, dtype=int), p[:50], p[:50], seed=2)["roc_auc"] is None


def test_the_vectorised_metrics_agree_with_scikit_learn_ties_included() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (4, 200))
    proba = np.round(rng.random((4, 200)), 1)  # many ties
    for row in range(4):
        assert _metric("roc_auc", y, proba)[row] == pytest.approx(roc_auc_score(y[row], proba[row]))
        predicted = proba[row] >= 0.5
        tp = int((predicted & (y[row] == 1)).sum())
        assert _metric("f1", y, proba)[row] == pytest.approx(2 * tp / (predicted.sum() + y[row].sum()))


# -- Cohen's kappa ----------------------------------------------------------------------------------------------------


def test_kappa_of_the_textbook_example() -> None:
    """50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15. p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5,
    kappa = (0.7 - 0.5) / 0.5 = 0.4."""
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)
    assert cohens_kappa(a, a) == pytest.approx(1.0)
    assert cohens_kappa([], []) is None
    assert cohens_kappa(["refer"] * 3, ["refer"] * 3) is None  # chance agreement is certain: undefined
    with pytest.raises(ValueError):
        cohens_kappa(["yes"], [])


# -- test sets ------------------------------------------------------------------------------------------------------


def test_the_default_test_set_is_versioned_and_shares_no_row_with_training_or_holdout() -> None:
    data = default_set()
    assert (data.name, len(data.rows), list(data.rows.columns)) == (DEFAULT, 2000, [*FEATURES, LABEL])
    assert data.rows.equals(default_set().rows)
    generator = DataGenerator(42)
    for other in (generator.training(), generator.holdout()):
        shared = data.rows.merge(other[[*FEATURES, LABEL]], on=["income", "loan_amount", "credit_score"])
        assert shared.empty


def test_a_csv_test_set_is_named_by_its_content_and_missing_columns_are_named(tmp_path: Path) -> None:
    rows = DataGenerator(7).evaluation(100)
    good = tmp_path / "mine.csv"
    rows.to_csv(good, index=False)
    data = read_set(good)
    assert re.fullmatch(r"mine-[0-9a-f]{8}", data.name) and len(data.rows) == 100
    bad = tmp_path / "bad.csv"
    rows.drop(columns=["income", LABEL]).to_csv(bad, index=False)
    with pytest.raises(InvalidEvaluation, match=r"bad.csv: missing columns income, default"):
        read_set(bad)
    with pytest.raises(InvalidEvaluation, match="cannot read the test set"):
        read_set(tmp_path / "absent.csv")
    odd = rows.copy()
    odd.loc[3, "age"] = "old"
    odd[LABEL] = 1
    assert problems(odd) == [
        "column age: 1 value(s) not a number (first on row 4)",
        "column default: every row is 1; a test set needs both labels",
    ]


# -- slices ---------------------------------------------------------------------------------------------------------


def test_the_built_in_slices_and_choosing_them_by_name() -> None:
    slices = load_slices()
    names = [s.name for s in slices]
    assert names[:2] == ["purpose=debt_consolidation", "purpose=car"]
    assert names[-3:] == ["income=under-40k", "income=40-80k", "income=80k-and-over"]
    assert {s.feature for s in slices} == {"purpose", "region", "home_ownership", "income"}
    assert [s.name for s in choose(slices, ["income", "region=west"])] == ["region=west", *names[-3:]]
    assert choose(slices, []) == slices
    with pytest.raises(NotFound, match=r"unknown slice 'purpose=boats'; slices: purpose=debt_consolidation, .*income"):
        choose(slices, ["purpose=boats"])
    frame = pd.DataFrame({"income": [39.99, 40.0, 79.9, 80.0]})
    assert [list(s.mask(frame)) for s in slices[-3:]] == [
        [True, False, False, False],
        [False, True, True, False],
        [False, False, False, True],
    ]


def test_a_bad_slice_file_is_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "slices.yaml"
    path.write_text("categories: [income]\nbands:\n  income: [{name: low, from: 50, below: 10}]\n")
    with pytest.raises(InvalidEvaluation, match=r"slices.yaml: categories: .*'income' is not a categorical feature"):
        load_slices(path)


# -- slice flags and the verdict -------------------------------------------------------------------------------------


def _rows(n: int, purposes: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    return pd.DataFrame({"purpose": (purposes * n)[:n]}), np.zeros(n, dtype=int)


def test_a_slice_is_flagged_only_for_a_large_drop_whose_interval_excludes_zero() -> None:
    frame, y = _rows(1200, ["car", "education", "business"])  # 400 rows each
    against = np.full(1200, 0.1)  # right everywhere (every label 0)
    candidate = against.copy()
    education = np.flatnonzero(frame["purpose"] == "education")
    candidate[education[:80]] = 0.9  # 20 % wrong on education
    candidate[np.flatnonzero(frame["purpose"] == "car")[:12]] = 0.9  # 3 % wrong on car: under the threshold
    slices = [Slice(f"purpose={p}", "purpose", values=(p,)) for p in ("car", "education")]
    figures = slice_figures(y, frame, slices, Scored("2", candidate), Scored("1", against), seed=1)
    assert [(f.name, f.rows, f.flagged) for f in figures] == [
        ("purpose=car", 400, False),
        ("purpose=education", 400, True),
    ]
    assert figures[1].difference == pytest.approx(-0.2) and figures[1].high is not None and figures[1].high < 0
    few, y_few = _rows(20, ["business"])
    wrong = np.where(np.arange(20) < 8, 0.9, 0.1)  # 40 % wrong, on too few rows to flag
    [small] = slice_figures(
        y_few,
        few,
        [Slice("purpose=business", "purpose", values=("business",))],
        Scored("2", wrong),
        Scored("1", np.full(20, 0.1)),
        seed=1,
    )
    assert small.rows == 20 and small.difference == pytest.approx(-0.4) and not small.flagged
    alone = slice_figures(y, frame, slices, Scored("2", candidate), None, seed=1)
    assert alone[1].against is None and not alone[1].flagged


def _violations(version: str, rows: int) -> Violations:
    return Violations(version=version, decisions={"approve": 600, "refer": 200, "decline": 200}, rows=rows, by_rule={})


def test_the_verdict_names_each_reason_for_a_no_go() -> None:
    fine = [Figure(metric="accuracy", candidate=0.80, against=0.81, difference=-0.01, low=-0.02, high=0.0)]
    assert verdict(fine, [], [_violations("2", 3), _violations("1", 3)], "1") == (GO, [])
    worse = [fine[0].model_copy(update={"candidate": 0.78, "difference": -0.03})]
    assert verdict(fine, [], [_violations("2", 8), _violations("1", 3)], "1") == (GO, [])  # 5 apart: within 0.5 %
    result, reasons = verdict(worse, [], [_violations("2", 9), _violations("1", 3)], "1")
    assert result == NO_GO
    assert reasons == [
        f"accuracy 0.780 against version 1's 0.810: 0.030 lower, more than the {MAX_DROP:g} the promotion gate allows",
        "9 decisions against the output policy, version 1's 3 (more than 0.5% of the 1000 rows apart)",
    ]
    assert verdict(worse, [], [_violations("2", 9)], None) == (GO, [])  # no comparison: the figures only


def test_violations_are_counted_under_the_policy() -> None:
    policy = load_policy()
    records = [
        {"debt_to_income": 0.7, "num_late_payments": 4},
        {"debt_to_income": 0.7, "num_late_payments": 0},
        {"debt_to_income": 0.1, "num_late_payments": 0},
    ]
    counted = count_violations(policy, "3", records, ["approve", "decline", "approve"])
    assert counted.rows == 1 and counted.by_rule == {"approve-over-dti-limit": 1, "approve-with-late-payments": 1}
    assert counted.decisions == {"approve": 2, "refer": 0, "decline": 1}


# -- the review queue -------------------------------------------------------------------------------------------------


def test_the_queue_is_a_seeded_stable_sample_of_disagreements_and_unsure_rows() -> None:
    rng = np.random.default_rng(0)
    proba = rng.random(500)
    decisions = ["approve" if p < 0.2 else "decline" if p >= 0.5 else "refer" for p in proba]
    others = list(decisions)
    for i in range(0, 500, 10):  # 50 disagreements
        others[i] = "decline" if decisions[i] != "decline" else "approve"
    picks = select_queue(decisions, proba, others, (0.2, 0.5), seed=[42, 2])
    assert picks == select_queue(decisions, proba, others, (0.2, 0.5), seed=[42, 2])
    assert picks != select_queue(decisions, proba, others, (0.2, 0.5), seed=[42, 3])
    rows = [p.row for p in picks]
    assert len(picks) == 20 and rows == sorted(rows) and len(set(rows)) == 20
    assert sum("disagree" in p.why for p in picks) == 10  # half each
    assert all(p.row % 10 == 0 for p in picks if "disagree" in p.why)
    assert all(min(abs(proba[p.row] - 0.2), abs(proba[p.row] - 0.5)) <= 0.05 for p in picks if p.why == "unsure")
    alone = select_queue(decisions, proba, None, (0.2, 0.5), seed=1)
    assert len(alone) == 20 and {p.why for p in alone} == {"unsure"}
    few = select_queue(decisions[:5], np.full(5, 0.9), others[:5], (0.2, 0.5), seed=1)
    assert [p.row for p in few] == [0]  # one disagreement, nothing unsure: a queue of one


def _item(i: int, truth: int, decision: str = "refer") -> Item:
    return Item(i, "2", "credit-v1", i, {"age": 40}, truth, 0.3, decision, "1", 0.6, "decline", "disagree")


def test_reviewers_are_judged_on_the_truth_and_the_model_and_against_each_other() -> None:
    items = [_item(1, 0, "approve"), _item(2, 1, "decline"), _item(3, 1, "approve"), _item(4, 0, "refer")]
    labels = [
        Label(1, "ada", "approve", "", 1.0),  # right, as the model
        Label(2, "ada", "approve", "", 2.0),  # wrong
        Label(3, "ada", "refer", "", 3.0),  # neither
        Label(1, "bob", "approve", "", 4.0),
        Label(2, "bob", "decline", "", 5.0),
        Label(3, "bob", "refer", "", 6.0),
        Label(9, "bob", "decline", "", 7.0),  # not in the queue: ignored
    ]
    summary = summarize("2", items, labels)
    ada, bob = summary.reviewers
    assert (ada.labelled, ada.counts, ada.accuracy, ada.agreement) == (
        3,
        {"approve": 2, "decline": 0, "refer": 1},
        0.5,
        1 / 3,
    )
    assert (bob.accuracy, bob.agreement) == (1.0, 2 / 3)
    [pair] = summary.pairs
    # ada approve/approve/refer, bob approve/decline/refer: p_o 2/3, p_e (2/3)(1/3) + (1/3)(1/3) = 1/3: kappa 0.5
    assert (pair.reviewers, pair.items) == (("ada", "bob"), 3) and pair.kappa == pytest.approx(0.5)
    assert summary.labelled == 3 and summary.queue == 4


def test_a_verdict_needs_enough_labelled_rows() -> None:
    items = [_item(i, 0) for i in range(1, 21)]
    some = summarize("2", items, [Label(i, "ada", "approve", "", float(i)) for i in range(1, 10)])
    assert verdict_refusal(some) == (
        "only 9 of the 20 items of version 2's review queue are labelled; a verdict needs at least 10 "
        "(`lab review next`)"
    )
    enough = summarize("2", items, [Label(i, "ada", "approve", "", float(i)) for i in range(1, 11)])
    assert verdict_refusal(enough) is None
    small = summarize("2", items[:4], [Label(i, "ada", "approve", "", float(i)) for i in range(1, 4)])
    assert "only 3 of the 4 items" in str(verdict_refusal(small)) and "at least 4" in str(verdict_refusal(small))
    assert "is empty" in str(verdict_refusal(summarize("2", [], [])))


def test_the_store_keeps_ids_and_labels_across_a_new_queue_and_refuses_a_second_label(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "reviews.db")
    first = store.replace_queue("2", [replace(_item(0, 0), row=5), replace(_item(0, 1), row=9)], at=1.0)
    assert [i.row for i in first] == [5, 9] and store.versions() == ["2"]
    store.add_label(Label(first[0].id, "ada", "approve", "looks fine", 2.0))
    with pytest.raises(LabError, match=r"ada labelled item \d+ already \(approve\)"):
        store.add_label(Label(first[0].id, "ada", "decline", "", 3.0))
    again = store.replace_queue("2", [replace(_item(0, 0), row=5), replace(_item(0, 0), row=7)], at=4.0)
    assert [(i.row, i.id == first[0].id) for i in again] == [(5, True), (7, False)]
    assert store.item(first[1].id) is None  # set aside: no longer in a current queue
    assert [(lab.item, lab.label) for lab in store.labels("2")] == [(first[0].id, "approve")]
    store.add_verdict(ReviewVerdict("2", "ada", GO, "", 1, 5.0))
    assert store.verdict("2") == ReviewVerdict("2", "ada", GO, "", 1, 5.0) and store.verdict("3") is None
    store.close()


# -- coverage -------------------------------------------------------------------------------------------------------


def test_coverage_counts_each_promoted_version_once_evaluated_before_its_promotion(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db", source="test", learner="ada")

    def promoted(before: str | None, after: str, ts: float, model: str = "credit-risk") -> None:
        journal.append(
            ALIAS_CHANGED,
            AliasChanged(model=model, alias="champion", before=before, after=after, via="lab model promote"),
            ts=ts,
        )

    def evaluated(version: str, at: float) -> None:
        action = LearnerAction(action=EVAL_RUN, version=version, against="1", verdict=GO, report="r")
        journal.append(LEARNER_ACTION, action, began=at, ts=at + 5)

    promoted(None, "1", 10.0)  # the baseline, never evaluated
    evaluated("2", 100.0)
    promoted("1", "2", 200.0)
    promoted("2", "3", 300.0)
    evaluated("3", 400.0)  # after its promotion: not covered
    promoted("3", "2", 500.0)  # a rollback back to 2: not a new release
    promoted("2", "4", 600.0)
    promoted(None, "9", 700.0, model="other")
    tags = {"4": {EVAL_AT_TAG: "550.5", EVAL_VERDICT_TAG: NO_GO}, "1": {EVAL_AT_TAG: "not a time"}}
    found = coverage(journal.events(), "credit-risk", tags)
    assert [(p.version, p.at, p.covered) for p in found.promoted] == [
        ("1", 10.0, False),
        ("2", 200.0, True),
        ("3", 300.0, False),
        ("4", 600.0, True),
    ]
    assert found.promoted[3].evaluated is not None and found.promoted[3].evaluated.verdict == NO_GO
    assert (found.covered, found.share) == (2, 0.5)
    assert coverage([], "credit-risk", {}).share is None


# -- the report and the regression ------------------------------------------------------------------------------------


def test_the_report_shows_the_verdict_the_flagged_slices_and_the_review(tmp_path: Path) -> None:
    data = default_set()
    frame, y = data.rows[list(FEATURES)], data.rows[LABEL].to_numpy()
    against = np.where(y == 1, 0.7, 0.1)
    candidate = against.copy()
    candidate[(frame["purpose"] == "education").to_numpy() & (y == 1)] = 0.05
    judged = judge(
        frame, y, Scored("2", candidate), Scored("1", against), slices=load_slices(), policy=load_policy(), seed=42
    )
    assert judged.verdict == NO_GO and [s.name for s in judged.slices if s.flagged] == ["purpose=education"]
    run = {"run_id": "abc", "mlflow_metrics": {"eval_accuracy_score": 0.8}, "mlflow_artifacts": ["roc_curve_plot"]}
    evaluation = Evaluation(
        **judged.model_dump(),
        **run,
        model="credit-risk",
        version="2",
        against="1",
        against_how="@champion",
        test_set=DEFAULT,
        rows=len(y),
        at=0.0,
        policy="built-in",
        queue=2,
        report=str(tmp_path / "eval-2.html"),
    )
    review = summarize(
        "2",
        [_item(1, 1), _item(2, 0)],
        [Label(1, "ada", "decline", "", 1.0)],
        ReviewVerdict("2", "ada", NO_GO, "education <script>", 1, 2.0),
    )
    page = to_html(evaluation, review, "http://127.0.0.1:5000")
    assert '<tr class="flagged"><td>purpose=education</td>' in page
    assert '<span class="verdict no-go">no-go</span>' in page and "education &lt;script&gt;" in page
    assert "Cohen" not in page and "1 of the 2 rows of the queue labelled" in page
    for svg in re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL):
        ET.fromstring(svg)  # well-formed
    assert Evaluation.model_validate_json(evaluation.model_dump_json()) == evaluation


def test_a_category_labelling_bug_is_validated() -> None:
    assert Regression(repaid_in={"purpose": ["education"]}).repaid_in == {"purpose": ["education"]}
    with pytest.raises(ValueError, match="unknown categorical feature 'income'"):
        Regression(repaid_in={"income": ["high"]})
    with pytest.raises(ValueError, match="'boats' is not a category of purpose"):
        Regression(repaid_in={"purpose": ["boats"]})
