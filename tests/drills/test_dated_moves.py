"""A learner's move is dated from when its command started, not from when it was journaled: the grader credits a fix
by that start. `lab up` and `lab model retrain` journal only after their slow part (starting processes, training)."""

from __future__ import annotations

import json
import time

import pytest
from mlflow import MlflowClient

from lab_runtime import clock
from lab_runtime import events as kinds
from lab_runtime.journal import Event
from lab_runtime.modeling.model import labelled_traffic
from tests.drills.learner import events, lab, last_event_id
from tests.sandbox import Sandbox, wait_for

pytestmark = pytest.mark.integration


def action(sandbox: Sandbox, since: int, name: str) -> Event:
    (found,) = [
        e
        for e in events(sandbox.settings, kinds_=[kinds.LEARNER_ACTION])
        if e.id > since and e.payload["action"] == name
    ]
    return found


def test_lab_model_retrain_is_dated_from_its_start_not_from_when_training_ended(sandbox: Sandbox) -> None:
    def labelled_rows() -> int:  # a drill before this one on the kept sandbox may have cut them (a feedback outage)
        return len(labelled_traffic(sandbox.settings, time.time() - 60)[0])

    wait_for(lambda: labelled_rows() >= 60, 60, "50 labelled predictions in the last minute, and some to spare")
    since = last_event_id(sandbox.settings)
    body = json.loads(lab("model", "retrain", "--window", "1m", "--min-rows", "50", "--json"))
    event = action(sandbox, since, "model.retrain")
    run = MlflowClient(sandbox.settings.mlflow_url).get_run(body["run_id"]).info
    assert event.began is not None and event.at == event.began
    assert event.began < run.start_time / 1000 < run.end_time / 1000 < event.ts  # began before the training did


def test_lab_up_is_dated_from_its_start_not_from_when_the_services_were_healthy(sandbox: Sandbox) -> None:
    sandbox.backend.kill("registry-watcher")
    since = last_event_id(sandbox.settings)
    lab("up")
    event = action(sandbox, since, "up")
    (watcher,) = [s for s in sandbox.backend.status() if s.name == "registry-watcher"]
    assert watcher.healthy and watcher.pid is not None
    assert event.payload["started"] == ["registry-watcher"] and event.began is not None
    assert event.began < clock.process_started(watcher.pid) < event.ts  # began before it started the watcher
