"""The rows a load run sends: distinct, and what the monitor's drift test calls production traffic."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pandas as pd
import pytest

from lab_runtime.load.rows import BLOCKS, LoadRows
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.monitor.drift import detect
from lab_runtime.pipeline.releases import to_features
from lab_runtime.settings import Settings

# the defaults a learner has: the monitor's window (5,000 rows), its reference set and alpha
SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
GENERATOR = DataGenerator(SETTINGS.seed)
REFERENCE = GENERATOR.reference(SETTINGS.reference_rows)


def window(features: list[dict[str, Any]]) -> pd.DataFrame:
    """The monitor's view of these requests: features through JSON, as the prediction log stores and reads them."""
    return pd.DataFrame.from_records([json.loads(json.dumps(f)) for f in features])


def sent(rows: LoadRows, n: int) -> list[tuple[str, dict[str, Any]]]:
    return list(itertools.islice(rows, n))


def test_no_row_and_no_request_id_is_sent_twice_by_one_source_or_two() -> None:
    first, second = sent(LoadRows(GENERATOR), 6000), sent(LoadRows(GENERATOR), 6000)
    ids = [request_id for request_id, _ in first + second]
    rows = [tuple(sorted(features.items())) for _, features in first + second]
    assert len(set(ids)) == len(ids) == 12_000 and all(i.startswith("load-") for i in ids)
    assert len(set(rows)) == len(rows)
    assert {tuple(f) for _, f in first[:3]} == {FEATURES}  # every feature, named as the service takes them


@pytest.mark.parametrize("block", [1, 2**40, BLOCKS])
def test_a_window_of_load_rows_passes_the_monitors_drift_test(block: int) -> None:
    current = window([features for _, features in sent(LoadRows(GENERATOR, block), SETTINGS.monitor_max_rows)])
    result = detect(REFERENCE, current, SETTINGS.drift_alpha)
    assert result.tested == len(FEATURES) and result.drifted == []


def test_a_sample_sent_again_and_again_is_what_the_drift_test_catches() -> None:
    sample = to_features(GENERATOR.production(1_000_000_000, 500)[list(FEATURES)])
    cycled = window([sample[n % len(sample)] for n in range(SETTINGS.monitor_max_rows)])  # 500 rows, 10 times
    assert detect(REFERENCE, cycled, SETTINGS.drift_alpha).drifted == ["credit_score", "home_ownership", "region"]


def test_the_pipelines_stretch_of_the_stream_is_never_read() -> None:
    assert all(LoadRows(GENERATOR).block >= 1 for _ in range(100))
    with pytest.raises(ValueError, match="block 0 is the pipeline's stream"):
        LoadRows(GENERATOR, 0)
