"""The compose runtime end to end, on a real Docker engine, on one stack: build the images, bring the stack up and
wait for health, solve lab 01, run container drills with their reference remediation, grade, bring up the load,
observability and scale profiles, tear down with volumes removed.

Runs when a Docker engine answers. CI (`.ci/run`) starts one and sets LAB_REQUIRE_TOOLS=1, so there a missing engine
fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from drills.spec import find_drill
from lab_runtime.backends.compose import ComposeBackend, project_name
from lab_runtime.errors import ServiceStartFailed
from lab_runtime.settings import load_settings
from tests.cli import lab_process, one_line_error
from tests.conftest import free_port
from tests.drills.learner import drill_argv, solve
from tests.lab_runtime.test_sandbox_integration import features
from tests.sandbox import REAL_CLOCK, wait_for

# serial: its CPU-starved container and the drill's latency bound need the machine to themselves
pytestmark = [pytest.mark.integration, pytest.mark.serial]
COMPOSE_ONLY = {"incident-service-starved", "incident-registry-slow-network"}
# Each `lab` command here in its own process: the compose backend's docker client stays open until its process
# exits (in this one, its unclosed socket would fail the test).


@pytest.fixture
def compose_env(engine: object, lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = {**lab_env, **REAL_CLOCK, "LAB_LEARNER": "ada", "LAB_DRILL_PROBE_INTERVAL": "1"}
    env |= {"LAB_PROMETHEUS_PORT": str(free_port()), "LAB_GRAFANA_PORT": str(free_port())}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    lab_process("down", "--volumes", env=env)  # whatever the test did, no container or volume outlives it


def test_no_engine_is_one_line_naming_the_engine_and_the_fix(lab_env: dict[str, str]) -> None:
    result = lab_process(
        "up", "--runtime", "compose", env={**lab_env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    )
    one_line_error(result, "no Docker engine answers at unix:///nonexistent/docker.sock")
    assert "`lab down --force`, then `lab up --runtime local`" in result.stderr
    assert not (Path(lab_env["LAB_STATE_DIR"]) / "runtime").exists()  # nothing recorded: the local runtime is free


def test_a_failed_image_build_and_a_taken_port_are_one_line_each(compose_env: dict[str, str]) -> None:
    broken = lab_process(
        "up", "--runtime", "compose", env={**compose_env, "LAB_BASE_IMAGE": "lab-no-such-base:none"}, timeout=300
    )
    one_line_error(broken, "building the sandbox's images from lab-no-such-base:none failed")
    log = Path(compose_env["LAB_STATE_DIR"]) / "logs" / "compose-build.log"
    assert f"the whole build is in {log}" in broken.stderr
    reason = broken.stderr.split("failed: ", 1)[1].split(" (no registry?")[0].split("; the whole build")[0]
    assert reason and reason in log.read_text()  # the line quoted is the build's own
    assert broken.stderr.strip().count("\n") == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(compose_env["LAB_SERVICE_PORT"])))
        taken.listen()
        result = lab_process("up", "--runtime", "compose", env=compose_env)
    one_line_error(result, f"port {compose_env['LAB_SERVICE_PORT']} for model-service is already in use")
    assert "LAB_SERVICE_PORT" in result.stderr


@pytest.mark.timeout(900)
def test_lab_01_and_a_container_drill_on_compose_then_nothing_left(
    engine: object, compose_env: dict[str, str], tmp_path: Path
) -> None:
    up = lab_process("up", "--runtime", "compose", env=compose_env, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"127.0.0.1:{compose_env['LAB_SERVICE_PORT']}" in up.stdout
    settings = load_settings()
    assert settings.runtime == "compose"  # recorded by `lab up`: no command after it names the runtime
    backend = ComposeBackend(settings)
    status = json.loads(lab_process("status", "--json", env=compose_env).stdout)
    assert [r["name"] for r in status] == ["mlflow", "model-service", "registry-watcher", "pipeline", "monitor"]
    assert all(r["healthy"] and r["pid"] for r in status), status
    logs = lab_process("logs", "mlflow", "--lines", "5", env=compose_env)  # the container's log, through the docker SDK
    assert logs.returncode == 0 and 0 < len(logs.stdout.strip().splitlines()) <= 5, logs

    # Lab 01, as a learner solves it, with every command on the host and every service in a container.
    assert lab_process("start", "lab-01", env=compose_env).returncode == 0
    solved = lab_process("solve", "lab-01", env=compose_env, timeout=300)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    report = json.loads(lab_process("check", "--json", env=compose_env).stdout)
    assert report["passed"] == report["total"] == 7, report

    # The model switch: the learner's flag file, in the state dir the containers share, reaches the service's
    # flagd provider inside its container; the fallback rules answer while it is off.
    def decided_by() -> str:
        body = {"request_id": f"switch-{time.monotonic_ns()}", "features": features()}
        return str(httpx.post(f"{settings.service_url}/predict", json=body, timeout=5).json()["decided_by"])

    assert lab_process("feature", "disable", env=compose_env).returncode == 0
    wait_for(lambda: decided_by() == "fallback", 10, "the model switched off in the container")
    assert lab_process("feature", "enable", env=compose_env).returncode == 0
    wait_for(lambda: decided_by() == "model", 10, "the model back on in the container")

    _the_path_to_production_on_compose(compose_env)

    # A container fault through the docker SDK: the CPU quota cut, then the reference fix (a re-created container).
    drill = find_drill("incident-service-starved")
    before = backend.container_id("model-service")
    outcome = solve(settings, drill, timeout=400)
    assert outcome.returncode == 0, outcome.output
    (ended,) = [e for e in outcome.events if e.kind == "drill.ended"]
    assert ended.payload["outcome"] == "remediated", outcome.output
    assert backend.container_id("model-service") != before  # `lab restart` re-created it
    assert backend.limits("model-service") == {"memory": 0, "cpu_quota": 0}

    runs = json.loads(lab_process("grade", "--json", env=compose_env).stdout)
    (run,) = [r for r in runs if r["run_id"] == outcome.run_id]
    assert (run["drill"], run["outcome"], run["wrong_declarations"]) == ("incident-service-starved", "remediated", 0)
    assert 0 < run["ttd"] < run["ttr"]

    # The container faults the drills use, one by one: pause, kill, limits, and netem where the kernel has it.
    backend.pause("pipeline")
    assert not {r.name: r for r in backend.status()}["pipeline"].healthy
    impatient = ComposeBackend(settings.model_copy(update={"start_timeout": 1.0}))
    with pytest.raises(ServiceStartFailed) as never:  # the message `lab up` gives for a service stuck unhealthy
        impatient._wait_healthy(["mlflow", "pipeline"])
    assert str(never.value) == "pipeline never got healthy within 1s; see its logs with `lab logs pipeline`"
    assert backend.ensure_running("pipeline") and not backend.ensure_running("pipeline")
    backend.kill("monitor")
    time.sleep(1)
    assert not {r.name: r for r in backend.status()}["monitor"].running  # a kill is final: no restart policy
    assert backend.ensure_running("monitor")
    _slow_network_drill_or_its_clear_error(backend)
    _prometheus_scrapes_the_service_and_the_monitor(backend)
    _load_profile_runs_locust_once(compose_env, backend)
    _observability_profile_has_its_images_or_says_how_to_bring_them(compose_env)
    _scale_profile_puts_mlflow_on_postgresql(compose_env)  # last: it moves MLflow to an empty backend store

    down = lab_process("down", "--volumes", env=compose_env)
    assert down.returncode == 0 and "stopped" in down.stdout and "postgres" in down.stdout
    project = project_name(settings.root)
    label = {"label": f"com.docker.compose.project={project}"}
    assert engine.containers.list(all=True, filters=label) == []  # type: ignore[attr-defined]
    assert engine.volumes.list(filters=label) == []  # type: ignore[attr-defined]
    assert not (settings.root / "runtime").exists()


def _the_path_to_production_on_compose(env: dict[str, str]) -> None:
    """Staging, evaluation, review and shadow with the service in its container and every command on the host."""

    def run(*args: str) -> Any:
        done = lab_process(*args, "--json", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    versions = run("model", "list")
    candidate = next(v["version"] for v in versions if "champion" not in v["aliases"])
    assert run("model", "stage", candidate)["staging"] == candidate
    evaluation = run("eval", "run", candidate)
    assert evaluation["verdict"] in ("go", "no-go") and evaluation["queue"] > 0, evaluation
    assert Path(evaluation["report"]).is_file()  # written on the host, beside the shared state
    item = run("review", "next")["item"]
    labelled = run("review", "label", str(item["id"]), "refer")
    assert labelled["truth"] in (0, 1) and labelled["right"] is None
    assert run("eval", "coverage")["promoted"] >= 1
    assert run("shadow", "start", candidate, "--share", "1")["share"] == 1.0

    def compared() -> bool:  # the container's mirror writes the shadow rows into the shared prediction log
        windows = run("shadow", "status", "--window", "5m", "--windows", "1")["windows"]
        return bool(windows[0]["compared"] >= 20)

    wait_for(compared, 60, "the shadow's answers from the service's container")
    assert run("shadow", "stop")["staging"] == candidate


def _prometheus_scrapes_the_service_and_the_monitor(backend: ComposeBackend) -> None:
    """Profile observability's Prometheus, built from Debian's package on the same base, scrapes both in the network.
    (Grafana comes from a registry, which CI has not: its dashboards are checked in tests/compose.)"""
    from lab_runtime import loopback

    built = backend.compose("build", "prometheus", profiles=["observability"], check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    backend.compose("up", "-d", "--no-deps", "prometheus", profiles=["observability"])
    url = f"http://127.0.0.1:{backend.settings.prometheus_port}/api/v1/targets"

    def scraped() -> bool:
        try:
            targets = loopback.get(url, timeout=2).json()["data"]["activeTargets"]
        except (loopback.LoopbackError, ValueError, KeyError):  # not answering yet, or not ready
            return False
        return {t["labels"]["job"] for t in targets if t["health"] == "up"} >= {"model-service", "monitor"}

    wait_for(scraped, 120, "Prometheus scraping model-service and monitor")


def _slow_network_drill_or_its_clear_error(backend: ComposeBackend) -> None:
    """Where the kernel has netem: a 600 ms delay shows on the published port, and the slow-network drill is
    detected and remediated (`lab restart mlflow` re-creates the container). Where not: one clear line, from the
    backend and from the drill, which reverts and ends in error."""
    from lab_runtime import loopback
    from lab_runtime.errors import FaultInjectionFailed

    try:
        backend.delay("mlflow", 600)
    except FaultInjectionFailed as exc:
        assert "kernel has no netem" in str(exc) and "modprobe sch_netem" in str(exc)
        run = subprocess.run(drill_argv("incident-registry-slow-network"), capture_output=True, text=True, timeout=120)
        assert (
            run.returncode == 1 and "error (FaultInjectionFailed: this Docker host's kernel has no netem" in run.stdout
        )
        assert "steady state holds again" in run.stdout, run.stdout
        return
    started = time.monotonic()
    assert loopback.get(f"{backend.settings.mlflow_url}/health", timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.6
    assert backend.undelay("mlflow") and not backend.undelay("mlflow")
    outcome = solve(backend.settings, find_drill("incident-registry-slow-network"), timeout=400)
    assert outcome.returncode == 0 and "remediated" in outcome.output, outcome.output


def _load_profile_runs_locust_once(compose_env: dict[str, str], backend: ComposeBackend) -> None:
    """Profile load: Locust in the app image sends its load test to the service inside the network, then exits."""
    up = lab_process("up", "--profile", "load", env={**compose_env, "LOCUST_RUN_TIME": "5s"}, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr

    def finished() -> bool:
        state = backend._containers()["locust"].attrs["State"]
        return bool(state["Status"] == "exited")

    wait_for(finished, 120, "locust's run")
    assert backend._containers()["locust"].attrs["State"]["ExitCode"] == 0, backend.logs("locust")
    assert "/predict" in backend.logs("locust", 200)


def _observability_profile_has_its_images_or_says_how_to_bring_them(compose_env: dict[str, str]) -> None:
    """Grafana comes from a registry: offline, `lab up --profile observability` says how to bring the image."""
    result = lab_process("up", "--profile", "observability", env=compose_env, timeout=600)
    if result.returncode == 0:  # a registry (or a loaded image): Grafana is up with its provisioned dashboard
        assert f"127.0.0.1:{compose_env['LAB_GRAFANA_PORT']}/d/lab-sandbox" in result.stdout
        return
    one_line_error(result, "grafana: image grafana/grafana-oss")
    assert "docker save" in result.stderr and "docker load -i grafana.tar" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def _scale_profile_puts_mlflow_on_postgresql(compose_env: dict[str, str]) -> None:
    """Profile scale on the running stack: PostgreSQL (Debian's, built on the base) now holds MLflow's backend store
    (its container re-created), and the stack is healthy."""
    backend = ComposeBackend(load_settings())
    locust_ran = backend._containers()["locust"].attrs["State"]["StartedAt"]
    up = lab_process("up", "--runtime", "compose", "--profile", "scale", env=compose_env, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    assert backend._containers()["locust"].attrs["State"]["StartedAt"] == locust_ran  # its load test ran once
    rows = {r.name: r for r in backend.status()}
    assert rows["postgres"].healthy and all(rows[name].healthy for name in backend.specs), rows
    mlflow = backend._containers()["mlflow"]
    assert "postgresql+psycopg2://lab:" in " ".join(mlflow.attrs["Config"]["Cmd"])
    query = ["psql", "-U", "lab", "-d", "mlflow", "-tAc", "select name from experiments"]
    code, output = backend._containers()["postgres"].exec_run(query)
    assert code == 0 and "Default" in output.decode(), output  # MLflow made its tables and default experiment there
