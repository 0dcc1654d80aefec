"""`lab logs SERVICE` on a stopped sandbox's state dir: the end of a log, a notice for an empty one, one clear error
for a service never started or unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab_runtime.settings import load_settings
from tests.cli import lab, one_line_error


@pytest.fixture
def logs_dir(lab_env: dict[str, str]) -> Path:
    """The logs folder of a sandbox that is not running."""
    settings = load_settings()
    settings.ensure_dirs()
    return settings.logs_dir


def test_lab_logs_prints_the_last_lines_of_a_service_log(logs_dir: Path) -> None:
    path = logs_dir / "monitor.log"
    path.write_text("".join(f"line {i}\n" for i in range(50)))
    shown = lab("logs", "monitor", "--lines", "3")
    assert shown.returncode == 0, shown
    assert shown.stdout == "line 47\nline 48\nline 49\n" and shown.stderr == ""


def test_lab_logs_says_when_a_log_is_empty_instead_of_printing_nothing(logs_dir: Path) -> None:
    path = logs_dir / "model-service.log"
    path.write_text("")
    shown = lab("logs", "model-service")
    assert shown.returncode == 0, shown
    assert shown.stdout == ""
    assert shown.stderr.strip() == f"model-service's log is empty ({path}): it has logged nothing since it started"


def test_lab_logs_of_a_service_never_started_or_unknown_is_one_clear_error(logs_dir: Path) -> None:
    one_line_error(lab("logs", "pipeline"), "pipeline has no log yet (")
    one_line_error(lab("logs", "pipeline"), "it has never been started in this sandbox; start it with `lab up`")
    one_line_error(
        lab("logs", "model-servce"), "unknown service 'model-servce'; services are ['mlflow', 'model-service'"
    )
    no_lines = lab("logs", "monitor", "--lines", "0")
    assert no_lines.returncode == 2 and "greater than or equal to 1" in no_lines.stderr
