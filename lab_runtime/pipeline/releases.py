"""Pipeline releases as data: the transforms the upstream pipeline applies to production rows before sending.

A transform is an upstream change the model never saw: a unit change, a distribution shift, a renamed
column, nulls, remapped categories. Pure: nothing here does I/O except `load_release`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab_runtime.errors import InvalidRelease
from lab_runtime.files.yamlfile import load_model
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from lab_runtime.modeling.population import categories, shifted

if TYPE_CHECKING:  # numpy and pandas only where rows are changed: validating a release loads neither
    import numpy as np
    import pandas as pd

Stats = dict[str, tuple[float, float]]  # feature -> (reference mean, reference std), as DataGenerator.stats
Share = Annotated[float, Field(ge=0.0, le=1.0, description="share of rows affected")]


def _rows(n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask choosing about `share` of `n` rows."""
    mask: np.ndarray = rng.random(n) < share
    return mask


def _as_integer(values: pd.Series) -> pd.Series:
    """Rounded to whole numbers, nulls kept (the nullable Int64 type)."""
    return values.astype(float).round().astype("Int64")


class _Transform(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    accepts: ClassVar[tuple[str, ...]] = FEATURES  # the features this kind of transform applies to
    feature: str

    @field_validator("feature")
    @classmethod
    def _known_feature(cls, value: str) -> str:
        if value not in FEATURES:
            raise ValueError(f"unknown feature {value!r}; features are {', '.join(FEATURES)}")
        if value not in cls.accepts:
            kind = "categorical" if value in CATEGORICAL_FEATURES else "numeric"
            raise ValueError(f"{value!r} is {kind}; this transform takes one of {', '.join(cls.accepts)}")
        return value

    def describe(self) -> str:
        raise NotImplementedError

    def apply(self, frame: pd.DataFrame, stats: Stats, rng: np.random.Generator) -> pd.DataFrame:
        """Change `frame` in place (the caller copies it) and return it."""
        raise NotImplementedError


def _integral(frame: pd.DataFrame, feature: str) -> bool:
    from pandas.api.types import is_integer_dtype

    return bool(is_integer_dtype(frame[feature]))


class Scale(_Transform):
    """A unit change of a numeric feature, e.g. income sent in units instead of thousands (factor 1000)."""

    accepts: ClassVar[tuple[str, ...]] = NUMERIC_FEATURES
    type: Literal["scale"]
    factor: float = Field(allow_inf_nan=False, ge=-1e6, le=1e6)

    @field_validator("factor")
    @classmethod
    def _non_zero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("factor must not be 0 (every value would become 0)")
        return value

    def describe(self) -> str:
        return f"scale {self.feature} ×{self.factor:g}"

    def apply(self, frame: pd.DataFrame, stats: Stats, rng: np.random.Generator) -> pd.DataFrame:
        integral = _integral(frame, self.feature)
        frame[self.feature] = frame[self.feature].astype(float) * self.factor
        if integral:
            frame[self.feature] = _as_integer(frame[self.feature])
        return frame


class Shift(_Transform):
    """A distribution shift of a numeric feature: `mean + (value - mean) * scale + std * reference std`."""

    accepts: ClassVar[tuple[str, ...]] = NUMERIC_FEATURES
    type: Literal["shift"]
    std: float = Field(allow_inf_nan=False, ge=-100, le=100, description="shift in reference standard deviations")
    scale: float = Field(1.0, allow_inf_nan=False, ge=0, le=100, description="spread multiplier about the mean")

    def describe(self) -> str:
        spread = f", spread ×{self.scale:g}" if self.scale != 1.0 else ""
        return f"shift {self.feature} by {self.std:+g} std{spread}"

    def apply(self, frame: pd.DataFrame, stats: Stats, rng: np.random.Generator) -> pd.DataFrame:
        integral = _integral(frame, self.feature)
        mean, std = stats[self.feature]
        frame[self.feature] = shifted(frame[self.feature].astype(float), mean, std, self.std, self.scale)
        if integral:
            frame[self.feature] = _as_integer(frame[self.feature])
        return frame


class Rename(_Transform):
    """The column is sent under another name."""

    type: Literal["rename"]
    to: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description="the new column name")

    def describe(self) -> str:
        return f"rename {self.feature} → {self.to}"

    def apply(self, frame: pd.DataFrame, stats: Stats, rng: np.random.Generator) -> pd.DataFrame:
        return frame.rename(columns={self.feature: self.to})


