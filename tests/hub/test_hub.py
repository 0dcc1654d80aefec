"""The class hub end to end on a real Docker engine: `lab hub up --learners 2` builds the images from the offline
base and gives two learners each a JupyterLab with a healthy sandbox (checked through the hub's REST API, and in
Chromium through the hub's proxy), the console behind the hub shows both, a learner's work outlives a restart of
their server and of the hub, a server that cannot start is shown with the reason, `lab hub down --volumes` leaves
nothing; then the same on a single-node Docker Swarm (SwarmSpawner).
Runs when a Docker engine answers (CI starts one). The hub's names are fixed (one class hub per machine): serial."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab_runtime.hub.api import HubApi
from lab_runtime.hub.plan import LABEL
from lab_runtime.hub.secrets import HubSecrets
from tests.cli import lab_process, one_line_error
from tests.conftest import free_port
from tests.sandbox import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.serial]
UP = 1200  # seconds `lab hub up` may take: a cold build of the images is most of it


@pytest.fixture
def hub_env(engine: Any, lab_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A private state dir (the hub's folder is in it) and a free port for the hub; whatever the test did, nothing
    of the hub outlives it."""
    env = {**lab_env, "LAB_HUB_TEST_PORT": str(free_port())}
    yield env
    lab_process("hub", "down", "--volumes", env=env, timeout=180)
    assert _left(engine) == [], "the hub left something behind"


def _left(engine: Any) -> list[str]:
    found = [c.name for c in engine.containers.list(all=True, filters={"label": LABEL})]
    found += [n.name for n in engine.networks.list(filters={"label": LABEL})]
    found += [v.name for v in engine.volumes.list(filters={"label": LABEL})]
    if engine.info().get("Swarm", {}).get("LocalNodeState") == "active":
        found += [s.name for s in engine.services.list(filters={"label": LABEL})]
    return found


