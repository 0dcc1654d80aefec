"""The recent view a running drill judges a fix by, read from a real prediction log (no servers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drills.conditions import RECENT, recent_bad_key
from drills.probes import output_seconds, recent
from lab_runtime.predlog import FallbackRow, PredictionLogger, PredictionRow, RequestRow
from lab_runtime.settings import Settings

BROKE = ("approve-over-dti-limit",)


def test_the_recent_output_signal_is_the_share_of_unsafe_decisions_over_the_last_decisions(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", pipeline_rate=20)
    settings.ensure_dirs()
    seconds = output_seconds(settings)
    assert seconds == 10.0  # 200 decisions at 20 a second
    now = time.time()
    logger = PredictionLogger(settings.prediction_log_path, maxsize=1000)
    rows: list[PredictionRow | FallbackRow | RequestRow] = []
    for i in range(150):  # the last 7.5 s: 150 decisions of the model, 6 unsafe
        at = now - 7.5 + i * 0.05
        rows.append(
            PredictionRow(at, f"m{i}", "2", "champion", 0, 0.1, 5.0, {}, "approve", BROKE if i % 25 == 0 else ())
        )
        rows.append(RequestRow(at, 200, "champion", 1, 5.0, "2"))
    rows += [FallbackRow(now - 1, f"f{i}", "refer", {}) for i in range(50)]  # and 50 of the fallback
    rows.append(PredictionRow(now - seconds - 1, "old", "2", "champion", 0, 0.1, 5.0, {}, "approve", BROKE))
    logger.log(rows)
    logger.close()
    observed = recent(settings, output=True)
    assert observed[RECENT + "unsafe_output_rate"] == pytest.approx(6 / 200)
    assert observed[recent_bad_key("unsafe_output_rate")] == pytest.approx(now - 7.5 + 125 * 0.05)
    assert observed[recent_bad_key("unsafe_output_rate", "rate")] == pytest.approx(6 / seconds)
    assert RECENT + "unsafe_output_rate" not in recent(settings)  # only when a condition needs it