class Null(_Transform):
    """The value becomes null on `share` of the rows."""

    type: Literal["null"]
    share: Share = 1.0

    def describe(self) -> str:
        return f"null {self.feature} on {self.share:.0%} of rows"

    def apply(self, frame: pd.DataFrame, stats: Stats, rng: np.random.Generator) -> pd.DataFrame:
        mask = _rows(len(frame), self.share, rng)
        if self.feature in CATEGORICAL_FEATURES:
            frame[self.feature] = frame[self.feature].astype(object)
            frame.loc[mask, self.feature] = None
        else:
            values = _as_integer(frame[self.feature]) if _integral(frame, self.feature) else frame[self.feature]
            frame[self.feature] = values.mask(mask)
        return frame


class Remap(_Transform):
    """Categories renamed on `share` of the rows; a new name the model never saw is a new category."""

    accepts: ClassVar[tuple[str, ...]] = CATEGORICAL_FEATURES
    type: Literal["remap"]
    mapping: dict[str, str] = Field(min_length=1, description="old category -> new value")
    share: Share = 1.0

    @model_validator(mode="after")
    def _known_categories(self) -> Remap:
        known = categories(self.feature)
        unknown = [old for old in self.mapping if old not in known]
        if unknown:
            raise ValueError(f"mapping: {unknown} not categories of {self.feature}; they are {', '.join(known)}")
        return self

    def describe(self) -> str:
        pairs = ", ".join(f"{old} → {new}" for old, new in self.mapping.items())
        share = f" on {self.share:.0%} of rows" if self.share < 1.0 else ""
        return f"remap {self.feature} ({pairs}){share}"

    def apply(self, frame: pd.DataFrame, stats: Stats, rng: np.random.Generator) -> pd.DataFrame:
        mask = _rows(len(frame), self.share, rng)
        column = frame[self.feature].astype(object)
        frame[self.feature] = column.where(~mask, column.map(lambda v: self.mapping.get(v, v)))
        return frame


Transform = Annotated[Scale | Shift | Rename | Null | Remap, Field(discriminator="type")]


class Release(BaseModel):
    """A versioned pipeline release: a note for people and the transforms it applies, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(description='a slug such as "v1" or "v2-bureau"')
    note: str
    transforms: list[Transform] = []

    @field_validator("version")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"v[0-9]+(-[a-z0-9]+)*", value) or len(value) > 40:
            raise ValueError(f"{value!r} is not a release version; use a slug such as v2 or v2-bureau")
        return value

    @field_validator("transforms", mode="before")
    @classmethod
    def _yaml_null(cls, transforms: Any) -> Any:
        """YAML reads `type: null` as None: that is the `null` transform."""
        if isinstance(transforms, list):
            return [
                {**t, "type": "null"} if isinstance(t, dict) and t.get("type", "") is None else t for t in transforms
            ]
        return transforms

    @field_validator("transforms")
    @classmethod
    def _follow_renames(cls, transforms: list[Transform]) -> list[Transform]:
        renamed: dict[str, tuple[str, int]] = {}
        for i, t in enumerate(transforms):
            if t.feature in renamed:
                to, at = renamed[t.feature]
                raise ValueError(f"item {i} changes {t.feature!r}, which item {at} renamed to {to!r}")
            if isinstance(t, Rename):
                columns = {*FEATURES, *(to for to, _ in renamed.values())} - set(renamed)
                if t.to in columns:
                    raise ValueError(f"item {i} renames {t.feature!r} to {t.to!r}, which is already a column")
                renamed[t.feature] = (t.to, i)
        return transforms

    def summary(self) -> str:
        return "; ".join(t.describe() for t in self.transforms) or "no transforms"


def apply(frame: pd.DataFrame, transforms: list[Transform], stats: Stats, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of `frame` (feature columns) with each transform applied in order; rows for `share` come from `rng`."""
    out = frame.copy()
    for transform in transforms:
        out = transform.apply(out, stats, rng)
    return out


def _native(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unwrapped, NaN/NA/None as None."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_features(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One `features` dict per row, as the model service takes them (renamed keys, nulls as None)."""
    return [{str(k): _native(v) for k, v in row.items()} for row in frame.to_dict("records")]


def load_release(path: Path) -> Release:
    """A release from a YAML file; errors name the file and the field."""
    return load_model(path, Release, InvalidRelease, "pipeline release")
