"""A burst of 5xx answers from the real model service (an errors fault put through its admin endpoint): its log
gets one line per error up to the limit, then a summary, and `lab logs` shows them; before, it says the log is
empty instead of printing nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from lab_runtime.cli import app
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.service.admin_client import ServiceAdmin
from lab_runtime.service.errorlog import LIMIT
from lab_runtime.service.faults import ServiceFault
from lab_runtime.settings import Settings
from tests.lab_runtime.services import serving_champion
from tests.sandbox import wait_for

pytestmark = pytest.mark.integration

FEATURES_ROW = json.loads(DataGenerator(9).production(0, 1)[list(FEATURES)].to_json(orient="records"))[0]
BURST = 30
ERROR_LINE = re.compile(r"ERROR lab_runtime\.service HTTP 503 for POST /predict \(request_id (burst-\d+)\): (.*)$")
SUMMARY = re.compile(r"ERROR lab_runtime\.service (\d+) more errors? suppressed in the last [\d.]+s ")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with serving_champion(tmp_path_factory.mktemp("errorlog") / "state") as current:
        yield current


def log_lines(settings: Settings) -> list[str]:
    return (settings.logs_dir / "model-service.log").read_text().splitlines()


def test_a_5xx_burst_is_logged_one_line_each_up_to_the_limit_then_summed_up_and_lab_logs_shows_it(
    settings: Settings,
) -> None:
    before = CliRunner().invoke(app, ["logs", "model-service"])  # what it serves, and no error yet
    assert before.exit_code == 0, before.output
    assert "now serving champion version 1 (was no model)" in before.stdout
    assert not ERROR_LINE.search(before.stdout) and not SUMMARY.search(before.stdout), before.stdout

    admin = ServiceAdmin(settings)
    admin.put("burst", ServiceFault(kind="errors", status=503, ttl=60))
    try:
        with httpx.Client(base_url=settings.service_url, timeout=10) as client:
            for i in range(BURST):
                record = {"request_id": f"burst-{i}", "features": FEATURES_ROW}
                assert client.post("/predict", json=record).status_code == 503
    finally:
        admin.clear()

    def summed_up() -> bool:  # the last summary comes when its window ends, with no later error to bring it
        lines = log_lines(settings)
        logged = sum(1 for line in lines if ERROR_LINE.search(line))
        return logged + sum(int(m[1]) for line in lines if (m := SUMMARY.search(line))) == BURST

    wait_for(summed_up, 10, "every error of the burst logged or counted in a summary")
    lines = log_lines(settings)
    errors = [m for line in lines if (m := ERROR_LINE.search(line))]
    assert [m[1] for m in errors[:LIMIT]] == [f"burst-{i}" for i in range(LIMIT)]
    assert {m[2] for m in errors} == {"service unavailable"}  # what a failing server says, nothing about a fault
    assert any(SUMMARY.search(line) for line in lines) and len(errors) < BURST
    served = [line for line in lines if "now serving" in line]
    assert all(ERROR_LINE.search(line) or SUMMARY.search(line) for line in lines if line not in served), lines

    shown = CliRunner().invoke(app, ["logs", "model-service", "--lines", "2"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == lines[-2:] and SUMMARY.search(shown.stdout.splitlines()[-1])


def test_answers_below_500_write_no_line(settings: Settings) -> None:
    before = len(log_lines(settings))
    with httpx.Client(base_url=settings.service_url, timeout=10) as client:
        assert client.post("/predict", json={"request_id": "bad", "features": {"nope": 1}}).status_code == 422
        assert client.post("/predict", json={"request_id": "good", "features": FEATURES_ROW}).status_code == 200
        assert client.get("/admin/faults").status_code == 401
        admin = ServiceAdmin(settings)
        # A line to wait for: once it is there, any line of the answers before it would be there too.
        admin.put("marker", ServiceFault(kind="errors", status=503, ttl=60))
        try:
            assert client.post("/predict", json={"request_id": "marker", "features": FEATURES_ROW}).status_code == 503
        finally:
            admin.clear()
    wait_for(lambda: len(log_lines(settings)) > before, 10, "the marker's line")
    new = log_lines(settings)[before:]
    assert len(new) == 1 and "(request_id marker): service unavailable" in new[0], new
