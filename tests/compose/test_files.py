"""The compose stack's files, checked with the real tools: compose (`config`), promtool (the Prometheus configuration,
and every dashboard query as PromQL), and the dashboards against the metrics the services really export.

CI installs compose and promtool and sets LAB_REQUIRE_TOOLS=1: there a missing tool fails instead of skipping."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from lab_runtime.backends.compose import COMPOSE_DIR, compose_command
from lab_runtime.monitor.metrics import MonitorMetrics
from lab_runtime.service.metrics import ServiceMetrics

DASHBOARDS = sorted((COMPOSE_DIR / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("LAB_REQUIRE_TOOLS"):
            pytest.fail(f"LAB_REQUIRE_TOOLS is set but {name} is not installed")
        pytest.skip(f"{name} is not installed (CI installs it)")
    return found


def exported(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry can export, labelled or not yet observed included."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {f.name + s for f in registry.collect() for s in suffixes.get(f.type, ("",))}


def queries() -> list[tuple[str, str]]:
    return [
        (f"{path.name}: {panel['title']}", target["expr"])
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    ]


def test_promtool_accepts_the_prometheus_configuration() -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(COMPOSE_DIR / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule: a typo in PromQL fails here, not in a learner's browser."""
    rules = {
        "groups": [
            {"name": "dashboards", "rules": [{"record": f"q{i}", "expr": e} for i, (_, e) in enumerate(queries())]}
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_grafana_json_on_the_provisioned_datasource_and_real_metrics() -> None:
    assert [p.name for p in DASHBOARDS] == ["sandbox.json"]
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    metrics = exported(ServiceMetrics(lambda: 0).registry) | exported(MonitorMetrics().registry)
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        titles = " ".join(p["title"].lower() for p in dashboard["panels"])
        for topic in ("request rate", "error", "latency", "drift"):
            assert topic in titles, f"{path.name} has no {topic} panel"
        for panel in dashboard["panels"]:
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    for where, expr in queries():
        names = {word for word in _words(expr) if word.startswith("lab_")}
        assert names and names <= metrics, f"{where}: {sorted(names - metrics)} are not exported by any service"


def _words(expr: str) -> list[str]:
    import re

    return re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)


def test_compose_files_are_valid_for_the_installed_compose(tmp_path: Path) -> None:
    """`config` validates compose.yaml (and the scale override) with whichever compose is installed; a required
    secret left unset is refused by name."""
    if not (shutil.which("docker-compose") or shutil.which("docker")):
        tool("docker-compose")
    state = tmp_path / "state"
    (state / "run").mkdir(parents=True)
    (state / "run" / "compose.env").write_text("LAB_LEARNER=ada\n")
    env = {**os.environ, "LAB_STATE_DIR": str(state), "LAB_ADMIN_TOKEN": "t", "GRAFANA_ADMIN_PASSWORD": "g"}
    env["POSTGRES_PASSWORD"] = "p"
    files = ["-f", str(COMPOSE_DIR / "compose.yaml"), "-f", str(COMPOSE_DIR / "compose.scale.yaml")]
    argv = [*compose_command(), *files, "--profile", "observability", "--profile", "load", "--profile", "scale"]
    result = subprocess.run([*argv, "config", "--services"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    core = {"mlflow", "model-service", "registry-watcher", "pipeline", "monitor"}
    assert set(result.stdout.split()) == core | {"prometheus", "grafana", "locust", "postgres"}
    missing = subprocess.run([*argv, "config"], capture_output=True, text=True, env={**env, "LAB_ADMIN_TOKEN": ""})
    assert missing.returncode != 0 and "set LAB_ADMIN_TOKEN" in missing.stderr
