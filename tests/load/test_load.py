"""`lab load` helpers: the duration syntax, the Locust command line, and the summary of real Locust CSV files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab_runtime.errors import LabError
from lab_runtime.load import LOCUSTFILE, LoadSummary, load_seconds, locust_command, read_summary

FIXTURES = Path(__file__).parent / "fixtures"  # written by Locust 2.47 (`--csv`) against the model service


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("1h30m", 5400), ("45", 45), (" 1m5s ", 65)])
def test_a_duration_is_whole_seconds(text: str, seconds: int) -> None:
    assert load_seconds(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "--duration: 'soon' is not a duration; write it like 30s, 2m, 1h30m"),
        ("", "is not a duration"),
        ("30x", "is not a duration"),
        ("0s", "a load run lasts a whole number of seconds, at least 1s"),
        ("1.5s", "whole number of seconds"),
        ("250ms", "whole number of seconds"),
        ("-5s", "is not a duration"),
    ],
)
def test_a_bad_duration_says_how_to_write_one(text: str, message: str) -> None:
    with pytest.raises(LabError, match="--duration") as err:
        load_seconds(text)
    assert message in str(err.value)


def test_the_locust_command_runs_headless_in_another_interpreter_process(tmp_path: Path) -> None:
    argv = locust_command(LOCUSTFILE, "http://127.0.0.1:8000", 2, 0.5, 30, tmp_path / "run")
    assert argv[:3] == [sys.executable, "-m", "locust"] and "--headless" in argv and "--only-summary" in argv

    def option(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert option("-f") == str(LOCUSTFILE) and LOCUSTFILE.is_file()
    assert (option("-u"), option("-r"), option("-t")) == ("2", "0.5", "30s")
    assert option("--csv") == str(tmp_path / "run") and option("--host") == "http://127.0.0.1:8000"


def test_the_summary_is_the_aggregated_row() -> None:
    assert read_summary(FIXTURES / "locust") == LoadSummary(
        requests=37, failures=0, rps=pytest.approx(37.683, abs=1e-3), p50_ms=48.0, p95_ms=100.0, p99_ms=100.0
    )
    failed = read_summary(FIXTURES / "locust_failures")
    assert failed is not None and failed.requests == failed.failures == 1487 and failed.p99_ms == 16.0


def test_no_summary_without_a_completed_request_or_without_the_file(tmp_path: Path) -> None:
    assert read_summary(FIXTURES / "locust_empty") is None  # percentiles are "N/A" there
    assert read_summary(tmp_path / "never-ran") is None
