"""Named slices of a test set, as data (`slices.yaml`, validated on load): one per category of a categorical
feature, and bands of a numeric one. `choose` picks the slices a command line names (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab_runtime.errors import InvalidEvaluation, NotFound
from lab_runtime.files.yamlfile import load_model
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from lab_runtime.modeling.population import categories

BUILTIN = Path(__file__).with_name("slices.yaml")


class Band(BaseModel):
    """A range of a numeric feature: from `from` (included) to `below` (excluded); either may be open."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    low: float | None = Field(None, alias="from")
    below: float | None = None

    @model_validator(mode="after")
    def _a_range(self) -> Band:
        if self.low is None and self.below is None:
            raise ValueError(f"band {self.name}: give `from`, `below` or both")
        if self.low is not None and self.below is not None and self.below <= self.low:
            raise ValueError(f"band {self.name}: `below` ({self.below:g}) must be above `from` ({self.low:g})")
        return self


class SliceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: list[str] = Field(default_factory=list)
    bands: dict[str, list[Band]] = Field(default_factory=dict)

    @field_validator("categories")
    @classmethod
    def _categorical(cls, features: list[str]) -> list[str]:
        if unknown := [f for f in features if f not in CATEGORICAL_FEATURES]:
            raise ValueError(f"{unknown[0]!r} is not a categorical feature; they are {', '.join(CATEGORICAL_FEATURES)}")
        return features

    @field_validator("bands")
    @classmethod
    def _numeric(cls, bands: dict[str, list[Band]]) -> dict[str, list[Band]]:
        if unknown := [f for f in bands if f not in NUMERIC_FEATURES]:
            raise ValueError(f"{unknown[0]!r} is not a numeric feature; they are {', '.join(NUMERIC_FEATURES)}")
        for feature, listed in bands.items():
            names = [b.name for b in listed]
            if twice := sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"{feature}: band {twice[0]!r} is named twice")
        return bands


@dataclass(frozen=True)
class Slice:
    """The rows of a test set whose `feature` is one of `values` (a category), or within [low, below) (a band)."""

    name: str  # feature=category, or feature=band
    feature: str
    values: tuple[str, ...] = ()
    low: float | None = None
    below: float | None = None

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        column = frame[self.feature]
        if self.values:
            return np.asarray(column.isin(self.values).to_numpy(), dtype=bool)
        inside = np.ones(len(frame), dtype=bool)
        if self.low is not None:
            inside &= column.to_numpy(dtype=float) >= self.low
        if self.below is not None:
            inside &= column.to_numpy(dtype=float) < self.below
        return inside


def load_slices(path: Path = BUILTIN) -> list[Slice]:
    """The slices `path` defines, in its order; a bad file raises InvalidEvaluation naming the file and field."""
    spec = load_model(path, SliceFile, InvalidEvaluation, "slice file")
    found = [Slice(f"{f}={c}", f, values=(c,)) for f in spec.categories for c in categories(f)]
    found += [Slice(f"{f}={b.name}", f, low=b.low, below=b.below) for f, bands in spec.bands.items() for b in bands]
    return found


def choose(slices: Sequence[Slice], names: Sequence[str]) -> list[Slice]:
    """The slices `names` asks for (none: all), each a slice's name or a feature's (all of its slices), in the
    file's order; an unknown name is refused naming the known ones."""
    if not names:
        return list(slices)
    features = list(dict.fromkeys(s.feature for s in slices))
    for name in names:
        if name not in features and all(s.name != name for s in slices):
            raise NotFound(
                f"unknown slice {name!r}; slices: {', '.join(s.name for s in slices)} "
                f"(or every slice of a feature: {', '.join(features)})"
            )
    return [s for s in slices if s.name in names or s.feature in names]
