"""The shadow without servers: its rows in the prediction log, its figures and verdict (pure), the mirror's worker
with stand-in models (one that raises, one that hangs), and the follower loading @staging only while shadowing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict

from lab_runtime.predlog import (
    DROPPED,
    ERROR,
    SCORED,
    FeedbackRow,
    PredictionLog,
    PredictionLogger,
    Row,
    ShadowRow,
)
from lab_runtime.registry.rest import SHADOW_SHARE_TAG, ModelState
from lab_runtime.service.metrics import ServiceMetrics
from lab_runtime.service.models import LoadedModel, ModelFollower
from lab_runtime.service.policy import load_policy
from lab_runtime.service.shadow import Mirrored, ShadowMirror, mirrored
from lab_runtime.shadow.judge import GO, NO_DATA, NO_GO, Limits, verdict, window_stats, windows
from tests.sandbox import wait_for

T0 = time.time() - 1000  # recent enough for the default retention of an hour


def shadow_row(i: int, outcome: str = SCORED, **changes: Any) -> ShadowRow:
    """Record `i`: the champion approved it (class 0, 10 ms); a scored shadow agrees unless told otherwise (2 ms)."""
    answer: dict[str, Any] = (
        {"prediction": 0, "probability": 0.1, "decision": "approve", "latency_ms": 2.0} if outcome == SCORED else {}
    )
    fields: dict[str, Any] = {
        "ts": T0 + i, "request_id": f"r{i}", "version": "2", "outcome": outcome, "champion_version": "1",
        "champion_prediction": 0, "champion_probability": 0.1, "champion_decision": "approve",
        "champion_latency_ms": 10.0, **answer, **changes,
    }  # fmt: skip
    return ShadowRow(**fields)


def read(rows: list[Row], path: Path) -> pd.DataFrame:
    logger = PredictionLogger(path, maxsize=1000)
    logger.log(rows)
    logger.close()
    log = PredictionLog(path)
    try:
        return log.shadow(since=0)
    finally:
        log.close()


def test_shadow_rows_are_logged_and_read_back_with_the_newest_label_of_their_request(tmp_path: Path) -> None:
    rows: list[Row] = [
        shadow_row(0, violations=("no-approve-high-dti",)),
        shadow_row(1, ERROR, error="version 2 failed to score: ValueError: boom"),
        shadow_row(2, DROPPED),
        shadow_row(3, version="3"),
        FeedbackRow(T0, "r0", 0),
        FeedbackRow(T0 + 1, "r0", 1),  # relabelled: the newest counts
    ]
    frame = read(rows, tmp_path / "p.db")
    assert list(frame["request_id"]) == ["r0", "r1", "r2", "r3"]
    first = frame.iloc[0]
    assert (first["outcome"], first["prediction"], first["decision"]) == (SCORED, 0, "approve")
    assert first["latency_ms"] == 2.0
    assert (first["violations"], first["champion_violations"], first["label"]) == ("no-approve-high-dti", "", 1)
    assert frame.iloc[1]["error"] == "version 2 failed to score: ValueError: boom"
    assert pd.isna(frame.iloc[2]["prediction"]) and pd.isna(frame.iloc[2]["latency_ms"])
    assert frame.iloc[2]["champion_decision"] == "approve" and pd.isna(frame.iloc[1]["label"])
    log = PredictionLog(tmp_path / "p.db")
    assert list(log.shadow(since=0, version="3")["request_id"]) == ["r3"]
    assert list(log.shadow(since=T0 + 1, until=T0 + 3)["request_id"]) == ["r1", "r2"]
    log.close()


def test_shadow_rows_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    path, now = tmp_path / "p.db", time.time()
    logger = PredictionLogger(path, maxsize=100, retention=60.0)
    logger.log([shadow_row(0, ts=now - 120), shadow_row(1, ts=now - 30)])
    logger.close()
    pruner = PredictionLogger(path, maxsize=10, retention=60.0)
    pruner.prune()
    pruner.close()
    assert list(PredictionLog(path).shadow(since=0)["request_id"]) == ["r1"]


def frame(rows: list[ShadowRow], labels: dict[str, int] | None = None) -> pd.DataFrame:
    """The rows as `PredictionLog.shadow` reads them."""
    records = []
    for r in rows:
        record = {**r.__dict__, "violations": ",".join(r.violations)}
        record["champion_violations"] = ",".join(r.champion_violations)
        records.append({**record, "label": (labels or {}).get(r.request_id)})
    return pd.DataFrame(records)


def test_window_figures_compare_the_shadow_with_the_champion_on_the_records_it_scored() -> None:
    rows = [shadow_row(i, latency_ms=float(i + 1)) for i in range(8)]
    rows += [shadow_row(8, decision="refer", prediction=1), shadow_row(9, decision="refer")]  # disagree
    rows += [shadow_row(10, ERROR, error="boom"), shadow_row(11, DROPPED), shadow_row(12, DROPPED)]
    rows += [shadow_row(13, violations=("r",), champion_violations=("r",)), shadow_row(14, violations=("r",))]
    stats = window_stats(frame(rows), T0, T0 + 100, min_labels=1)
    assert (stats.mirrored, stats.compared, stats.errors, stats.dropped) == (15, 12, 1, 2)
    assert stats.decision_agreement == pytest.approx(10 / 12) and stats.class_agreement == pytest.approx(11 / 12)
    assert stats.error_rate == pytest.approx(1 / 13) and stats.drop_rate == pytest.approx(2 / 15)
    assert stats.latency_p50_ms == pytest.approx(2.5) and stats.champion_latency_p99_ms == pytest.approx(10.0)
    assert (stats.violations, stats.champion_violations) == (2, 1)
    assert stats.labelled == 0 and stats.accuracy is None and stats.accuracy_drop is None
    shown = stats.as_dict()  # each side's figures under its name
    assert shown["shadow"] == {"latency_p50_ms": 2.5, "latency_p99_ms": pytest.approx(7.89), "violations": 2,
                               "accuracy": None}  # fmt: skip
    assert shown["champion"] == {"latency_p50_ms": 10.0, "latency_p99_ms": 10.0, "violations": 1, "accuracy": None}
    assert (shown["compared"], shown["error_rate"], shown["drop_rate"]) == (12, 1 / 13, 2 / 15)


def test_accuracy_shows_on_labelled_records_only_once_there_are_enough() -> None:
    rows = [shadow_row(i, prediction=i % 2) for i in range(10)]  # the champion always says 0
    labels = {f"r{i}": 1 for i in range(6)}  # r0..r5 defaulted: the shadow is right on r1, r3, r5
    stats = window_stats(frame(rows, labels), T0, T0 + 100, min_labels=6)
    assert stats.labelled == 6 and stats.accuracy == pytest.approx(0.5) and stats.champion_accuracy == 0.0
    assert stats.accuracy_drop == pytest.approx(-0.5)
    assert window_stats(frame(rows, labels), T0, T0 + 100, min_labels=7).accuracy is None
    empty = window_stats(frame(rows).iloc[0:0], T0, T0 + 100, min_labels=1)
    assert (empty.mirrored, empty.decision_agreement, empty.latency_p99_ms, empty.error_rate) == (0, None, None, None)


def test_windows_split_the_rows_newest_first() -> None:
    rows = [shadow_row(i) for i in range(30)]  # one a second from T0
    found = windows(frame(rows), now=T0 + 30, window=10, count=4, min_labels=1)
    assert [(w.start - T0, w.end - T0, w.mirrored) for w in found] == [
        (20, 30, 10), (10, 20, 10), (0, 10, 10), (-10, 0, 0)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "said", "why"),
    [
        ([shadow_row(i) for i in range(30)], GO, []),
        ([shadow_row(i) for i in range(5)], NO_DATA, ["5 records compared, 20 needed for a verdict"]),
        ([], NO_DATA, ["0 records compared, 20 needed for a verdict"]),
        (
            [shadow_row(i) for i in range(30)] + [shadow_row(30 + i, ERROR, error="x") for i in range(2)],
            NO_GO,
            ["errors on 6.2% of the records it took (at most 2%)"],
        ),
        (
            [shadow_row(i, ERROR, error="x") for i in range(2)] + [shadow_row(2 + i, DROPPED) for i in range(98)],
            NO_GO,
            [
                "errors on 100.0% of the records it took (at most 2%)",
                "98.0% of mirrored records dropped: it does not keep up with the traffic",
            ],
        ),
        ([shadow_row(i, latency_ms=300.0) for i in range(30)], NO_GO, ["p99 latency 300 ms (at most 250 ms)"]),
        (
            [shadow_row(i, decision="refer" if i % 5 == 0 else "approve") for i in range(30)],
            NO_GO,
            ["the champion's decision on only 80.0% of records (at least 90%)"],
        ),
        ([shadow_row(i, violations=("r",) if i < 1 else ()) for i in range(30)], GO, []),  # one more: noise
        (
            [shadow_row(i, violations=("r",) if i < 2 else ()) for i in range(30)],
            NO_GO,
            ["2 decisions break the output policy (the champion's: 0)"],
        ),
    ],
)
def test_the_verdict_names_each_problem(rows: list[ShadowRow], said: str, why: list[str]) -> None:
    columns = frame([shadow_row(0)]).columns
    data = frame(rows) if rows else pd.DataFrame(columns=columns)
    assert verdict(window_stats(data, T0, T0 + 200, min_labels=1), Limits()) == (said, why)


def test_an_accuracy_drop_beyond_the_limit_is_a_no_go() -> None:
    rows = [shadow_row(i, prediction=1, decision="approve") for i in range(30)]  # the shadow says 1, wrongly
    stats = window_stats(frame(rows, {f"r{i}": 0 for i in range(30)}), T0, T0 + 100, min_labels=30)
    assert verdict(stats, Limits()) == (NO_GO, ["accuracy 1.000 below the champion's (at most 0.08)"])


def test_the_shadow_bucket_is_sticky_shared_out_and_independent_of_the_canary_split() -> None:
    from lab_runtime.service.routing import bucket

    ids = [f"req-{i}" for i in range(4000)]
    half = [i for i in ids if mirrored(i, 0.5)]
    assert 0.45 < len(half) / len(ids) < 0.55 and half == [i for i in ids if mirrored(i, 0.5)]
    assert all(mirrored(i, 1.0) for i in ids) and not any(mirrored(i, 0.0) for i in ids)
    canary = {i for i in ids if bucket(i) < 0.5}
    both = len(canary & set(half)) / len(ids)
    assert 0.2 < both < 0.3  # independent: a quarter of requests are in both halves, not a half or none


class Features(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float


class Scorer:
    """A stand-in closed form: class 1 when x > 0.5; raises or blocks when told to."""

    def __init__(self, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.fail, self.gate, self.calls = fail, gate, 0
        self.sizes: list[int] = []

    def score(self, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        self.sizes.append(len(records))
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail:
            raise ValueError("boom")
        x = np.array([r["x"] for r in records])
        return (x > 0.5).astype(int), x


def model(version: str, scorer: Scorer) -> LoadedModel:
    return LoadedModel(version, None, [("x", "double", True)], Features, scorer)  # type: ignore[arg-type]


class Mirror:
    """A ShadowMirror on stand-ins, the rows it logs collected."""

    def __init__(self, staging: LoadedModel | None, maxsize: int = 256, gather: float = 0.0) -> None:
        self.rows: list[Row] = []
        self.staging = staging
        self.metrics = ServiceMetrics(lambda: 0)
        policy = load_policy()
        mirror = ShadowMirror(
            self.rows.extend, lambda: policy, lambda: self.staging, self.metrics, maxsize, gather=gather
        )
        self.mirror = mirror

    def offer(self, i: int, features: dict[str, Any], version: str | None = None) -> None:
        staging = self.staging if version is None else model(version, Scorer())
        assert staging is not None
        row = ShadowRow(T0 + i, f"r{i}", staging.version, DROPPED, "1", 0, 0.1, "approve", 5.0)
        self.mirror.offer(Mirrored(staging, features, {}, row))

    def outcomes(self) -> list[str]:
        return [r.outcome for r in self.rows if isinstance(r, ShadowRow)]

    def counted(self, outcome: str, version: str = "2") -> float:
        value = self.metrics.registry.get_sample_value(
            "lab_shadow_records_total", {"outcome": outcome, "version": version}
        )
        return value or 0.0


def test_the_mirror_scores_decides_and_logs_beside_the_champion() -> None:
    box = Mirror(model("2", Scorer()))
    box.offer(0, {"x": 0.1})
    box.offer(1, {"x": 0.9})
    box.offer(2, {"x": "high"})  # does not fit version 2's signature
    wait_for(lambda: len(box.rows) == 3, 5, "three shadow rows")
    box.mirror.stop()
    scored = sorted((r for r in box.rows if isinstance(r, ShadowRow)), key=lambda r: r.request_id)
    assert [(r.outcome, r.prediction, r.decision) for r in scored[:2]] == [
        (SCORED, 0, "approve"),
        (SCORED, 1, "decline"),
    ]
    assert scored[0].latency_ms is not None and scored[0].champion_latency_ms == 5.0
    assert scored[2].outcome == ERROR and scored[2].error is not None
    assert scored[2].error.startswith(
        "the record does not fit version 2's signature: x: Input should be a valid number"
    )
    assert box.counted(SCORED) == 2 and box.counted(ERROR) == 1
    assert box.metrics.registry.get_sample_value("lab_shadow_disagreements_total", {"version": "2"}) == 1


def test_a_staging_version_that_raises_logs_errors_and_the_mirror_goes_on() -> None:
    box = Mirror(model("2", Scorer(fail=True)))
    for i in range(3):
        box.offer(i, {"x": 0.2})
    wait_for(lambda: len(box.rows) == 3, 5, "three error rows")
    assert box.outcomes() == [ERROR] * 3
    assert all(r.error == "version 2 failed to score: ValueError: boom" for r in box.rows if isinstance(r, ShadowRow))
    box.staging = model("3", Scorer())
    box.offer(3, {"x": 0.2}, version="3")
    wait_for(lambda: len(box.rows) == 4, 5, "the next version's row")
    box.mirror.stop()
    assert box.outcomes()[-1] == SCORED


def test_a_hanging_staging_version_never_blocks_an_offer_records_beyond_the_queue_are_dropped() -> None:
    gate = threading.Event()
    scorer = Scorer(gate=gate)
    box = Mirror(model("2", scorer), maxsize=4)
    box.offer(0, {"x": 0.2})
    wait_for(lambda: scorer.calls == 1, 5, "the worker stuck in the staging version's call")
    for i in range(1, 21):  # 20 offers while the shadow hangs: a blocking put on a queue of 4 would never return
        box.offer(i, {"x": 0.2})
    assert box.mirror.depth() == 4 and box.mirror.dropped == 16 and box.counted(DROPPED) == 16
    assert box.outcomes() == [DROPPED] * 16  # logged at once, with the champion's answer
    gate.set()
    wait_for(lambda: len(box.rows) == 21, 5, "every record logged")
    box.mirror.stop()
    assert box.outcomes().count(SCORED) == 5


def test_records_that_arrive_together_are_scored_in_one_call() -> None:
    scorer = Scorer()
    box = Mirror(model("2", scorer), gather=1.0)  # far longer than three offers take, even on a busy machine
    for i in range(3):
        box.offer(i, {"x": 0.2})
    wait_for(lambda: len(box.rows) == 3, 5, "the three records logged")
    box.mirror.stop()
    assert scorer.sizes == [3] and box.outcomes() == [SCORED] * 3


def test_records_queued_for_a_shadow_that_ended_are_dropped_not_scored() -> None:
    gate = threading.Event()
    scorer = Scorer(gate=gate)
    box = Mirror(model("2", scorer))
    box.offer(0, {"x": 0.2})
    wait_for(lambda: scorer.calls == 1, 5, "the worker stuck in the staging version's call")
    box.offer(1, {"x": 0.2})
    box.offer(2, {"x": 0.2})
    box.staging = None  # the shadow stopped while the staging version hung
    gate.set()
    wait_for(lambda: len(box.rows) == 3, 5, "every record logged")
    box.mirror.stop()
    assert box.outcomes() == [SCORED, DROPPED, DROPPED] and box.mirror.dropped == 2 and scorer.calls == 1


def test_a_hanging_version_never_holds_up_the_next_one() -> None:
    gate = threading.Event()
    box = Mirror(model("2", Scorer(gate=gate)))
    box.offer(0, {"x": 0.2})
    box.offer(1, {"x": 0.2})
    wait_for(lambda: box.mirror.depth() <= 1, 5, "version 2's worker in its call")
    box.staging = model("3", Scorer())  # @staging moved while version 2 hangs
    box.offer(2, {"x": 0.9}, version="3")
    wait_for(lambda: len(box.rows) == 1, 5, "version 3's answer")
    assert [(r.version, r.outcome) for r in box.rows if isinstance(r, ShadowRow)] == [("3", SCORED)]
    gate.set()
    wait_for(lambda: len(box.rows) == 3, 5, "version 2's records logged")
    box.mirror.stop()
    by_version = sorted((r.version, r.request_id, r.outcome) for r in box.rows if isinstance(r, ShadowRow))
    assert [(v, o) for v, _, o in by_version] == [("2", SCORED), ("2", DROPPED), ("3", SCORED)]
    assert box.mirror.depth() == 0  # the one in its call answered; the one queued behind it dropped


def test_the_follower_loads_staging_only_while_a_shadow_share_is_set() -> None:
    class Registry:
        state = ModelState("credit-risk", {"champion": "1", "staging": "2"}, {})

        def model(self, name: str) -> ModelState:
            return self.state

    registry = Registry()
    loads: list[str] = []

    def loader(version: str) -> LoadedModel:
        loads.append(version)
        return LoadedModel(version, None, [], BaseModel)

    follower = ModelFollower(registry, "credit-risk", 0.5, loader=loader)  # type: ignore[arg-type]
    follower.poll_once()
    assert loads == ["1"] and follower.serving.staging is None and follower.serving.shadow_share == 0.0
    registry.state = ModelState("credit-risk", {"champion": "1", "staging": "2"}, {SHADOW_SHARE_TAG: "0.25"})
    follower.poll_once()
    serving = follower.serving
    assert serving.staging is not None and serving.staging.version == "2" and serving.shadow_share == 0.25
    assert serving.describe() == "champion version 1, shadow version 2 at 25%"
    registry.state = ModelState("credit-risk", {"champion": "1", "staging": "2"}, {SHADOW_SHARE_TAG: "0"})
    follower.poll_once()
    assert follower.serving.staging is None and loads == ["1", "2"]
