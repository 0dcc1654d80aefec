import multiprocessing
from pathlib import Path

import pytest

from lab_runtime.errors import ConfigError
from lab_runtime.events import LAB_CHECK, LAB_STARTED, LabCheck, LabStarted
from lab_runtime.journal import Journal


def _writer(path: str, source: str, n: int) -> None:
    journal = Journal(Path(path), source=source)
    for i in range(n):
        journal.append(LAB_CHECK, LabCheck(lab="lab-01", passed=i, steps=[]))


def test_appends_from_several_processes_are_all_kept_in_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path, source="setup").close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), f"p{k}", 200)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    events = Journal(path, source="reader").events([LAB_CHECK])
    assert len(events) == 800
    assert len({e.id for e in events}) == 800
    for k in range(4):
        mine = [e.payload["passed"] for e in events if e.source == f"p{k}"]
        assert mine == list(range(200))


def test_events_filter_by_kind_time_and_id(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", source="cli", learner="ada")
    started = LabStarted(lab="lab-01", workspace="w")
    a = journal.append(LAB_STARTED, started, ts=100.0)
    b = journal.append(LAB_CHECK, LabCheck(lab="lab-01", passed=0, steps=[]), run_id="run-1", ts=200.0)
    journal.append(LAB_STARTED, started, ts=300.0)
    assert [e.id for e in journal.events([LAB_STARTED])] == [a.id, a.id + 2]
    assert [e.kind for e in journal.events(since=150.0)] == ["lab.check", "lab.started"]
    assert journal.events(run_id="run-1") == [b]
    assert journal.events(after_id=b.id)[0].ts == 300.0
    assert journal.last(LAB_STARTED) is not None and journal.last(LAB_STARTED).ts == 300.0  # type: ignore[union-attr]
    assert journal.last("missing") is None
    assert a.learner == "ada" and a.payload == {"lab": "lab-01", "workspace": "w"}


def test_a_committed_event_survives_the_writer_being_gone(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_writer, args=(str(path), "doomed", 5))
    proc.start()
    proc.join(60)
    assert [e.payload["passed"] for e in Journal(path, source="r").events()] == [0, 1, 2, 3, 4]


def test_a_corrupt_journal_gets_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match=r"journal\.db is corrupt.*lab down"):
        Journal(path, source="x")
