"""One log line for every 5xx answer of the service, rate-limited: `LineLimiter` (pure, clock injected) decides
which lines are written; `ErrorLogMiddleware` (ASGI) sees each answer's status and writes them."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import traceback
from collections.abc import Callable, Collection
from http import HTTPStatus
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LIMIT = 5  # lines a period: the first errors of a burst in full, the rest counted
PERIOD = 1.0
MAX_REASON = 300  # characters of the answer's detail kept in a line


class LineLimiter:
    """At most `limit` lines per window of `period` seconds; a window opens with the first line offered after the
    last one ended. Lines past the limit are counted and reported in one summary line once their window ended:
    by the next `offer`, or by `flush` (the caller calls it at `window_end`)."""

    def __init__(self, limit: int = LIMIT, period: float = PERIOD, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.period, self.clock = limit, period, clock
        self._start = -math.inf
        self._passed = 0
        self.suppressed = 0  # in the current window, not yet reported

    @property
    def window_end(self) -> float:
        return self._start + self.period

    def offer(self, line: str) -> list[str]:
        """The lines to write now: the summary of an ended window, if it suppressed any, then `line` if there is
        room for it in its window."""
        now = self.clock()
        out = self._summary(now)
        if now >= self.window_end:
            self._start, self._passed = now, 0
        if self._passed < self.limit:
            self._passed += 1
            out.append(line)
        else:
            self.suppressed += 1
        return out

    def flush(self) -> list[str]:
        """The summary of the lines suppressed in a window that has ended (none while it lasts)."""
        return self._summary(self.clock())

    def _summary(self, now: float) -> list[str]:
        if not self.suppressed or now < self.window_end:
            return []
        count, self.suppressed = self.suppressed, 0
        noun = "error" if count == 1 else "errors"
        return [
            f"{count} more {noun} suppressed in the last {now - self._start:.1f}s "
            f"(at most {self.limit} logged per {self.period:g}s)"
        ]


def reason_of(body: bytes, status: int) -> str:
    """What an error answer says: its JSON `detail`, else its text's first line, else the status's phrase."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if detail is None:
        text = body.decode(errors="replace").strip()
        detail = text.splitlines()[0] if text else None
    if detail is None:
        try:
            detail = HTTPStatus(status).phrase.lower()
        except ValueError:
            detail = "server error"
    return one_line(detail if isinstance(detail, str) else json.dumps(detail))


def one_line(text: str) -> str:
    """`text` on one line, at most MAX_REASON characters."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _raised_at(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown place"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"


class ErrorLogMiddleware:
    """Logs one line per 5xx answer: status, method, path, the request id an endpoint put in `request.state`, and
    the answer's detail; at most `limit` lines a `period`, then one summary. An unhandled exception is answered
    with a 500 here and logged the same way (one line, where it was raised), not as a traceback. Paths in `quiet`
    are not logged (the readiness probe's 503 is its answer, not a failure)."""

    def __init__(
        self,
        app: ASGIApp,
        logger: logging.Logger,
        limit: int = LIMIT,
        period: float = PERIOD,
        quiet: Collection[str] = ("/ready",),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.logger, self.quiet = app, logger, frozenset(quiet)
        self.limiter = LineLimiter(limit, period, clock)
        self._flush_pending = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.quiet:
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 500 and len(body) < 4 * MAX_REASON:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            self._error(scope, 500, f"unhandled {type(exc).__name__}: {one_line(str(exc))} (at {_raised_at(exc)})")
            if status:  # the answer had begun: only the server can end the connection now
                raise
            answer = json.dumps({"detail": "internal server error"}).encode()
            await send({"type": "http.response.start", "status": 500, "headers": _json_headers(answer)})
            await send({"type": "http.response.body", "body": answer})
            return
        if status >= 500:
            self._error(scope, status, reason_of(bytes(body), status))

    def _error(self, scope: Scope, status: int, reason: str) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        request_id = state.get("request_id")
        about = f" (request_id {request_id})" if request_id else ""
        self._write(
            self.limiter.offer(f"HTTP {status} for {scope.get('method', '?')} {scope['path']}{about}: {reason}")
        )
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Have the summary written when its window ends, even if no error follows."""
        if self.limiter.suppressed and not self._flush_pending:
            self._flush_pending = True
            delay = max(0.0, self.limiter.window_end - self.limiter.clock())
            asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self._write(self.limiter.flush())
        self._schedule_flush()  # a later window may have suppressed lines since this call was planned

    def _write(self, lines: list[str]) -> None:
        for line in lines:
            self.logger.error(line)


def _json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
