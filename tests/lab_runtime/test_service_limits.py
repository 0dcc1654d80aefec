"""The nesting scanner of the service's body limits, fed whole and in chunks of every size (pure)."""

from __future__ import annotations

import json

import pytest

from lab_runtime.service.limits import MAX_DEPTH, DepthScanner

BATCH = json.dumps({"records": [{"request_id": "a", "features": {"income": 1.5, "region": "north"}}]})


def within(body: str, limit: int = MAX_DEPTH, size: int | None = None) -> bool:
    """Whether `body`, fed in chunks of `size` bytes (whole when None), stays within `limit` levels."""
    data = body.encode()
    step = size or len(data) or 1
    scanner = DepthScanner(limit)
    return all(scanner.feed(data[i : i + step]) for i in range(0, len(data), step))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (BATCH, True),
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, True),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), False),
        ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), False),
        ("[]" * 1000, True),  # many siblings, never deep
        (json.dumps({"text": "[{" * 100}), True),  # brackets inside a string do not nest
        (json.dumps({"text": '\\"[[' * 50}), True),  # an escaped quote does not end the string
        (json.dumps({"text": "ends in a backslash \\"}) + "[" * (MAX_DEPTH + 1), False),  # the string did end
    ],
)
def test_nesting_is_measured_outside_strings_whatever_the_chunks(body: str, expected: bool) -> None:
    assert {within(body, size=size) for size in (None, 1, 2, 3, 7, 64)} == {expected}


def test_a_scanner_stops_at_the_first_level_past_its_limit() -> None:
    scanner = DepthScanner(limit=3)
    assert scanner.feed(b"[[[") and scanner.depth == 3
    assert not scanner.feed(b"[")
