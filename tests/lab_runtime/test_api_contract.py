"""The model service's and the monitor's OpenAPI hold for what they answer: schemathesis with every check, a fixed
seed and a bounded number of examples, against the real apps on uvicorn (the service with a champion loaded); and
the service's body limits and labels, as documented there.

schemathesis runs as its command line: its pytest loader for a schema only known once a fixture ran
(`schemathesis.pytest.from_fixture`) sets `Item._nodeid`, which pytest 9.2 no longer has. The command line also runs
every phase (examples, coverage, fuzzing, stateful)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab_runtime.service.limits import MAX_BODY_BYTES, TOO_DEEP, TOO_LARGE
from lab_runtime.settings import Settings
from tests.lab_runtime.services import serving_champion

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SEED = 20240901
BOUND = [
    "--checks=all",
    f"--seed={SEED}",
    "--generation-database=none",  # the seed alone decides the cases
    "--max-examples=300",
    "--workers=1",
    "--request-timeout=30",
    "--no-color",
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with serving_champion(tmp_path_factory.mktemp("contract") / "state", "monitor") as current:
        yield current


def schemathesis_run(base_url: str, tmp_path: Path, max_response_time: float = 10.0) -> None:
    """`schemathesis run` against `base_url`'s /openapi.json, every answer within `max_response_time` seconds;
    fails the test with its report."""
    command = [str(SCHEMATHESIS), "run", f"{base_url}/openapi.json", *BOUND, f"--report-dir={tmp_path}",
               f"--max-response-time={max_response_time:g}"]  # fmt: skip
    # A fresh folder: schemathesis replays the failures it cached under its working folder in earlier runs.
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"


def test_the_model_service_answers_as_its_openapi_says(sandbox: Settings, tmp_path: Path) -> None:
    schemathesis_run(sandbox.service_url, tmp_path)


def test_the_monitor_answers_as_its_openapi_says(sandbox: Settings, tmp_path: Path) -> None:
    # POST /report renders with Evidently in a process of its own: about 5 s alone, 21 s seen beside three workers;
    # 30 s is also the request timeout
    schemathesis_run(sandbox.monitor_url, tmp_path, max_response_time=30)


def refusals(settings: Settings, status: int) -> float:
    """/predict answers with `status` the service counted (refused before routing: variant "none")."""
    for family in text_string_to_metric_families(httpx.get(f"{settings.service_url}/metrics").text):
        for sample in family.samples:
            if sample.name == "lab_requests_total" and sample.labels == {
                "status": str(status),
                "variant": "none",
                "version": "none",
            }:
                return sample.value
    return 0.0


def raw_post(settings: Settings, path: str, headers: dict[str, str], *chunks: bytes) -> tuple[int, str]:
    """POST `chunks` as they are (no more), then read the answer: what a client still sending its body sees."""
    url = urlsplit(settings.service_url)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            sock.sendall(chunk)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.read().decode()


def test_a_body_announced_over_the_size_limit_is_refused_before_it_is_read_and_counted(sandbox: Settings) -> None:
    before = refusals(sandbox, 413)
    status, body = raw_post(sandbox, "/predict", {"Content-Length": str(52_000_000)}, b'{"features": ' + b" " * 65_536)
    assert (status, json.loads(body)) == (413, {"detail": TOO_LARGE})
    assert refusals(sandbox, 413) == before + 1


def test_a_streamed_body_is_refused_once_it_passes_the_size_limit(sandbox: Settings) -> None:
    """Chunked, so no length is announced: the service counts what arrives (the body is never finished here)."""
    piece = b" " * 65_536
    chunks = [b'{"features": {"region": "'] + [piece] * (MAX_BODY_BYTES // len(piece) + 1)
    framed = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks]
    status, body = raw_post(sandbox, "/predict", {"Transfer-Encoding": "chunked"}, *framed)
    assert (status, json.loads(body)) == (413, {"detail": TOO_LARGE})
    status, body = raw_post(sandbox, "/feedback", {"Transfer-Encoding": "chunked"}, *framed)
    assert (status, json.loads(body)) == (413, {"detail": TOO_LARGE})


@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_a_deeply_nested_body_gets_400_naming_the_limit_never_a_500(sandbox: Settings, path: str) -> None:
    before = refusals(sandbox, 400)
    deep = '{"features": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = httpx.post(f"{sandbox.service_url}{path}", content=deep, headers={"content-type": "application/json"})
    assert (answer.status_code, answer.json()) == (400, {"detail": TOO_DEEP})
    assert refusals(sandbox, 400) == before + (path == "/predict")


@pytest.mark.parametrize("label", [False, True, "1", 1.0, 0.0, 2, None])
def test_feedback_refuses_any_label_but_the_integers_0_and_1(sandbox: Settings, label: object) -> None:
    answer = httpx.post(f"{sandbox.service_url}/feedback", json={"request_id": "r", "label": label})
    assert answer.status_code == 422, answer.text
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", "label"]]
    for good in (0, 1):
        answer = httpx.post(f"{sandbox.service_url}/feedback", json={"request_id": "r", "label": good})
        assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})
