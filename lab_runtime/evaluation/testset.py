"""The rows an evaluation scores: the versioned default test set, or a learner's CSV file (columns checked).

`credit-v1` is 2,000 seeded rows of the training population on a random stream of their own
(`DataGenerator.evaluation`), so no training, holdout or production row is in it, and its name means the same
rows on every sandbox (a fixed seed, not the sandbox's). A CSV test set is named after its file and content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lab_runtime.errors import InvalidEvaluation
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES, LABEL, NUMERIC_FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import typed

DEFAULT = "credit-v1"
DEFAULT_ROWS = 2_000
DEFAULT_SEED = 42
NEEDED = (*FEATURES, LABEL)


@dataclass(frozen=True)
class EvaluationSet:
    """Labelled rows with a name that says which rows they are."""

    name: str  # "credit-v1", or "<file stem>-<first 8 hex of its sha256>"
    rows: pd.DataFrame  # the features in model order and the label, typed as the training set is
    source: str  # "seeded" or the file's path


def default_set() -> EvaluationSet:
    """The default test set, `credit-v1`."""
    return EvaluationSet(DEFAULT, typed(DataGenerator(DEFAULT_SEED).evaluation(DEFAULT_ROWS)), "seeded")


def problems(frame: pd.DataFrame) -> list[str]:
    """What keeps `frame` from being a test set (pure): missing columns first, then values that do not fit."""
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        return [f"missing columns {', '.join(missing)} (a test set has the features and the label `{LABEL}`)"]
    found = []
    if frame.empty:
        found.append("no rows")
    for name in NUMERIC_FEATURES:
        bad = pd.to_numeric(frame[name], errors="coerce").isna()
        if bad.any():
            found.append(
                f"column {name}: {int(bad.sum())} value(s) not a number (first on row {int(bad.idxmax()) + 1})"
            )
    for name in CATEGORICAL_FEATURES:
        if frame[name].isna().any():
            found.append(f"column {name}: {int(frame[name].isna().sum())} empty value(s)")
    labels = pd.to_numeric(frame[LABEL], errors="coerce")
    if not labels.isin([0, 1]).all():
        found.append(f"column {LABEL}: labels are 0 (repaid) or 1 (defaulted), {int((~labels.isin([0, 1])).sum())} not")
    elif not frame.empty and labels.nunique() < 2:
        found.append(f"column {LABEL}: every row is {int(labels.iloc[0])}; a test set needs both labels")
    return found


def read_set(path: Path) -> EvaluationSet:
    """The test set in the CSV file `path` (a header row naming the columns; others are ignored); a file that
    cannot be read, or lacks a feature or the label, is refused naming the file and the columns."""
    try:
        content = path.read_bytes()
        frame = pd.read_csv(path)
    except OSError as exc:
        raise InvalidEvaluation(f"{path}: cannot read the test set ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser and empty-data errors are ValueErrors
        raise InvalidEvaluation(f"{path}: not a CSV test set ({str(exc).splitlines()[0]})") from None
    found = problems(frame)
    if found:
        raise InvalidEvaluation(f"{path}: {'; '.join(found)}")
    digest = hashlib.sha256(content).hexdigest()[:8]
    return EvaluationSet(f"{path.stem}-{digest}", typed(frame), str(path))
