"""The monitor's signals: the names alert rules may watch, and what each one means.

Window-wide signals have plain names; per-feature signals are `<signal>.<feature>`.
"""

from __future__ import annotations

from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES

WINDOW_SIGNALS: dict[str, str] = {
    "service_up": "1 when the model service answered its health check at this evaluation, else 0",
    "rows": "predictions in the drift window",
    "requests": "/predict calls in the drift window",
    "request_rate": "/predict calls per second over the drift window",
    "error_rate": "share of /predict calls answered with an error (4xx or 5xx)",
    "server_error_rate": "share of /predict calls answered with a 5xx",
    "latency_p50_ms": "median /predict latency of successful calls",
    "latency_p95_ms": "95th percentile /predict latency of successful calls",
    "latency_p99_ms": "99th percentile /predict latency of successful calls",
    "unsafe_output_rate": "share of the decisions served that broke a rule of the output policy (`lab policy`)",
    "approval_rate": "share of the decisions served that approve",
    "fallback_share": "share of the decisions served that the fallback made (the model switched off or throttled)",
    "drifted_features": "features whose drift test rejects at the corrected threshold",
    "drift_share": "drifted_features divided by the features tested",
    "changed_features": "features whose sequential change score reached 1 (a CUSUM chart reached its threshold)",
    "max_missing_share": "largest share of null values in any feature",
    "max_new_category_share": "largest share of category values never seen in the reference set",
    "prediction_drift_p_value": "K-S p-value of the predicted probability against the reference predictions",
    "prediction_drifted": "1 when the prediction drift test rejects at the family alpha, else 0",
    "mean_probability": "mean predicted probability of default in the window",
    "estimated_accuracy": "accuracy the serving version expects of its decisions, without labels (mean of max(p, 1-p))",
    "estimated_accuracy_drop": "the version's estimated accuracy on the reference set minus estimated_accuracy",
    "accuracy_change_score": "the quality chart (a CUSUM on the serving version's mistakes) over its threshold",
    "labelled_rows": "predictions in the quality window that received a label",
    "accuracy": "accuracy on labelled rows",
    "f1": "F1 on labelled rows",
    "accuracy_drop": "baseline accuracy (the model on the reference set) minus accuracy",
    "f1_drop": "baseline F1 minus F1",
    "calibration_error": "on labelled rows, the gap between predicted and observed default rates (10 bins, weighted)",
    "policy_breaches": "window rules of the output policy broken (`lab policy`: approval rate band, calibration)",
}
FEATURE_SIGNALS: dict[str, str] = {
    "change_score": "the feature's strongest CUSUM chart over its threshold (1 or more: changed)",
    "drift_p_value": "p-value of the feature's drift test (K-S for numbers, chi-square for categories)",
    "drifted": "1 when the feature's drift test rejects at the corrected threshold, else 0",
    "missing_share": "share of null values of the feature",
    "new_category_share": "share of values never seen in the reference set (categorical features)",
}


def is_known(signal: str) -> bool:
    """Whether `signal` names a window signal or `<feature signal>.<feature>` for a real feature."""
    if signal in WINDOW_SIGNALS:
        return True
    prefix, _, feature = signal.partition(".")
    if prefix == "new_category_share":
        return feature in CATEGORICAL_FEATURES
    return prefix in FEATURE_SIGNALS and feature in FEATURES


def catalog() -> str:
    """The signal names, for error messages."""
    per_feature = ", ".join(f"{p}.<feature>" for p in FEATURE_SIGNALS)
    return f"{', '.join(WINDOW_SIGNALS)}, or per feature {per_feature}"
