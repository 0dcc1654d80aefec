"""The rows a load run sends: fresh production rows from the pipeline's own generator, never one twice.

A source reads its own block of the production stream: block `b` holds rows `b * BLOCK` to `(b + 1) * BLOCK`,
more than any load run sends, and block 0 (where the pipeline's stream lies) is never drawn. A source picks
its block at random among 2**62, so two sources (two Locust processes, two runs) share no row unless they
drew the same block. The rows follow the reference population, so the monitor sees honest traffic.
"""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any

from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.pipeline.releases import to_features

BATCH = 500  # rows drawn at a time: one chunk of the generator
BLOCK = BATCH * 2**24  # rows in a block: 8.4 billion
BLOCKS = 2**62


class LoadRows:
    """Endless `(request_id, features)` pairs from one block of the production stream, each row drawn once."""

    def __init__(self, generator: DataGenerator, block: int | None = None) -> None:
        self.generator = generator
        self.block = 1 + secrets.randbelow(BLOCKS) if block is None else block
        if self.block < 1:
            raise ValueError(f"block {self.block}: block 0 is the pipeline's stream")
        self._sent = 0
        self._batch: deque[dict[str, Any]] = deque()

    def __iter__(self) -> LoadRows:
        return self

    def __next__(self) -> tuple[str, dict[str, Any]]:
        if not self._batch:
            rows = self.generator.production(self.block * BLOCK + self._sent, BATCH)
            self._batch.extend(to_features(rows[list(FEATURES)]))
        n = self._sent
        self._sent += 1
        return f"load-{self.block:x}-{n}", self._batch.popleft()
