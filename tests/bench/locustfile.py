"""Locust load for bench_serving.py: one single-record scoring request per task, no wait time.

BENCH_TARGET is "lab" (our POST /predict) or "mlflow" (MLflow's POST /invocations); BENCH_RECORDS is a JSON
file holding a list of feature dicts, cycled through so that every request scores a different record.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, task

TARGET = os.environ["BENCH_TARGET"]
if TARGET not in ("lab", "mlflow"):
    raise SystemExit(f"BENCH_TARGET must be 'lab' or 'mlflow', not {TARGET!r}")
RECORDS: list[dict[str, Any]] = json.loads(Path(os.environ["BENCH_RECORDS"]).read_text())
_counter = itertools.count()  # shared by all users; gevent switches only on I/O, so no lock is needed
_run = uuid.uuid4().hex[:8]  # request ids stay unique across runs against the same service


def _request() -> tuple[str, dict[str, Any]]:
    n = next(_counter)
    features = RECORDS[n % len(RECORDS)]
    if TARGET == "lab":
        return "/predict", {"request_id": f"bench-{_run}-{n}", "features": features}
    return "/invocations", {"dataframe_records": [features]}


class ScoringUser(FastHttpUser):
    wait_time = constant(0)  # back-to-back requests: measure capacity, not a think-time model

    @task
    def score(self) -> None:
        path, body = _request()
        self.client.post(path, json=body)
