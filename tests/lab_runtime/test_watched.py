"""A file a process follows: the fallback while it is missing, the last good content while it is broken."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lab_runtime.errors import LabError
from lab_runtime.files.atomic import write_atomic
from lab_runtime.files.watched import WatchedFile


def parse(path: Path) -> int:
    text = path.read_text()
    if not text.strip().isdigit():
        raise LabError(f"{path}: not a number: {text.strip()!r}")
    return int(text)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    fallback = tmp_path / "builtin.txt"
    fallback.write_text("1")
    return tmp_path / "mine.txt", fallback


def test_the_fallback_rules_while_the_file_is_missing_then_the_file_then_the_fallback_again(
    files: tuple[Path, Path],
) -> None:
    mine, fallback = files
    watched = WatchedFile(mine, parse, fallback)
    assert (watched.value, watched.source, watched.problem) == (1, fallback, None)
    assert watched.refresh() is False  # nothing changed
    mine.write_text("2")
    assert watched.refresh() is True and (watched.value, watched.source) == (2, mine)
    mine.write_text("30")
    assert watched.refresh() is True and watched.value == 30
    mine.unlink()
    assert watched.refresh() is True and (watched.value, watched.source) == (1, fallback)


def test_a_broken_file_leaves_the_last_good_content_in_force_and_says_why(files: tuple[Path, Path]) -> None:
    mine, fallback = files
    mine.write_text("2")
    watched = WatchedFile(mine, parse, fallback)
    mine.write_text("two")
    assert watched.refresh() is False
    assert watched.value == 2 and watched.source == mine
    assert watched.problem == f"{mine}: not a number: 'two'; the last good one stays in force"
    mine.write_text("3")
    assert watched.refresh() is True and (watched.value, watched.problem) == (3, None)


def test_a_file_broken_from_the_start_leaves_the_fallback_in_force(files: tuple[Path, Path]) -> None:
    mine, fallback = files
    mine.write_text("none")
    watched = WatchedFile(mine, parse, fallback)
    assert (watched.value, watched.source) == (1, fallback) and watched.problem is not None


def test_following_calls_back_on_each_change_of_the_content_or_of_the_problem(files: tuple[Path, Path]) -> None:
    mine, fallback = files
    watched = WatchedFile(mine, parse, fallback)
    seen: list[tuple[int, str | None]] = []
    changed = threading.Event()

    def on_change(w: WatchedFile[int]) -> None:
        seen.append((w.value, w.problem))
        changed.set()

    stop = watched.follow(0.02, on_change)
    try:
        for text in ("5", "five"):
            changed.clear()
            write_atomic(mine, text.encode())  # whole: the follower never reads it half-written
            assert changed.wait(5), f"no call back after writing {text!r}"
    finally:
        stop()
    assert seen[0] == (5, None) and seen[1][0] == 5 and "not a number: 'five'" in str(seen[1][1])


def test_with_keep_when_missing_a_file_gone_keeps_its_last_content_and_says_so(files: tuple[Path, Path]) -> None:
    mine, fallback = files
    watched = WatchedFile(mine, parse, fallback, keep_when_missing=True)
    assert (watched.value, watched.problem) == (1, None)  # never existed: the fallback, nothing to say
    mine.write_text("7")
    assert watched.refresh() is True and watched.value == 7
    mine.unlink()
    assert watched.refresh() is False
    assert (watched.value, watched.problem) == (7, f"{mine} is gone; the last state stays in force")
    mine.write_text("8")
    assert watched.refresh() is True and (watched.value, watched.problem) == (8, None)
