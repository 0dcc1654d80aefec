"""`loopback.get` against real servers on free loopback ports: answers, refusals and silence."""

from __future__ import annotations

import http.server
import json
import socket
from collections.abc import Iterator

import pytest

from lab_runtime import loopback
from tests.conftest import http_server


class JSONHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 503 if self.path.startswith("/down") else 200
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with http_server(JSONHandler) as url:
        yield url


def test_an_answer_carries_its_status_and_json_body_query_included(server: str) -> None:
    answer = loopback.get(f"{server}/status?since=5", timeout=2)
    assert answer.status_code == 200
    assert answer.json() == {"path": "/status?since=5"}
    answer.raise_for_status()


def test_an_error_status_is_an_answer_until_raise_for_status(server: str) -> None:
    answer = loopback.get(f"{server}/down", timeout=2)
    assert answer.status_code == 503
    with pytest.raises(loopback.LoopbackError, match="answered 503"):
        answer.raise_for_status()


def test_a_closed_port_is_a_loopback_error_naming_the_url() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/health"
    with pytest.raises(loopback.LoopbackError, match="/health"):
        loopback.get(url, timeout=2)


def test_a_listener_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepted by the kernel, never read
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/health"
        with pytest.raises(loopback.LoopbackTimeout, match=r"no answer within 0\.2s"):
            loopback.get(url, timeout=0.2)


def test_only_local_http_urls_are_fetched() -> None:
    with pytest.raises(loopback.LoopbackError, match="not a local http URL"):
        loopback.get("https://example.org/", timeout=1)
