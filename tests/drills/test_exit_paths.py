"""Every exit path of a drill leaves the sandbox healthy: time limit, abort, Ctrl-C, SIGTERM, an exception in a
probe or a fault, a runner killed by SIGKILL (then `lab reset`), a gate that refuses; blind runs tell nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from drills.conditions import parse_condition
from drills.engine import DrillRunner, RunOptions, monitor_settle, wait_steady
from drills.ledger import Ledger
from drills.probes import observer_for, recent_seconds
from drills.sequence import stops
from drills.spec import DEFAULT_STEADY_STATE, load_drill
from lab_runtime import events as kinds
from lab_runtime.pipeline.store import ReleaseStore
from lab_runtime.service.admin_client import ServiceAdmin
from tests.drills.learner import drill_argv, events, in_order, lab, last_event_id, run_id_after, start_drill
from tests.sandbox import Sandbox, wait_for

pytestmark = pytest.mark.integration

# Latency on every request plus a drifted release: one fault held by the service, one by the pipeline.
TWO_FAULTS: dict[str, Any] = {
    "id": "two-faults",
    "title": "Two faults",
    "kind": "incident",
    "difficulty": "easy",
    "brief": "Test drill.",
    "diagnosis": "latency",
    "faults": [
        {"type": "latency", "args": {"latency_ms": 300}},
        {"type": "covariate_drift", "args": {"features": ["age"], "shift_sd": 2}},
    ],
    "remediation": {"conditions": ["latency_p99_ms < 250"], "hold": "20s", "reference": ["lab reset"]},
    "time_limit": "2m",  # 30 s at the tests' time scale
}


def drill_file(tmp_path: Path, **change: Any) -> Path:
    body = {**TWO_FAULTS, **change}
    path = tmp_path / f"{body['id']}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def predict_latency(sandbox: Sandbox) -> float:
    from lab_runtime.modeling.data import FEATURES, DataGenerator

    row = DataGenerator(3).production(0, 1)[list(FEATURES)].iloc[0].to_dict()
    features = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    answer = httpx.post(f"{sandbox.settings.service_url}/predict", json={"features": features}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.elapsed.total_seconds()


def assert_clean(sandbox: Sandbox, run_id: str, outcome: str) -> None:
    """The run ended with `outcome`, every fault is reverted, and the service is fast and on release v1."""
    run = events(sandbox.settings, run_id)
    ended = [e for e in run if e.kind == kinds.DRILL_ENDED]
    assert len(ended) == 1 and ended[0].payload["outcome"] == outcome, [(e.kind, e.payload) for e in run]
    injected = {e.payload["fault"] for e in run if e.kind == kinds.FAULT_INJECTED}
    reverted = {e.payload["fault"] for e in run if e.kind == kinds.FAULT_REVERTED}
    assert injected <= reverted  # a fault that failed half-way is reverted (and journaled) too
    assert ServiceAdmin(sandbox.settings).list() == {}
    with ReleaseStore(sandbox.settings.pipeline_db_path) as store:
        assert store.active().version == "v1"
    assert predict_latency(sandbox) < 0.25
    with Ledger(sandbox.settings.drills_db_path) as ledger:
        assert ledger.open_runs() == [] and ledger.unreverted(run_id) == []


def injected(sandbox: Sandbox, run_id: str, n: int = 2) -> bool:
    return len(events(sandbox.settings, run_id, [kinds.FAULT_INJECTED])) >= n


def test_the_time_limit_ends_the_drill_and_reverts(sandbox: Sandbox, tmp_path: Path) -> None:
    since = last_event_id(sandbox.settings)
    proc = start_drill(str(drill_file(tmp_path)))
    run_id = run_id_after(sandbox.settings, since)
    wait_for(lambda: injected(sandbox, run_id), 60, "faults injected")
    assert predict_latency(sandbox) >= 0.3
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "time_limit" in output, output
    assert_clean(sandbox, run_id, "time_limit")
    assert in_order(
        events(sandbox.settings, run_id),
        [
            kinds.DRILL_STARTED,
            kinds.FAULT_INJECTED,
            kinds.FAULT_INJECTED,
            kinds.PROBE_RESULT,
            kinds.FAULT_REVERTED,
            kinds.FAULT_REVERTED,
            kinds.DRILL_STEADY_STATE,
            kinds.DRILL_ENDED,
        ],
    )


@pytest.mark.parametrize("how", ["abort", "SIGINT", "SIGTERM"])
def test_abort_ctrl_c_and_sigterm_revert_everything(sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    since = last_event_id(sandbox.settings)
    proc = start_drill(str(drill_file(tmp_path, time_limit="20m")))
    run_id = run_id_after(sandbox.settings, since)
    wait_for(lambda: injected(sandbox, run_id), 60, "faults injected")
    if how == "abort":
        assert "aborted; its faults are reverted" in lab("drill", "abort")
    else:
        proc.send_signal(getattr(signal, how))
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    said = "aborted (by the instructor)" if how == "abort" else f"interrupted (by {how})"
    assert f"drill run {run_id}: {said}; steady state holds again" in output, output
    assert_clean(sandbox, run_id, "aborted" if how == "abort" else "interrupted")


def test_sigkill_of_the_runner_is_cleaned_up_by_lab_reset(sandbox: Sandbox, tmp_path: Path) -> None:
    since = last_event_id(sandbox.settings)
    proc = start_drill(str(drill_file(tmp_path, time_limit="20m")))
    run_id = run_id_after(sandbox.settings, since)
    wait_for(lambda: injected(sandbox, run_id), 60, "faults injected")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert predict_latency(sandbox) >= 0.3, "the faults outlive the runner until reset or expiry"
    said = lab("drill", "status").splitlines()
    with Ledger(sandbox.settings.drills_db_path) as ledger:
        (latency,) = [f for f in ledger.faults(run_id) if f.type == "latency"]
    expiry = datetime.fromtimestamp(latency.expires_at, UTC).strftime("%H:%M:%S")
    assert said[:2] == [
        f"drill run {run_id} two-faults: runner died",
        f"its runner (pid {proc.pid}) died with 2 fault(s) not reverted: `lab reset` reverts them now, "
        f"else 1 expire(s) by {expiry} UTC and 1 stay(s) until `lab reset`",
    ], said
    assert said[2].startswith(f"for {sandbox.settings.learner!r}, started "), said
    refused = subprocess.run(drill_argv(str(drill_file(tmp_path))), capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "run `lab reset` first" in refused.stdout + refused.stderr
    since = last_event_id(sandbox.settings)
    steps = lab("reset").splitlines()
    cfg = sandbox.settings  # its clocks on the tests' time scale
    recent, settle, window = recent_seconds(cfg), monitor_settle(cfg), cfg.scaled(cfg.monitor_window)
    assert steps[:4] == [
        f"drill run {run_id} (two-faults): its runner died; reverting",
        "fault 1 (covariate_drift): reverted",
        "fault 0 (latency): reverted",
        f"checking the steady state on the service's last {recent:g}s of requests (up to {settle:g}s): "
        "up.model-service == 1, ready == 1, server_error_rate < 0.02, latency_p99_ms < 250",
    ], steps
    assert re.fullmatch(
        rf"the service is steady again \(\d+\.\ds\); waiting for the monitor's {window:g}s window to agree "
        rf"\(up to {settle:g}s; a drill's gate reads it\)",
        steps[4],
    ), steps
    assert re.fullmatch(r"steady state holds \(\d+\.\ds\)", steps[5]), steps
    assert steps[6:] == ["reset: 1 drill run(s) ended, 2 fault(s) reverted, started nothing; steady state holds"]
    steady = tuple(parse_condition(c) for c in DEFAULT_STEADY_STATE)  # a drill's gate now passes at its first probe
    assert wait_steady(sandbox.settings, sandbox.backend, steady, 0, observer_for(steady)).ok
    run = events(sandbox.settings, run_id)
    assert {e.payload["by"] for e in run if e.kind == kinds.FAULT_REVERTED} == {"reset"}
    checked = [e for e in run if e.id > since and e.kind in (kinds.DRILL_STEADY_STATE, kinds.DRILL_ENDED)]
    assert [(e.kind, e.source, e.payload.get("ok"), e.payload.get("steady_after")) for e in checked] == [
        (kinds.DRILL_STEADY_STATE, "reset", True, None),
        (kinds.DRILL_ENDED, "reset", None, True),
    ]
    assert_clean(sandbox, run_id, "reset")


def test_an_exception_in_a_probe_or_a_fault_still_reverts(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = sandbox.settings
    calls = {"n": 0}

    def failing_probe(cfg: Any, backend: Any) -> dict[str, float]:
        from drills.probes import observe

        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("probe exploded")
        return observe(cfg, backend)

    drill = load_drill(drill_file(tmp_path))
    assert wait_steady(settings, sandbox.backend, drill.steady(), 90).ok, "the sandbox is steady before the drill"
    options = RunOptions("ada", 5, settle_timeout=30)
    result = DrillRunner(drill, settings, sandbox.backend, options, observer=failing_probe).run()
    assert result.outcome == "error" and result.detail == "RuntimeError: probe exploded"
    assert_clean(sandbox, result.run_id, "error")
    # A fault that cannot be injected (a second kill of a process the first one killed): the others are reverted.
    kill = {"type": "service_crash", "args": {"service": "monitor"}}
    kill_twice = [TWO_FAULTS["faults"][1], kill, {**kill, "at": "5s"}]  # 0.5 s later at the tests' time scale
    broken = load_drill(drill_file(tmp_path, faults=kill_twice))
    result = DrillRunner(broken, settings, sandbox.backend, RunOptions("ada", 5, settle_timeout=60)).run()
    assert result.outcome == "error" and "monitor is not running" in (result.detail or ""), result.detail
    assert_clean(sandbox, result.run_id, "error")
    assert any(s.name == "monitor" and s.healthy for s in sandbox.backend.status()), "the revert restarted it"


def test_a_signal_during_a_probe_lets_the_probe_finish_then_ends_the_run_interrupted(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings, probes, signalled_returned = sandbox.settings, [0], []

    def signalled_probe(cfg: Any, backend: Any) -> dict[str, float]:
        from drills.probes import observe

        probes[0] += 1
        if probes[0] != 4:
            return observe(cfg, backend)
        os.kill(os.getpid(), signal.SIGTERM)  # mid-probe, as `kill -TERM` may land at any moment
        observed = observe(cfg, backend)  # its thread pool runs to the end: nothing raised from the handler cuts it
        signalled_returned.append(True)
        return observed

    drill = load_drill(drill_file(tmp_path))
    assert wait_steady(settings, sandbox.backend, drill.steady(), 90).ok, "the sandbox is steady before the drill"
    options = RunOptions("ada", 5, settle_timeout=30)
    result = DrillRunner(drill, settings, sandbox.backend, options, observer=signalled_probe).run()
    assert (result.outcome, result.detail) == ("interrupted", "by SIGTERM"), result
    assert signalled_returned == [True]
    assert_clean(sandbox, result.run_id, "interrupted")


def test_a_signal_during_the_last_probe_still_ends_the_run_interrupted(sandbox: Sandbox, tmp_path: Path) -> None:
    """The run reaches its time limit at the probe the signal landed in: it ends on its own, and the signal still
    counts, so a game day or a capstone starts no further drill."""
    settings, signalled, slept = sandbox.settings, [], []

    def deadline() -> float | None:
        with Ledger(settings.drills_db_path) as ledger:
            runs = ledger.open_runs()
        return runs[0].deadline if runs else None

    def probe_then_signal_in_the_last(cfg: Any, backend: Any) -> dict[str, float]:
        from drills.probes import observe

        called, due = time.time(), deadline()
        if due is not None and not slept and due - 3 <= called < due - 0.05:
            slept.append(True)  # this probe started before the limit; the next starts after it, so it is the last
            time.sleep(due + 0.1 - called)
        elif slept and not signalled:
            signalled.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return observe(cfg, backend)

    drill = load_drill(drill_file(tmp_path))
    assert wait_steady(settings, sandbox.backend, drill.steady(), 90).ok, "the sandbox is steady before the drill"
    options = RunOptions("ada", 5, settle_timeout=30)
    result = DrillRunner(drill, settings, sandbox.backend, options, observer=probe_then_signal_in_the_last).run()
    assert slept == [True] and signalled == [True], "no probe came within 3 s before the time limit"
    assert (result.outcome, result.interrupted, stops(result)) == ("time_limit", True, True), result
    assert_clean(sandbox, result.run_id, "time_limit")


def test_the_gate_refuses_an_unhealthy_baseline_and_injects_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    path = drill_file(tmp_path, steady_state=["latency_p99_ms < 0.001"])
    since = last_event_id(sandbox.settings)
    proc = start_drill(str(path), "--gate-timeout", "2s")
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "not in its steady state" in output and "latency_p99_ms < 0.001: is" in output
    run_id = run_id_after(sandbox.settings, since)
    run = events(sandbox.settings, run_id)
    assert not [e for e in run if e.kind == kinds.FAULT_INJECTED]
    assert [e.payload["outcome"] for e in run if e.kind == kinds.DRILL_ENDED] == ["refused"]


def test_a_blind_run_reveals_nothing_to_the_commands_a_learner_runs(sandbox: Sandbox, tmp_path: Path) -> None:
    since = last_event_id(sandbox.settings)
    proc = start_drill("incident-latency-spike", "--blind")
    run_id = run_id_after(sandbox.settings, since)
    wait_for(lambda: injected(sandbox, run_id, 1), 60, "fault injected")
    shown = lab("drill", "status") + lab("drill", "status", "--json") + lab("status") + lab("pipeline", "status")
    shown += (
        httpx.get(f"{sandbox.settings.service_url}/model").text
        + httpx.get(f"{sandbox.settings.service_url}/metrics").text
    )
    shown += httpx.get(f"{sandbox.settings.service_url}/openapi.json").text
    assert "(blind)" in shown
    for secret in ("latency-spike", "latency_ms", '"faults"', "injected", "admin"):
        assert secret not in shown, secret
    lab("drill", "abort")
    output, _ = proc.communicate(timeout=120)
    assert "latency" not in output and "injected" not in output, output
    assert_clean(sandbox, run_id, "aborted")


def test_a_gameday_runs_its_drills_in_sequence_with_seeded_gaps(sandbox: Sandbox, tmp_path: Path) -> None:
    since = last_event_id(sandbox.settings)
    drills = "incident-error-burst,incident-latency-spike"
    argv = [sys.executable, "-m", "lab_runtime.cli", "drill", "gameday", "--drills", drills]
    argv += ["--between", "1s", "2s", "--seed", "4"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(2):
        since = remediate_next(sandbox, since)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "game day done: remediated, remediated" in output, output


def remediate_next(sandbox: Sandbox, since: int) -> int:
    """Wait for the next drill's fault, restart the service (the fix for both), and wait for its end."""
    run_id = run_id_after(sandbox.settings, since)
    wait_for(lambda: injected(sandbox, run_id, 1), 60, "fault injected")
    lab("restart", "model-service")
    wait_for(lambda: bool(events(sandbox.settings, run_id, [kinds.DRILL_ENDED])), 120, "drill ended")
    return events(sandbox.settings, run_id, [kinds.DRILL_ENDED])[0].id
