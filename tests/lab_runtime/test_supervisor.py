import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from lab_runtime.backends.services import ServiceSpec
from lab_runtime.backends.supervisor import Supervisor, start_order
from lab_runtime.errors import ConfigError, PortInUse, ServiceStartFailed
from tests.conftest import free_port


def spec(name: str, *deps: str) -> ServiceSpec:
    return ServiceSpec(name, ["true"], depends_on=deps)


def test_independent_services_start_together_and_dependents_after() -> None:
    levels = start_order([spec("db"), spec("api", "db"), spec("watcher"), spec("ui", "api", "watcher")])
    assert [[s.name for s in level] for level in levels] == [["db", "watcher"], ["api"], ["ui"]]


def test_cycles_and_unknown_dependencies_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"\['a', 'b'\] depend on each other"):
        start_order([spec("a", "b"), spec("b", "a")])
    with pytest.raises(ConfigError, match="'a' depends on unknown service 'ghost'"):
        start_order([spec("a", "ghost")])


def http_server(name: str, port: int) -> ServiceSpec:
    # a parent with a child: stop() must take the whole process group
    code = (
        "import subprocess, sys, http.server;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
        f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()"
    )
    return ServiceSpec(name, [sys.executable, "-c", code], port=port, health_url=f"http://127.0.0.1:{port}/")


def test_services_start_healthy_report_status_and_stop_without_orphans(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "run", tmp_path / "logs", cwd=tmp_path)
    specs = [http_server("web", free_port()), http_server("api", free_port())]
    assert sup.start(specs, timeout=20) == ["web", "api"]
    rows = sup.status(specs)
    assert all(r.running and r.healthy and r.pid for r in rows)
    procs = [psutil.Process(r.pid) for r in rows if r.pid]
    family = procs + [c for p in procs for c in p.children(recursive=True)]
    assert len(family) == 4
    assert sup.start(specs, timeout=20) == []  # already running: nothing started twice
    assert sorted(sup.stop(["web", "api"])) == ["api", "web"]
    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
    assert not any(r.running for r in sup.status(specs))


def test_a_service_that_exits_at_start_is_named_with_its_log(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")
    bad = ServiceSpec(
        "broken", [sys.executable, "-c", "raise SystemExit('boom: bad config')"], health_url="http://127.0.0.1:9/"
    )
    with pytest.raises(
        ServiceStartFailed, match=r"broken exited during start-up; read .*broken\.log(.|\n)*boom: bad config"
    ):
        sup.start([bad], timeout=10)


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = dataclasses.replace(http_server("web", port), port_setting="LAB_WEB_PORT")
        with pytest.raises(PortInUse, match=f"port {port} for web is already in use.*LAB_WEB_PORT"):
            sup.start([spec], timeout=5)
    assert not (tmp_path / "run" / "web.json").exists()


def test_a_corrupt_pid_file_gets_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "web.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"pid file .*web\.json is corrupt.*lab down --force"):
        Supervisor(tmp_path / "run", tmp_path / "logs").status([spec("web")])


def test_a_reader_never_sees_a_pid_file_half_written(tmp_path: Path) -> None:
    """Drill probes and `lab status` read pid files from other processes while a restart rewrites them."""
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")
    sleeper = ServiceSpec("svc", ["sleep", "60"])
    sup._spawn(sleeper)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys, pathlib\n"
            "path, bad = pathlib.Path(sys.argv[1]), 0\n"
            "while not pathlib.Path(sys.argv[2]).exists():\n"
            "    try:\n        json.loads(path.read_text())\n"
            "    except ValueError:\n        bad += 1\n"
            "print(bad)\n",
            str(tmp_path / "run" / "svc.json"),
            str(tmp_path / "done"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(300):  # a restart: the new process's record replaces the old one's
            old = sup._children["svc"]
            sup._spawn(sleeper)
            old.kill()
            old.wait()
    finally:
        (tmp_path / "done").touch()
        said, _ = reader.communicate(timeout=30)
        sup.stop(["svc"])
    assert said == "0\n"
