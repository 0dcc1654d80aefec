"""Shadow traffic on real servers (MLflow and the model service): `lab shadow start|status|stop` on a staged version,
a hanging staging version that never changes or delays the champion's answers, and the refusals."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lab_runtime.events import LEARNER_ACTION, SHADOW_START, SHADOW_STOP
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES, LABEL
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import Registered, Regression, train_and_register
from lab_runtime.predlog import SCORED, PredictionLog
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import STAGING
from lab_runtime.settings import Settings
from tests.cli import lab, ok, one_line_error
from tests.lab_runtime.services import serving_champion
from tests.sandbox import wait_for

pytestmark = pytest.mark.integration

HANG_MS = 3_000.0  # the slow version's every call: 3x any answer's bound below (training it scores it 3 times)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with serving_champion(tmp_path_factory.mktemp("shadow") / "state") as settings:
        yield settings


@pytest.fixture(scope="module")
def twin(sandbox: Settings) -> Registered:
    """A healthy candidate, version 2: the champion's model a little less regularised."""
    return train_and_register(sandbox.mlflow_url, sandbox.model_name, C=0.5)


@pytest.fixture(scope="module")
def slow(sandbox: Settings, twin: Registered) -> Registered:
    """Version 3: every call sleeps 3 s, a staging version that hangs."""
    return train_and_register(sandbox.mlflow_url, sandbox.model_name, regression=Regression(slow_predict_ms=HANG_MS))


@pytest.fixture(autouse=True)
def no_shadow(sandbox: Settings) -> Iterator[None]:
    """Every test ends with no shadow and no @staging, as the service sees it. (What a hanging version still holds
    is dropped once its call returns; the next version has a queue and a worker of its own meanwhile.)"""
    yield
    model_ops._set_shadow_share(sandbox, 0.0)
    model_ops.delete_alias(sandbox, STAGING)
    wait_for(lambda: served(sandbox)["shadow"]["staging"] is None, 30, "the shadow gone from /model")


def served(settings: Settings) -> dict[str, Any]:
    return dict(httpx.get(f"{settings.service_url}/model", timeout=5).json())


def records(n: int, start: int = 0) -> list[dict[str, Any]]:
    """`n` production rows, features and label."""
    rows = DataGenerator(7).production(start, n)[[*FEATURES, LABEL]]
    return list(json.loads(rows.to_json(orient="records")))


