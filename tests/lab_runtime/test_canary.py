"""The canary's pure logic: figures per variant, the analysis file, and each decision of the analysis."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from lab_runtime.canary.judge import AnalysisSpec, Thresholds, VariantStats, accuracy_drop, decide, variant_stats
from lab_runtime.registry.model_ops import gate_refusal


def requests(*rows: tuple[str, str, int, float]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["variant", "model_version", "status", "latency_ms"])
    frame["ts"], frame["records"] = 0.0, 1
    return frame


def labelled(*rows: tuple[str, str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["variant", "model_version", "prediction", "label"])


def stats(
    variant: str = "challenger", requests: int = 100, errors: int = 0, p99: float | None = 10.0,
    accuracy: float | None = None, labelled: int = 0,
) -> VariantStats:  # fmt: skip
    return VariantStats(variant, "2", requests, errors, 5.0 if p99 else None, p99, labelled, accuracy)


def test_variant_stats_count_only_the_variant_and_version_asked_for() -> None:
    calls = requests(
        ("challenger", "3", 200, 10.0),
        ("challenger", "3", 500, 900.0),  # an error: counted, its latency left out of the percentiles
        ("challenger", "3", 200, 30.0),
        ("challenger", "2", 200, 5000.0),  # the replaced challenger: not this version
        ("champion", "1", 200, 1.0),
    )
    labels = labelled(("challenger", "3", 1, 1), ("challenger", "3", 0, 1), ("champion", "1", 0, 0))
    got = variant_stats(calls, labels, "challenger", "3", min_labels=2)
    assert (got.requests, got.errors, got.error_rate) == (3, 1, 1 / 3)
    assert got.latency_p50_ms == 20.0 and 29.0 < got.latency_p99_ms <= 30.0  # type: ignore[operator]
    assert (got.labelled, got.accuracy) == (2, 0.5)
    assert variant_stats(calls, labels, "challenger", "3", min_labels=3).accuracy is None


def test_a_variant_without_traffic_has_no_rates_instead_of_a_division_by_zero() -> None:
    got = variant_stats(requests(), labelled(), "challenger", "9", min_labels=1)
    assert (got.requests, got.error_rate, got.latency_p99_ms, got.accuracy) == (0, None, None, None)
    assert got.as_dict()["error_rate"] is None


def test_accuracy_drop_needs_both_accuracies() -> None:
    assert accuracy_drop(stats("champion", accuracy=0.8), stats(accuracy=0.6)) == pytest.approx(0.2)
    assert accuracy_drop(stats("champion", accuracy=0.8), stats(accuracy=None)) is None


SPEC = AnalysisSpec(interval=10, step_weight=0.2, max_weight=0.6, failure_limit=2, min_requests=10)
CHAMPION = stats("champion", accuracy=0.82, labelled=200)


@pytest.mark.parametrize(
    ("weight", "failures", "challenger", "action", "after", "failed"),
    [
        (0.2, 0, stats(), "step", 0.4, ()),
        (0.4, 0, stats(), "step", 0.6, ()),
        (0.5, 0, stats(), "step", 0.6, ()),  # capped at max_weight
        (0.6, 0, stats(), "promote", 1.0, ()),
        (0.4, 0, stats(errors=5), "hold", 0.4, ("error rate 0.050 > 0.02",)),
        (0.4, 1, stats(errors=5), "abort", 0.0, ("error rate 0.050 > 0.02",)),
        (0.4, 0, stats(p99=400.0), "hold", 0.4, ("p99 latency 400 ms > 250 ms",)),
        (0.4, 0, stats(accuracy=0.6, labelled=50), "hold", 0.4, ("accuracy 0.220 below the champion's",)),
        (0.4, 0, stats(accuracy=0.8, labelled=50), "step", 0.6, ()),  # within max_accuracy_drop
        (0.4, 0, stats(requests=3), "hold", 0.4, ("only 3 challenger calls, 10 needed",)),
        (0.4, 1, stats(requests=0, p99=None), "abort", 0.0, ("only 0 challenger calls, 10 needed",)),
    ],
)
def test_each_decision_of_the_analysis(
    weight: float, failures: int, challenger: VariantStats, action: str, after: float, failed: tuple[str, ...]
) -> None:
    decision = decide(SPEC, weight, failures, CHAMPION, challenger)
    assert (decision.action, decision.weight) == (action, after)
    assert len(decision.failed) == len(failed)
    for why, expected in zip(decision.failed, failed, strict=True):
        assert why.startswith(expected)
    assert decision.failures == failures + (1 if failed else 0)
    assert decision.measured["requests"] == challenger.requests
    assert action in decision.line and f"share {after:g}" in decision.line


def test_every_failing_threshold_is_named_and_a_left_out_threshold_is_not_checked() -> None:
    bad = stats(errors=50, p99=900.0, accuracy=0.5, labelled=50)
    assert len(decide(SPEC, 0.2, 0, CHAMPION, bad).failed) == 3
    lenient = SPEC.model_copy(
        update={"thresholds": Thresholds(max_error_rate=None, max_latency_p99_ms=None, max_accuracy_drop=None)}
    )
    assert decide(lenient, 0.2, 0, CHAMPION, bad).action == "step"


def test_steps_do_not_accumulate_float_error() -> None:
    spec = AnalysisSpec(step_weight=0.1, max_weight=0.3)
    weight = 0.1
    for _ in range(2):
        weight = decide(spec, weight, 0, CHAMPION, stats()).weight
    assert weight == 0.3 and decide(spec, weight, 0, CHAMPION, stats()).action == "promote"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"interval": "soon"}, "'soon' is not a duration"),
        ({"step_weight": 0}, "greater than 0"),
        ({"max_weight": 1.5}, "less than or equal to 1"),
        ({"step_weight": 0.6, "max_weight": 0.5}, "step_weight 0.6 is above max_weight 0.5"),
        ({"failure_limit": 0}, "greater than or equal to 1"),
        ({"thresholds": {"max_latency": 3}}, "Extra inputs are not permitted"),
        ({"treshold": 3}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_analysis_spec_names_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AnalysisSpec.model_validate(raw)


def test_durations_in_an_analysis_spec_read_like_people_write_them() -> None:
    spec = AnalysisSpec.model_validate({"interval": "1m30s", "quality_window": "2m"})
    assert (spec.interval, spec.quality_window) == (90.0, 120.0)


@pytest.mark.parametrize(
    ("candidate", "champion", "max_drop", "refused"),
    [(0.80, 0.82, 0.02, False), (0.83, 0.82, 0.0, False), (0.79, 0.82, 0.02, True), (0.60, 0.82, 0.5, False)],
)
def test_the_validation_gate_refuses_only_a_drop_beyond_the_allowance(
    candidate: float, champion: float, max_drop: float, refused: bool
) -> None:
    why = gate_refusal({"accuracy": candidate}, {"accuracy": champion}, max_drop)
    assert (why is not None) == refused
    if why:
        assert f"accuracy {candidate:.4f} against the champion's {champion:.4f}" in why
        assert f"at most {max_drop:g} allowed" in why
