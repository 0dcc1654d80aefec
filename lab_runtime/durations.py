"""Durations as people write them: `30s`, `2m`, `1h30m`, `250ms`, or a plain number of seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds in `value`; raises ValueError naming the accepted forms."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a duration; write it like 30s, 2m, 1h30m or 250ms")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().replace(" ", "")
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a duration; write it like 30s, 2m, 1h30m or 250ms") from None
        else:
            seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{value!r} is not a duration of zero or more seconds")
    return seconds


def format_duration(seconds: float) -> str:
    """`90.0` as `1m30s`, `4.70787` as `4.71s` (three significant digits below a minute)."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.3g}s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


Seconds = Annotated[float, BeforeValidator(parse_duration)]  # a pydantic field written as a duration