def predict(client: httpx.Client, request_id: str, row: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """The champion's answer to one record, and how long the caller waited for it (seconds)."""
    started = time.perf_counter()
    answer = client.post("/predict", json={"request_id": request_id, "features": {f: row[f] for f in FEATURES}})
    waited = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    return dict(answer.json()), waited


def shadow_start(settings: Settings, version: str, share: str = "1") -> None:
    model_ops.set_alias(settings, STAGING, version)
    started = lab("shadow", "start", version, "--share", share, "--json")
    assert json.loads(ok(started)) == {"staging": version, "share": float(share), "from": 0.0}
    wait_for(lambda: served(settings)["shadow"]["staging"] == version, 30, f"version {version} shadowing")


def scored(settings: Settings, version: str, since: float) -> int:
    log = PredictionLog(settings.prediction_log_path)
    try:
        rows = log.shadow(since, version=version)
    finally:
        log.close()
    return int((rows["outcome"] == SCORED).sum())


def actions(settings: Settings, since: float) -> list[dict[str, Any]]:
    events = Journal(settings.journal_path, source="test").events([LEARNER_ACTION], since=since)
    return [e.payload for e in events if e.payload["action"] in (SHADOW_START, SHADOW_STOP)]


def test_a_shadow_of_the_staged_version_is_compared_with_the_champion_per_window(
    sandbox: Settings, twin: Registered
) -> None:
    since = time.time()
    shadow_start(sandbox, twin.version)
    rows = records(80)
    with httpx.Client(base_url=sandbox.service_url, timeout=10) as client:
        for i, row in enumerate(rows):
            answer, _ = predict(client, f"agree-{i}", row)
            assert answer["model_version"] == "1" and answer["variant"] == "champion"  # the shadow's never shows
            client.post("/feedback", json={"request_id": f"agree-{i}", "label": row[LABEL]}).raise_for_status()
    wait_for(lambda: scored(sandbox, twin.version, since) == len(rows), 30, "every record scored by the shadow")

    two_windows = ("--window", "30s", "--windows", "2")
    status = json.loads(ok(lab("shadow", "status", *two_windows, "--min-labels", "30", "--json")))
    assert (status["staging"], status["share"], status["verdict"], status["reasons"]) == (twin.version, 1.0, "go", [])
    total = status["total"]
    assert (total["mirrored"], total["compared"], total["errors"], total["dropped"]) == (80, 80, 0, 0)
    assert total["decision_agreement"] > 0.9 and total["class_agreement"] > 0.9
    shadow, champion = total["shadow"], total["champion"]
    assert shadow["latency_p99_ms"] is not None and champion["latency_p99_ms"] is not None
    assert total["labelled"] >= 30 and shadow["accuracy"] > 0.6 and champion["accuracy"] > 0.6
    newest, older = status["windows"]
    assert newest["end"] > older["end"] and newest["mirrored"] + older["mirrored"] == 80
    assert (status["service"]["staging"], status["service"]["share"]) == (twin.version, 1.0)
    shown = ok(lab("shadow", "status", *two_windows))
    assert f"shadow of version {twin.version} (@staging) at 100%" in shown
    assert re.search(rf"verdict on version {twin.version} over the last 2 x 30s: go \(80 compared", shown), shown

    stopped = json.loads(ok(lab("shadow", "stop", "--json")))
    assert stopped == {"staging": twin.version, "from": 1.0, "share": 0.0, "verdict": "go", "reasons": []}
    assert actions(sandbox, since) == [
        {"action": SHADOW_START, "version": twin.version, "share": 1.0},
        {"action": SHADOW_STOP, "version": twin.version, "from": 1.0, "verdict": "go", "note": ""},
    ]
    wait_for(lambda: served(sandbox)["shadow"]["staging"] is None, 30, "the shadow stopped")
    after = ok(lab("shadow", "status"))
    assert f"no shadow runs now: `lab shadow start {twin.version} --share 0.5` starts one" in after


def test_a_hanging_staging_version_never_changes_or_delays_the_champions_answers(
    sandbox: Settings, slow: Registered
) -> None:
    rows = records(40, start=1000)
    with httpx.Client(base_url=sandbox.service_url, timeout=10) as client:
        alone = [predict(client, f"hang-{i}", row) for i, row in enumerate(rows)]
        shadow_start(sandbox, slow.version)
        shadowed = [predict(client, f"hang-{i}", row) for i, row in enumerate(rows)]
        assert [a for a, _ in shadowed] == [a for a, _ in alone]  # the same answers, to the last digit
        assert max(w for _, w in shadowed) < 1.0, [round(w, 3) for _, w in shadowed]  # the shadow sleeps 3 s a call
        # A batch overflows the shadow's queue (256) while its worker hangs: the overflow is dropped, not waited for.
        burst = [{"request_id": f"burst-{i}", "features": {f: r[f] for f in FEATURES}} for i, r in
                 enumerate(records(600, start=2000))]  # fmt: skip
        started = time.perf_counter()
        answer = client.post("/predict", json={"records": burst})
        assert answer.status_code == 200 and time.perf_counter() - started < 5.0
    model = served(sandbox)["shadow"]
    assert model["staging"] == slow.version and model["dropped"] >= 600 - 256
    metrics = httpx.get(f"{sandbox.service_url}/metrics", timeout=5).text
    dropped = re.search(rf'lab_shadow_records_total{{outcome="dropped",version="{slow.version}"}} (\S+)', metrics)
    assert dropped is not None and float(dropped.group(1)) == model["dropped"]

    status = json.loads(ok(lab("shadow", "status", "--window", "60s", "--windows", "1", "--json")))
    total = status["total"]
    assert total["dropped"] == model["dropped"] and total["errors"] == 0 and status["verdict"] == "no-go"
    assert any("dropped: it does not keep up with the traffic" in r for r in status["reasons"]), status["reasons"]


@pytest.mark.parametrize(
    ("args", "staged", "message"),
    [
        (["shadow", "start", "99"], "2", "model 'credit-risk' has no version '99'; its versions: 1, 2, 3"),
        (["shadow", "start", "1"], "2", "version 1 is not @staging (@staging is version 2); `lab model stage 1` puts"),
        (["shadow", "start", "3"], None, "version 3 is not @staging (there is no @staging); `lab model stage 3`"),
        (["shadow", "start", "2", "--share", "1.5"], "2", "a shadow share is a share above 0 and at most 1, not 1.5"),
        (["shadow", "start", "2", "--share", "0"], "2", "a shadow share is a share above 0 and at most 1, not 0"),
        (["shadow", "start", "2", "--share", "nan"], "2", "a shadow share is a share above 0 and at most 1, not nan"),
        (["shadow", "stop"], "2", "no shadow is running, so none to stop; nothing changed (`lab shadow start"),
        (["shadow", "status", "--window", "0s"], None, "--window must be longer than 0s"),
        (["shadow", "status", "--windows", "0"], None, "--windows is a count from 1 to 100, not 0"),
    ],
)
def test_bad_shadow_commands_are_refused_in_one_line(
    sandbox: Settings, slow: Registered, args: list[str], staged: str | None, message: str
) -> None:
    if staged is not None:
        model_ops.set_alias(sandbox, STAGING, staged)
    since = time.time()
    one_line_error(lab(*args), message)
    assert model_ops.state(sandbox).shadow_share == 0.0 and actions(sandbox, since) == []  # type: ignore[union-attr]
