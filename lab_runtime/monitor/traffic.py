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


def output_signals(predictions: pd.DataFrame, fallback_decisions: int = 0) -> dict[str, float]:
    """Over every decision served, the model's (`predictions`, columns decision, violations) and the fallback's
    (`fallback_decisions` of them, which never approve nor break a rule): `unsafe_output_rate` (the share that
    broke an output-policy rule), `approval_rate` and `fallback_share`; they need decisions."""
    recorded = "violations" in predictions
    decisions = (len(predictions) if recorded else 0) + fallback_decisions
    if not decisions:
        return {}
    unsafe = int((predictions["violations"] != "").sum()) if recorded else 0
    approved = int((predictions["decision"] == "approve").sum()) if recorded else 0
    return {
        "unsafe_output_rate": unsafe / decisions,
        "approval_rate": approved / decisions,
        "fallback_share": fallback_decisions / decisions,
    }
