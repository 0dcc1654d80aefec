"""Real Locust against the real model service: every row a load run sends is new, across Locust processes too."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab_runtime.backends.services import settings_env
from lab_runtime.cli import app
from lab_runtime.load import LOCUSTFILE, locust_command, read_summary
from lab_runtime.predlog import PredictionLog
from lab_runtime.settings import Settings
from tests.lab_runtime.services import serving_champion
from tests.sandbox import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with serving_champion(tmp_path_factory.mktemp("load") / "state") as current:
        yield current


def load_rows(settings: Settings, requests: int) -> list[tuple[str, str]]:
    """(request id, features) of every load request the service logged, once at least `requests` are written."""
    log = PredictionLog(settings.prediction_log_path)

    def rows() -> list[tuple[str, str]]:
        return log._conn.execute(
            "SELECT request_id, features FROM predictions WHERE request_id LIKE 'load-%'"
        ).fetchall()

    wait_for(lambda: len(rows()) >= requests, 10, f"{requests} load requests in the prediction log")
    return rows()


def assert_all_new(rows: list[tuple[str, str]]) -> None:
    ids = [request_id for request_id, _ in rows]
    features = [json.dumps(json.loads(f), sort_keys=True) for _, f in rows]
    assert len(set(ids)) == len(ids) and len(set(features)) == len(features)


def test_lab_load_sends_each_row_once(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["load", "-u", "3", "-r", "3", "-t", "3s", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["failures"] == 0 and summary["requests"] > 20
    rows = load_rows(settings, summary["requests"])  # and the few in flight when Locust stopped
    assert_all_new(rows)


def test_two_locust_processes_never_send_the_same_row(settings: Settings, tmp_path: Path) -> None:
    before = {request_id for request_id, _ in load_rows(settings, 0)}
    prefix = tmp_path / "run"
    argv = [*locust_command(LOCUSTFILE, settings.service_url, 4, 4, 3, prefix), "--processes", "2"]
    env = {**os.environ, **settings_env(settings)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)
    summary = read_summary(prefix)
    assert done.returncode == 0 and summary is not None and summary.failures == 0, done.stderr[-2000:]
    rows = [row for row in load_rows(settings, len(before) + summary.requests) if row[0] not in before]
    assert len(rows) >= summary.requests  # Locust leaves out requests in flight when it stops
    assert_all_new(rows)
    blocks = {request_id.split("-")[1] for request_id, _ in rows}
    assert len(blocks) == 2  # one block of the stream per process
