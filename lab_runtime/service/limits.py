"""Limits on request bodies, enforced while a body streams in: its size (`MAX_BODY_BYTES`, answered 413) and how deep
its JSON nests (`MAX_DEPTH`, answered 400). `DepthScanner` (pure) follows the nesting across chunks; `BodyLimits`
(ASGI) wraps `receive`, so an endpoint reading the body gets `BodyRefused` as soon as a limit is passed: a body
announced too large is refused before any of it is read, a streamed one at the first byte past the limit."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1_048_576  # 1 MiB: a full /predict batch of 1,000 records takes about 250 kB
MAX_DEPTH = 32  # levels of JSON nesting; a /predict batch takes 4, /feedback 1

TOO_LARGE = (
    f"the request body is larger than the limit of {MAX_BODY_BYTES} bytes (1 MiB); send the records in smaller batches"
)
TOO_DEEP = (
    f"the request body's JSON nests deeper than the limit of {MAX_DEPTH} levels; "
    "a /predict batch takes 4: send records as flat objects of features"
)

_SPECIAL = re.compile(rb'[\[\]{}"\\]')
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class BodyRefused(HTTPException):
    """A request body past a limit: 413 (size) or 400 (nesting), with a message naming the limit."""


class DepthScanner:
    """How deep the JSON fed so far nests, brackets inside strings not counted; `feed` says whether it is still
    within `limit`. Not a JSON validator: the parser that reads the body judges everything else."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._escaped = False  # the last chunk ended on a backslash inside a string

    def feed(self, chunk: bytes) -> bool:
        skip = 0
        if self._escaped and chunk:
            self._escaped, skip = False, 1
        for match in _SPECIAL.finditer(chunk, skip):
            i = match.start()
            if i < skip:  # the character after a backslash
                continue
            char = chunk[i]
            if self._in_string:
                if char == _BACKSLASH:
                    skip = i + 2
                    self._escaped = skip > len(chunk)
                elif char == _QUOTE:
                    self._in_string = False
            elif char == _QUOTE:
                self._in_string = True
            elif char in _OPEN:
                self.depth += 1
                if self.depth > self.limit:
                    return False
            elif char in _CLOSE:
                self.depth = max(0, self.depth - 1)
        return True


class BodyLimits:
    """Refuses a request body over `max_bytes` (413) or nesting deeper than `max_depth` (400) by raising
    `BodyRefused` from `receive`; FastAPI answers it as `{"detail": message}`, and an endpoint reading the body
    itself can catch it to count the answer."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH) -> None:
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        scanner = DepthScanner(self.max_depth)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if announced is not None and announced > self.max_bytes:
                raise BodyRefused(413, TOO_LARGE)
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.max_bytes:
                    raise BodyRefused(413, TOO_LARGE)
                if not scanner.feed(chunk):
                    raise BodyRefused(400, TOO_DEEP)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
