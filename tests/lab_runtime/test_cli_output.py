"""How the CLI writes: durations people read, and tables whose headers are never cut short."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from lab_runtime.cli.common import PIPE_WIDTH, _console, grid
from lab_runtime.cli.labs import activation_line
from lab_runtime.durations import format_duration

# The widest table the CLI prints: `lab canary status`.
CANARY = ("variant", "version", "share", "calls", "errors", "p50", "p99", "labelled", "accuracy", "f1")


@pytest.mark.parametrize(
    ("seconds", "said"), [(4.70787, "4.71s"), (0.25, "0.25s"), (30.0, "30s"), (59.4, "59.4s"), (90.0, "1m30s")]
)
def test_durations_read_as_people_write_them(seconds: float, said: str) -> None:
    assert format_duration(seconds) == said


def _rendered(width: int, headers: tuple[str, ...], row: tuple[str, ...]) -> str:
    table = grid(*headers, title="canary")
    table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=width).print(table)
    rendered = buffer.getvalue()
    assert max(len(line) for line in rendered.splitlines()) <= width, rendered
    return rendered


ROW = ("challenger", "3", "10.0%", "1234", "0", "12.3 ms", "45.6 ms", "800", "0.8123", "0.7012")


@pytest.mark.parametrize("width", [120, 80, 40])
def test_a_narrow_terminal_keeps_every_header_and_value_whole(width: int) -> None:
    rendered = _rendered(width, CANARY, ROW)
    assert "…" not in rendered, rendered
    for word in (*CANARY, *ROW):
        assert word in rendered, f"{word!r} cut short at {width} columns:\n{rendered}"


def test_a_table_too_wide_for_the_terminal_becomes_one_record_per_row() -> None:
    narrow, wide = _rendered(80, CANARY, ROW), _rendered(120, CANARY, ROW)
    assert "accuracy: 0.8123" in " ".join(narrow.split()) and "┃" not in narrow
    assert "┃ variant" in wide  # a table where it fits


def test_output_to_a_pipe_is_not_cut_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe, as a shell gives it (pytest-xdist's workers set 80)
    console = _console()
    assert not console.is_terminal
    assert console.width == PIPE_WIDTH


def test_the_brief_tells_how_to_put_lab_on_the_path_unless_it_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = Path(sys.prefix) / "bin"
    if not (bin_dir / "activate").is_file():
        pytest.skip(f"the tests run outside a virtual environment ({sys.prefix}): there is no activation line")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert activation_line() == f"source {bin_dir / 'activate'}"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert activation_line() is None
