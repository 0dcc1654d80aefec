"""The pipeline in the real sandbox: traffic and labels reach the prediction log, a bad release and its
rollback through the `lab` command, and `lab load` with Locust."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab_runtime.events import PIPELINE_DEPLOYED
from lab_runtime.journal import Journal
from lab_runtime.pipeline.traffic import read_status
from lab_runtime.predlog import PredictionLog
from tests.cli import lab
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.integration

RENAMED = """\
version: v2-renamed
note: the bureau renamed income
transforms:
  - {type: rename, feature: income, to: annual_income}
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("pipeline") / "state") as box:
        champion = box.versions[0].version
        wait_for(lambda: httpx.get(f"{box.settings.service_url}/model").json()["champion"] == champion, 60, "champion")
        wait_for(lambda: status(box)["state"] == "sending", 15, "the pipeline sending")
        yield box


def status(box: Sandbox) -> dict[str, Any]:
    return read_status(box.settings.pipeline_status_path) or {"state": None}


def counter(box: Sandbox, name: str) -> int:
    return int(status(box)["counters"][name])


def test_the_pipeline_sends_traffic_at_about_the_set_rate_and_labels_arrive(sandbox: Sandbox) -> None:
    # the status's rate is over the last 10 s, which may include its wait for a champion
    want = sandbox.settings.pipeline_rate
    wait_for(
        lambda: 0.9 * want < status(sandbox)["actual_rate"] < 1.1 * want, 15, f"the pipeline's own rate near {want:g}/s"
    )
    log = PredictionLog(sandbox.settings.prediction_log_path)
    labels_before, started = log.labels(), time.time()
    time.sleep(5.0)
    rate = log.count(since=started) / (time.time() - started)
    assert 0.75 * want < rate < 1.15 * want, rate
    ids = log.window(started)["request_id"]
    assert ids.str.fullmatch(rf"s{sandbox.settings.seed}-\d+").all()
    wait_for(lambda: log.labels() - labels_before > 60, 5, "labels in the prediction log")
    share = (log.labels() - labels_before) / log.count(since=started)
    assert 0.3 < share < 0.7, share  # label_share 0.5, one second behind
    assert status(sandbox)["counters"]["rejected_4xx"] == 0


def test_pipeline_rollback_restores_healthy_traffic(sandbox: Sandbox, tmp_path: Path) -> None:
    release = tmp_path / "v2-renamed.yaml"
    release.write_text(RENAMED)
    rejected = counter(sandbox, "rejected_4xx")
    shipped = lab("pipeline", "ship", str(release))
    assert shipped.returncode == 0, shipped.stderr
    assert "shipped v2-renamed (was v1)" in shipped.stdout
    wait_for(lambda: counter(sandbox, "rejected_4xx") > rejected + 40, 5, "the service refusing the renamed column")
    error = status(sandbox)["last_error"]
    assert error["status"] == 422 and "annual_income" in error["body"]
    shown = lab("pipeline", "status")
    assert shown.returncode == 0, shown.stderr
    assert "release    v2-renamed (deployed" in shown.stdout and "by instructor, ship)" in shown.stdout
    assert re.search(r"\d+ rejected \(4xx\)", shown.stdout) and "last error 422 at" in shown.stdout

    rolled = lab("pipeline", "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back from v2-renamed to v1" in rolled.stdout
    time.sleep(1.5)  # the pipeline follows within a second; requests in flight may still be refused
    rejected, ok = counter(sandbox, "rejected_4xx"), counter(sandbox, "ok")
    time.sleep(2.0)
    assert counter(sandbox, "rejected_4xx") == rejected
    assert counter(sandbox, "ok") - ok > 50
    events = Journal(sandbox.settings.journal_path, source="test").events([PIPELINE_DEPLOYED])
    assert [(e.payload["version"], e.payload["reason"], e.payload["by"]) for e in events] == [
        ("v2-renamed", "ship", "instructor"),
        ("v1", "rollback", "learner"),
    ]


def test_lab_load_prints_throughput_and_latency_with_no_failures(sandbox: Sandbox) -> None:
    started = time.monotonic()
    result = lab("load", "--users", "2", "--spawn-rate", "2", "--duration", "5s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    header, row = [line for line in result.stdout.splitlines() if line.startswith("┃") or line.startswith("│")][:2]
    cells = dict(zip(header.strip("┃").split("┃"), row.strip("│").split("│"), strict=True))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    assert float(cells["requests/s"]) > 5 and int(cells["requests"]) > 20
    assert cells["failures"] == "0"
    assert float(cells["p50 ms"]) <= float(cells["p95 ms"]) <= float(cells["p99 ms"])
    assert list(sandbox.settings.load_dir.glob("*_stats.csv"))