def _up(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    ran = lab_process("hub", "up", "--port", env["LAB_HUB_TEST_PORT"], *args, env=env, timeout=UP)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return ran


def _secrets(env: dict[str, str]) -> HubSecrets:
    return HubSecrets.read(Path(env["LAB_STATE_DIR"]) / "hub")


def _status(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    ran = lab_process("hub", "status", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    return {s["learner"]: s for s in json.loads(ran.stdout)}


def _cohort(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The console's cohort, through the hub's proxy, as an instructor."""
    url = f"http://127.0.0.1:{env['LAB_HUB_TEST_PORT']}/services/console/api/cohort"
    token = _secrets(env).console_instructor
    body = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False).json()
    return {r["learner"]: r for r in body["learners"]}


@contextlib.contextmanager
def _console_signed_in(browser: Any, port: str, name: str, password: str) -> Iterator[Any]:
    """A page of the console behind the hub, signed in with the hub's own sign-in as `name`."""
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/services/console/login")
        page.click("#hub-login")
        page.fill("#username_input", name)
        page.fill("#password_input", password)
        page.click("#login_submit")
        page.wait_for_url("**/services/console/", timeout=30_000)
        yield page
    finally:
        page.close()


def test_no_engine_is_one_line_naming_the_engine_and_the_fix(lab_env: dict[str, str]) -> None:
    ran = lab_process("hub", "up", "--learners", "2", env={**lab_env, "DOCKER_HOST": "unix:///nonexistent.sock"})
    one_line_error(ran, "no Docker engine answers at unix:///nonexistent.sock")
    assert "`lab hub up` again" in ran.stderr
    one_line_error(lab_process("hub", "up", env=lab_env), "give the class as --learners N or as --users FILE")
    one_line_error(lab_process("hub", "up", "--learners", "2", "--memory", "256M", env=lab_env), "at least 768M")
    bad_option = lab_process("hub", "up", "--learners", "2", "--cull-idle", "-5", env=lab_env)
    one_line_error(bad_option, "--cull-idle: Input should be greater than or equal to 0")
    one_line_error(lab_process("hub", "status", env=lab_env), "no class hub here")


@pytest.mark.timeout(UP + 600)  # the images' cold build comes first
def test_two_learners_each_get_a_jupyterlab_with_a_healthy_sandbox(
    engine: Any, hub_env: dict[str, str], browser: Any, request: pytest.FixtureRequest
) -> None:
    env, port = hub_env, hub_env["LAB_HUB_TEST_PORT"]
    ran = _up(env, "--learners", "2")
    assert "learner-01 │ running │ healthy" in ran.stdout and "learner-02 │ running │ healthy" in ran.stdout

    # the hub's REST API: both servers ready; each sandbox healthy as their own server reports it
    secrets = _secrets(env)
    api = HubApi(f"http://127.0.0.1:{port}", secrets.api_token)
    request.addfinalizer(api.close)
    for name in ("learner-01", "learner-02"):
        user = api.user(name)
        assert user is not None and user["servers"][""]["ready"], user
        sandbox = api.sandbox(name)
        assert sandbox is not None and sandbox["healthy"], sandbox
        assert {s["name"] for s in sandbox["services"]} >= {"mlflow", "model-service", "monitor", "console-agent"}
    assert all(s["ready"] for s in _status(env).values())

    # the console behind the hub: both sandboxes' agents joined it on their own
    wait_for(lambda: all(r["health"]["status"] == "healthy" for r in _cohort(env).values()), timeout=60)
    assert set(_cohort(env)) == {"learner-01", "learner-02"}

    # Chromium through the hub's proxy: a learner signs in and gets JupyterLab with the sandbox in its launcher
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/hub/login")
        page.fill("#username_input", "learner-01")
        page.fill("#password_input", secrets.passwords["learner-01"])
        page.click("#login_submit")
        page.wait_for_url("**/user/learner-01/lab**", timeout=60_000)
        page.get_by_text("Model service API").first.wait_for(timeout=60_000)
        assert page.get_by_text("MLflow").first.is_visible()
        page.goto(f"http://127.0.0.1:{port}/user/learner-01/model-service/docs")
        page.get_by_text("/predict").first.wait_for(timeout=30_000)  # Swagger UI read the OpenAPI under the prefix
        other = page.goto(f"http://127.0.0.1:{port}/user/learner-02/lab")  # another learner's server is not theirs
        assert other is not None and other.status == 403, (other and other.status, page.url)
    finally:
        page.close()

    # the instructor signs in to the console with the hub's own sign-in (OAuth) and sees both learners live; a
    # learner signs in as themselves and sees only their own row
    with _console_signed_in(browser, port, "instructor", secrets.passwords["instructor"]) as page:
        for name in ("learner-01", "learner-02"):
            page.locator(f"[data-learner='{name}']").first.wait_for(timeout=30_000)
    with _console_signed_in(browser, port, "learner-02", secrets.passwords["learner-02"]) as page:
        page.get_by_text("learner-02's sandbox").wait_for(timeout=30_000)
        assert page.locator("[data-learner='learner-01']").count() == 0

    # a learner's work outlives a restart of their server, and of the hub
    engine.containers.get("lab-hub-learner-01").exec_run(["sh", "-c", "echo mine > notes.txt"])
    api.stop("learner-01")
    api.start("learner-01")
    wait_for(lambda: _status(env)["learner-01"]["ready"], timeout=180)
    _up(env, "--learners", "2", "--no-start")  # the hub restarted; servers keep running
    assert all(s["ready"] for s in _status(env).values())
    kept = engine.containers.get("lab-hub-learner-01").exec_run(["sh", "-c", "cat notes.txt && ls .lab/journal.db"])
    assert kept.exit_code == 0 and kept.output.decode().startswith("mine"), kept.output

    # a server that cannot start is shown with the reason, by `lab hub status` and by the console
    _up(env, "--learners", "2", "--no-start", "--image", "lab-learner:missing")
    api.stop("learner-02")
    started = lab_process("hub", "start", env=env, timeout=300)
    one_line_error(started, "not ready: learner-02")
    assert "learner-02 │ failed" in started.stdout, started.stdout
    assert "lab-learner:missing" in _status(env)["learner-02"]["reason"]
    failed = _cohort(env)["learner-02"]["health"]
    assert failed["status"] == "failed" and "lab-learner:missing" in failed["detail"], failed

    down = lab_process("hub", "down", "--volumes", env=env, timeout=180)
    assert down.returncode == 0 and "lab-hub-learner-01-work" in down.stdout, down
    assert _left(engine) == []


@pytest.mark.timeout(UP + 300)
def test_the_same_class_on_a_single_node_swarm(engine: Any, hub_env: dict[str, str]) -> None:
    joined = engine.info().get("Swarm", {}).get("LocalNodeState") == "active"
    if not joined:
        engine.swarm.init(advertise_addr="127.0.0.1")
    try:
        ran = _up(hub_env, "--learners", "1", "--swarm")
        assert "learner-01 │ running │ healthy" in ran.stdout, ran.stdout
        services = engine.services.list(filters={"label": LABEL})
        assert [s.name for s in services] == ["lab-hub-learner-01"]
        assert services[0].attrs["Spec"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 1536 << 20
        down = lab_process("hub", "down", "--volumes", env=hub_env, timeout=180)
        assert down.returncode == 0, down
        assert _left(engine) == []
    finally:
        if not joined:
            lab_process("hub", "down", "--volumes", env=hub_env, timeout=180)
            engine.swarm.leave(force=True)
