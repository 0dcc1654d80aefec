"""Locust load for `lab load`: single-record `POST /predict` requests, back to back, of fresh production rows.

Each Locust process sends rows of its own (`LoadRows`: the pipeline's generator, a block of the stream no other
process reads, never a row twice), so a load run looks to the monitor like production traffic. Run by Locust in
its own process, never imported by the CLI.
"""

from __future__ import annotations

import os

import gevent
from locust import FastHttpUser, constant, task

from lab_runtime.load.rows import LoadRows
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.settings import load_settings

_generator = DataGenerator(load_settings().seed)
_sources: dict[int, LoadRows] = {}  # per process id: `locust --processes` forks after importing this file
# The import above kept the CPU busy without yielding, so gevent's cached clock is stale: Locust would start
# its --run-time timer from that stale time and stop early by as long as the import took.
gevent.get_hub().loop.update_now()


def _rows() -> LoadRows:
    """This process's rows; its users share them (gevent switches only on I/O, so no lock is needed)."""
    pid = os.getpid()
    if pid not in _sources:
        _sources[pid] = LoadRows(_generator)
    return _sources[pid]


class ScoringUser(FastHttpUser):
    wait_time = constant(0)  # back-to-back requests: measure capacity, not a think-time model

    @task
    def score(self) -> None:
        request_id, features = next(_rows())
        self.client.post("/predict", json={"request_id": request_id, "features": features})
