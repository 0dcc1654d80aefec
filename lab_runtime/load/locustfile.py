"""Locust load for `lab load`: single-record `POST /predict` requests, back to back, from the production stream.

Rows come from the same seeded stream as the pipeline's, at a far offset so they never collide with it;
request ids are `load-<run>-<n>`. Run by Locust in its own process, never imported by the CLI.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import gevent
from locust import FastHttpUser, constant, task

from lab_runtime.data import FEATURES, DataGenerator
from lab_runtime.pipeline.releases import to_features
from lab_runtime.settings import load_settings

OFFSET = 1_000_000_000  # stream position of the first row: far beyond anything the pipeline will reach
ROWS = 2000
_rows = DataGenerator(load_settings().seed).production(OFFSET, ROWS)
RECORDS: list[dict[str, Any]] = to_features(_rows[list(FEATURES)])
_counter = itertools.count()  # shared by all users; gevent switches only on I/O, so no lock is needed
_run = uuid.uuid4().hex[:8]  # ids stay unique across runs against the same service
# The import above kept the CPU busy without yielding, so gevent's cached clock is stale: Locust would start
# its --run-time timer from that stale time and stop early by as long as the import took.
gevent.get_hub().loop.update_now()


class ScoringUser(FastHttpUser):
    wait_time = constant(0)  # back-to-back requests: measure capacity, not a think-time model

    @task
    def score(self) -> None:
        n = next(_counter)
        self.client.post("/predict", json={"request_id": f"load-{_run}-{n}", "features": RECORDS[n % ROWS]})
