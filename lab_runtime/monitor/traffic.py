"""Traffic signals from the service's own record of /predict calls: volume, error rates, latency; output signals
from its predictions: the decisions it served and the output-policy rules they broke. Pure.

The monitor computes them over its window; a drill's probe over the last few seconds, to see a fix within
seconds of the learner's move.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def traffic_signals(calls: pd.DataFrame, seconds: float) -> dict[str, float]:
    """`requests`, `request_rate`, `error_rate`, `server_error_rate` and `latency_p50/95/99_ms` (of successful calls)
    of the calls in `calls` (columns status, latency_ms) made over `seconds`; rates and latencies need calls."""
    signals = {"requests": float(len(calls)), "request_rate": len(calls) / seconds}
    if len(calls):
        signals["error_rate"] = float((calls["status"] != 200).mean())
        signals["server_error_rate"] = float((calls["status"] >= 500).mean())
        ok = calls.loc[calls["status"] == 200, "latency_ms"]
        if len(ok):
            for q in (50, 95, 99):
                signals[f"latency_p{q}_ms"] = float(np.percentile(ok, q))
    return signals


def output_signals(predictions: pd.DataFrame) -> dict[str, float]:
    """`unsafe_output_rate` (share of predictions whose decision broke an output-policy rule) and `approval_rate`
    of `predictions` (columns decision, violations); both need predictions, and a log that records decisions."""
    if not len(predictions) or "violations" not in predictions:
        return {}
    return {
        "unsafe_output_rate": float((predictions["violations"] != "").mean()),
        "approval_rate": float((predictions["decision"] == "approve").mean()),
    }
