"""The CLI finds its sandbox from any folder below the project, or from LAB_HOME, and refuses where there is none;
bad settings there (the learner's name, a number, `.env` itself) get one line naming the variable, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab_runtime.errors import ConfigError
from lab_runtime.settings import LEARNER_MAX, find_home, load_settings
from tests.conftest import free_port

RULE = """rules:
  - name: prediction-drift
    signal: prediction_drifted
    comparison: "=="
    threshold: 1
    for: 10s
    summary: the model's output moved
    runbook: read the drift report
"""


def _project(root: Path) -> Path:
    """A folder that looks like a clone of the project (what `find_home` walks up to)."""
    (root / "labs").mkdir(parents=True)
    (root / "lab_runtime").mkdir()
    (root / "lab_runtime" / "__init__.py").touch()
    return root


def _lab(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `lab` command in its own process, run from `cwd` with no LAB_* setting but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    return subprocess.run(
        [sys.executable, "-m", "lab_runtime.cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_home_is_the_nearest_project_folder_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_HOME", raising=False)
    project = _project(tmp_path / "course")
    deep = project / ".lab" / "workspace" / "lab-02"
    deep.mkdir(parents=True)
    assert find_home(deep) == project.resolve()
    assert find_home(project) == project.resolve()
    assert find_home(tmp_path) is None


def test_lab_home_names_the_sandbox_and_must_be_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path / "course")
    monkeypatch.setenv("LAB_HOME", str(project))
    monkeypatch.delenv("LAB_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().root == (project / ".lab").resolve()
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"LAB_HOME=.*nowhere is not a folder: set it to the project folder"):
        load_settings()


def test_the_cli_uses_one_sandbox_from_every_folder_below_it(tmp_path: Path) -> None:
    project = _project(tmp_path / "course")
    port = free_port()
    (project / ".env").write_text(f"LAB_SERVICE_PORT={port}\n")
    workspace = project / ".lab" / "workspace" / "lab-02"
    workspace.mkdir(parents=True)
    (workspace / "prediction-drift.yaml").write_text(RULE)

    # From the folder the lab README sends the learner to: the rule lands in the project's sandbox.
    added = _lab(["monitor", "add-rules", "prediction-drift.yaml"], cwd=workspace)
    assert added.returncode == 0, added.stderr
    assert (project / ".lab" / "rules" / "prediction-drift.yaml").is_file()
    assert not (workspace / ".lab").exists()
    assert f"using the sandbox in {project.resolve()} (the project folder above)" in added.stderr

    # `.env` is read from the project too: the service's port is the one it sets, not the default.
    status = _lab(["status", "--json"], cwd=workspace)
    assert status.returncode == 0, status.stderr
    ports = {s["name"]: s["port"] for s in json.loads(status.stdout)}
    assert ports["model-service"] == port

    # From the project folder itself nothing needs saying.
    at_home = _lab(["status", "--json"], cwd=project)
    assert at_home.returncode == 0 and "using the sandbox" not in at_home.stderr


def test_the_cli_refuses_outside_any_sandbox_and_obeys_lab_home(tmp_path: Path) -> None:
    project = _project(tmp_path / "course")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["check"], ["alerts"]):
        refused = _lab(args, cwd=elsewhere)
        assert refused.returncode == 1
        assert f"no lab sandbox here: {elsewhere.resolve()} is not inside the project folder" in refused.stderr
        assert "set LAB_HOME to the project folder" in refused.stderr
        assert "Traceback" not in refused.stderr

    named = _lab(["alerts"], cwd=elsewhere, LAB_HOME=str(project))
    assert named.returncode == 0, named.stderr
    assert f"using the sandbox in {project.resolve()} (LAB_HOME)" in named.stderr
    assert "no alert is firing" in named.stdout


ALLOWED = (
    "a learner's name is 1 to 64 printable characters (letters, digits, spaces, punctuation), e.g. LAB_LEARNER=ada"
)


@pytest.mark.parametrize(
    "command",
    [["check"], ["declare", "service-down"], ["monitor", "report"], ["drill", "run", "incident-service-crash"]],
)
def test_a_learner_name_that_is_not_utf8_is_one_line_naming_lab_learner(tmp_path: Path, command: list[str]) -> None:
    project = _project(tmp_path / "course")
    refused = _lab(command, cwd=project, LAB_LEARNER=os.fsdecode(b"\xff\xfe"))  # the bytes as Python holds them
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f"error: LAB_LEARNER is not valid UTF-8: {ALLOWED} (set in the environment or in {project.resolve()}/.env)\n"
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [("", "is empty"), ("a\tb", "holds a control character"), ("x" * (LEARNER_MAX + 1), "has 65 characters")],
)
def test_a_learner_name_must_be_printable_and_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, problem: str
) -> None:
    monkeypatch.setenv("LAB_HOME", str(_project(tmp_path / "course")))
    monkeypatch.setenv("LAB_LEARNER", name)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"LAB_LEARNER {problem}: {ALLOWED} (set in the environment or in ")
    for fine in ("ada", "José Núñez", "Ada Lovelace (group 3)", "x" * LEARNER_MAX):
        monkeypatch.setenv("LAB_LEARNER", fine)
        assert load_settings().learner == fine


def test_a_bad_setting_or_a_dotenv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    project = _project(tmp_path / "course")
    seed = _lab(["check"], cwd=project, LAB_SEED="abc")
    assert (seed.returncode, seed.stdout) == (1, "")
    assert seed.stderr == (
        "error: LAB_SEED: Input should be a valid integer, unable to parse string as an integer "
        f"(set in the environment or in {project.resolve()}/.env)\n"
    )
    (project / ".env").write_bytes(b"LAB_LEARNER=\xff\xfe\n")
    dotenv = _lab(["check"], cwd=project)
    assert (dotenv.returncode, dotenv.stdout) == (1, "")
    assert dotenv.stderr == f"error: {project.resolve()}/.env is not UTF-8 text (byte 13): save it as UTF-8\n"


def test_a_console_set_by_halves_or_not_as_a_web_address_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_HOME", str(_project(tmp_path / "course")))
    monkeypatch.setenv("LAB_CONSOLE_URL", "http://127.0.0.1:8800")
    with pytest.raises(ConfigError) as half:
        load_settings()
    assert str(half.value).startswith(
        "LAB_CONSOLE_URL is set but LAB_CONSOLE_TOKEN is not: set both to join the instructor console (the token "
        "comes from `lab console token NAME`), or neither (set in the environment or in "
    )
    monkeypatch.setenv("LAB_CONSOLE_URL", "127.0.0.1:8800")
    monkeypatch.setenv("LAB_CONSOLE_TOKEN", "labc_x")
    with pytest.raises(ConfigError, match=r"LAB_CONSOLE_URL '127.0.0.1:8800' is not a web address: http://HOST:PORT"):
        load_settings()
    monkeypatch.setenv("LAB_CONSOLE_URL", "https://console.example:8800")
    assert load_settings().console_token == "labc_x"
