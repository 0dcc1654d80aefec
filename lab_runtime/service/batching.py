"""Micro-batching: records that arrive together are scored in one model call.

Handlers queue their records and await a future; one task takes everything queued since its last
turn, scores it per model version in one call, and resolves the futures. Under load many requests
share each call; alone, a request waits for nothing but its own scoring.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from lab_runtime.service.models import LoadedModel

Scored = tuple[np.ndarray, np.ndarray]
_Item = tuple[LoadedModel, list[dict[str, Any]], "asyncio.Future[Scored]"]


class Batcher:
    def __init__(self, max_records: int = 256) -> None:
        self.max_records = max_records
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def score(self, model: LoadedModel, records: list[dict[str, Any]]) -> Scored:
        if self._task is None or self._task.done():  # a task that ended is replaced; the queue is kept
            self._task = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        await self._queue.put((model, records, future))
        return await future

    def _take(self, first: _Item) -> list[_Item]:
        items, count = [first], len(first[1])
        while count < self.max_records and not self._queue.empty():
            item = self._queue.get_nowait()
            items.append(item)
            count += len(item[1])
        return items

    async def _run(self) -> None:
        while True:
            items = self._take(await self._queue.get())
            by_model: dict[int, list[_Item]] = {}
            for item in items:
                by_model.setdefault(id(item[0]), []).append(item)
            for group in by_model.values():
                _score_group(group)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _score_group(group: list[_Item]) -> None:
    """One model call for every record of `group`, each future given its own slice."""
    model = group[0][0]
    try:
        predictions, probabilities = model.score([r for _, records, _ in group for r in records])
    except Exception as exc:  # hand the failure to every waiting request
        for *_, future in group:
            if not future.done():
                future.set_exception(exc)
        return
    start = 0
    for _, records, future in group:
        end = start + len(records)
        if not future.done():
            future.set_result((predictions[start:end], probabilities[start:end]))
        start = end
