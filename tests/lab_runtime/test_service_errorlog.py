"""The service's error lines: the rate limiter on a fake clock, the reason taken from an answer, and the middleware
on a small real app (in process) (an endpoint's 503, an unhandled exception answered as one line and a 500)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from lab_runtime.service.errorlog import ErrorLogMiddleware, LineLimiter, reason_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_passes_the_first_lines_of_a_window_and_reports_the_rest_once_it_ends() -> None:
    clock = Clock()
    limiter = LineLimiter(limit=3, period=1.0, clock=clock)
    written = [line for i in range(10) for line in limiter.offer(f"error {i}")]
    assert written == ["error 0", "error 1", "error 2"]
    assert limiter.suppressed == 7 and limiter.flush() == []  # the window still lasts
    clock.now += 1.0
    assert limiter.flush() == ["7 more errors suppressed in the last 1.0s (at most 3 logged per 1s)"]
    assert limiter.flush() == [] and limiter.suppressed == 0


def test_the_next_line_after_a_window_brings_its_summary_first_and_opens_a_new_window() -> None:
    clock = Clock()
    limiter = LineLimiter(limit=1, period=2.0, clock=clock)
    assert limiter.offer("a") == ["a"]
    assert limiter.offer("b") == []
    clock.now += 2.5
    assert limiter.offer("c") == ["1 more error suppressed in the last 2.5s (at most 1 logged per 2s)", "c"]
    assert limiter.window_end == clock.now + 2.0
    assert limiter.offer("d") == []


def test_lines_within_the_limit_pass_in_every_window_and_no_summary_is_written() -> None:
    clock = Clock()
    limiter = LineLimiter(limit=2, period=1.0, clock=clock)
    for second in range(3):
        assert limiter.offer(f"{second}a") + limiter.offer(f"{second}b") == [f"{second}a", f"{second}b"]
        clock.now += 1.0
        assert limiter.flush() == []


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b'{"detail": "service unavailable"}', 503, "service unavailable"),
        (b'{"detail": [{"msg": "x"}]}', 500, '[{"msg": "x"}]'),
        (b"Internal Server Error\nmore", 500, "Internal Server Error"),
        (b"", 502, "bad gateway"),
        (b"", 599, "server error"),
        (b'{"detail": "one\\n  two"}', 500, "one two"),
        (b'{"detail": "' + b"x" * 400 + b'"}', 500, "x" * 297 + "..."),
    ],
)
def test_the_reason_is_what_the_answer_says(body: bytes, status: int, reason: str) -> None:
    assert reason_of(body, status) == reason


def small_app() -> FastAPI:
    app = FastAPI()

    @app.get("/down")
    def down(request: Request) -> Response:
        request.state.request_id = "user-7"
        return Response('{"detail": "registry unreachable"}', 503, media_type="application/json")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput:\n  a second line")

    @app.get("/ready")
    def ready() -> Response:
        return Response("{}", 503)

    @app.get("/missing")
    def missing() -> Response:
        return Response("{}", 404)

    app.add_middleware(ErrorLogMiddleware, logger=logging.getLogger("test.errorlog"))
    return app


def test_each_5xx_answer_is_one_line_and_an_unhandled_exception_a_500_with_where_it_was_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "test.errorlog")

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=small_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.get(path) for path in ("/down", "/boom", "/ready", "/missing")]

    down, boom, ready, missing = asyncio.run(calls())
    assert down.status_code == 503 and missing.status_code == 404
    assert boom.status_code == 500 and boom.json() == {"detail": "internal server error"}
    assert ready.status_code == 503  # the readiness probe's answer: not an error
    lines = [r.getMessage() for r in caplog.records if r.name == "test.errorlog"]
    assert lines[0] == "HTTP 503 for GET /down (request_id user-7): registry unreachable"
    assert lines[1].startswith(
        "HTTP 500 for GET /boom: unhandled RuntimeError: kaput: a second line (at test_service_errorlog.py:"
    )
    assert lines[1].endswith(" in boom)") and len(lines) == 2
    assert all(r.levelno == logging.ERROR and "\n" not in r.getMessage() for r in caplog.records)


class _Registry:
    """Answers with no model, or raises what it is told to (pure stand-in for the REST registry)."""

    def __init__(self) -> None:
        self.failure: Exception | None = None

    def model(self, name: str) -> None:
        if self.failure is not None:
            raise self.failure


def test_a_registry_that_stops_answering_is_logged_once_and_again_when_it_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lab_runtime.errors import RuntimeNotReady
    from lab_runtime.service.models import ModelFollower

    registry = _Registry()
    follower = ModelFollower(registry, "credit-risk", 0.5, loader=lambda version: None)  # type: ignore[arg-type,return-value]
    with caplog.at_level(logging.WARNING, logger="lab_runtime"):
        follower.poll_once()
        registry.failure = RuntimeNotReady("MLflow is unreachable")
        for _ in range(5):
            follower.poll_once()
        registry.failure = None
        follower.poll_once()
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "the registry stopped answering (MLflow is unreachable); serving what is loaded",
        "the registry answers again",
    ]


def test_what_the_service_serves_is_logged_when_it_changes(caplog: pytest.LogCaptureFixture) -> None:
    from lab_runtime.registry.rest import CANARY_WEIGHT_TAG, ModelState
    from lab_runtime.service.models import LoadedModel, ModelFollower

    class Registry:
        state = ModelState("credit-risk", {"champion": "1"}, {})

        def model(self, name: str) -> ModelState:
            return self.state

    registry = Registry()
    loaded = {v: LoadedModel(v, None, [], BaseModel) for v in ("1", "2")}
    follower = ModelFollower(registry, "credit-risk", 0.5, loader=loaded.__getitem__)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="lab_runtime"):
        follower.poll_once()
        follower.poll_once()  # nothing changed: nothing said
        registry.state = ModelState("credit-risk", {"champion": "1", "challenger": "2"}, {CANARY_WEIGHT_TAG: "0.1"})
        follower.poll_once()
    assert [r.getMessage() for r in caplog.records] == [
        "now serving champion version 1 (was no model)",
        "now serving champion version 1, challenger version 2 at 10% (was champion version 1)",
    ]
