"""Micro-batching: records that arrive together are scored in one model call.

Handlers queue their records and await a future; one task takes everything queued since its last
turn, scores it per model version in one call, and resolves the futures. Under load many requests
share each call; alone, a request waits for nothing but its own scoring. Scoring runs in worker
threads, one call per version at a time, so a slow version never stalls the event loop (health checks,
other versions' requests).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from lab_runtime.service.models import LoadedModel

Scored = tuple[np.ndarray, np.ndarray]
_Item = tuple[LoadedModel, list[dict[str, Any]], "asyncio.Future[Scored]"]


class Batcher:
    """One queue and one scoring task per model version: versions never wait for each other."""

    def __init__(self, max_records: int = 256) -> None:
        self.max_records = max_records
        self._lanes: dict[str, tuple[asyncio.Queue[_Item], asyncio.Task[None]]] = {}

    async def score(self, model: LoadedModel, records: list[dict[str, Any]]) -> Scored:
        lane = self._lanes.get(model.version)
        if lane is None or lane[1].done():  # a task that ended is replaced; the queue is kept
            queue: asyncio.Queue[_Item] = lane[0] if lane else asyncio.Queue()
            lane = self._lanes[model.version] = (queue, asyncio.get_running_loop().create_task(self._run(queue)))
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        await lane[0].put((model, records, future))
        return await future

    def _take(self, queue: asyncio.Queue[_Item], first: _Item) -> list[_Item]:
        items, count = [first], len(first[1])
        while count < self.max_records and not queue.empty():
            item = queue.get_nowait()
            items.append(item)
            count += len(item[1])
        return items

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = self._take(queue, await queue.get())
            await asyncio.to_thread(_score_group, items)

    def close(self) -> None:
        for _, task in self._lanes.values():
            task.cancel()


def _score_group(group: list[_Item]) -> None:
    """One model call for every record of `group` (in a worker thread); each future gets its own slice."""
    model = group[0][0]
    loop = group[0][2].get_loop()
    try:
        predictions, probabilities = model.score([r for _, records, _ in group for r in records])
    except Exception as exc:  # hand the failure to every waiting request
        for *_, future in group:
            loop.call_soon_threadsafe(_settle, future, None, exc)
        return
    start = 0
    for _, records, future in group:
        end = start + len(records)
        loop.call_soon_threadsafe(_settle, future, (predictions[start:end], probabilities[start:end]), None)
        start = end


def _settle(future: asyncio.Future[Scored], result: Scored | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)
