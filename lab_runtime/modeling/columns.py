"""The columns of the credit-risk data: what the model reads, the label, and the production stream's ids.

Apart from `data` so that code which only names columns (lab checks, the CLI) does not load numpy and pandas.
"""

from __future__ import annotations

NUMERIC_FEATURES: tuple[str, ...] = (
    "age",
    "income",
    "loan_amount",
    "loan_term_months",
    "credit_score",
    "debt_to_income",
    "num_open_accounts",
    "num_late_payments",
    "employment_years",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("home_ownership", "purpose", "region")
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
INTEGER_FEATURES = frozenset({"age", "loan_term_months", "num_open_accounts", "num_late_payments", "employment_years"})
LABEL = "default"
REQUEST_ID = "request_id"
STREAM_ID_GLOB = "s[0-9]*-[0-9]*"  # SQLite GLOB of the production stream's request ids (`s<seed>-<row>`)
