"""Shared fixtures: free ports and an isolated state directory for every sandbox a test starts."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab_runtime.settings import HOST

# pytest-xdist's workers set COLUMNS=80 and LINES=24; the CLI, in-process or in a `lab` process, must see its output
# as a pipe gives it, however the tests are run.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


# Under `make test` (`--dist loadfile`) a test file runs whole on one xdist worker, so a module's sandbox starts once
# per worker that runs it. The tests of these files are long and independent (each drill restores the sandbox after
# it): each is a unit of its own, so every worker can take some, on its kept drill sandbox (tests/drills/conftest.py).
SPREAD_FILES = ("tests/drills/test_catalog_drills.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest units first, so no long one starts last: the end-to-end tests, then every test on a real
    sandbox (`integration`), then the rest, each in collection order. Workers collect alike, so they agree."""

    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith("tests/e2e/"):
            return 0
        return 1 if item.get_closest_marker("integration") else 2

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)  # known only when pytest-xdist is there
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` in the order collected (see `pytest_collection_modifyitems`), with each test of
    SPREAD_FILES a unit of its own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False  # xdist would put the files with most tests first

    class LoadFileOrSpread(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.startswith(SPREAD_FILES) else str(super()._split_scope(nodeid))

    return LoadFileOrSpread(config, log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server with `handler` on a free loopback port, for as long as the block runs; its base URL."""
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def lab_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """LAB_* variables for a private sandbox (own state dir, free ports), also set in os.environ."""
    env = {
        "LAB_STATE_DIR": str(tmp_path / "state"),
        "LAB_MLFLOW_PORT": str(free_port()),
        "LAB_SERVICE_PORT": str(free_port()),
        "LAB_MONITOR_PORT": str(free_port()),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    yield env


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, Debian's (Playwright's own browsers are not downloaded here): `LAB_CHROMIUM` or
    `chromium` on PATH. CI installs it and sets LAB_REQUIRE_TOOLS=1: there a missing browser fails."""
    from playwright.sync_api import sync_playwright

    from tests.compose.test_files import tool

    executable = os.environ.get("LAB_CHROMIUM") or tool("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            launched.close()


def _engine() -> object | None:
    import docker

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return None  # no engine: the SDK's failed connect to a missing socket would leave that socket open
    # A fixed API version (engine 20.10's): "auto" would ask the engine in the constructor, before a close can run.
    client = docker.from_env(timeout=10, version="1.41")
    try:
        client.ping()
    except Exception:  # DockerException, or requests' ConnectionError: no engine answers
        client.close()
        return None
    return client


@pytest.fixture(scope="module")
def engine() -> object:
    """A client of the Docker engine with an image base built (offline where no registry answers); skips without an
    engine, fails under LAB_REQUIRE_TOOLS (CI)."""
    client = _engine()
    if client is None:
        if os.environ.get("LAB_REQUIRE_TOOLS"):
            pytest.fail("LAB_REQUIRE_TOOLS is set but no Docker engine answers (is dockerd running?)")
        pytest.skip("no Docker engine answers; the compose runtime and the class hub need one (CI starts dockerd)")
    from lab_runtime.backends.compose import COMPOSE_DIR
    from lab_runtime.backends.engine import OFFLINE_BASE

    tags = {tag for image in client.images.list() for tag in image.tags}  # type: ignore[attr-defined]
    if "python:3.11-slim" not in tags and OFFLINE_BASE not in tags:  # no registry here: build the base offline
        built = subprocess.run(["bash", str(COMPOSE_DIR / "base-image" / "build.sh")], capture_output=True, text=True)
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return client
