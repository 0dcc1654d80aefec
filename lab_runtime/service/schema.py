"""Request schemas derived from a model's MLflow signature, and the 422 error format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]  # strict, yet takes 3 for 3.0

# MLflow column types -> strict pydantic types ("wrong type" is an error, never a silent coercion).
_TYPES: dict[str, Any] = {
    "double": FiniteFloat,
    "float": FiniteFloat,
    "long": StrictInt,
    "integer": StrictInt,
    "string": StrictStr,
    "boolean": StrictBool,
}


class SchemaError(ValueError):
    """The signature cannot be served (no signature, or a column type the service does not take)."""


def columns_from_signature(inputs: list[dict[str, Any]] | None) -> list[tuple[str, str, bool]]:
    """(name, type, required) for each input column of a signature's `inputs.to_dict()`."""
    if not inputs:
        raise SchemaError("the model has no input signature; log it with `signature=infer_signature(X, y)`")
    columns = []
    for col in inputs:
        if "name" not in col or col.get("type") not in _TYPES:
            raise SchemaError(f"unsupported signature column {col}; use named scalar columns")
        columns.append((col["name"], col["type"], bool(col.get("required", True))))
    return columns


def record_model(columns: list[tuple[str, str, bool]]) -> type[BaseModel]:
    """A pydantic model of one record: the signature's columns, strict types, no unknown fields."""
    fields: dict[str, Any] = {
        name: (_TYPES[kind], ...) if required else (_TYPES[kind] | None, None) for name, kind, required in columns
    }
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Features", __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields
    )


class RecordIn(BaseModel):
    """One record to score. `request_id` makes the canary split sticky; one is made when absent."""

    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    features: dict[str, Any]


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[RecordIn]


class PredictionOut(BaseModel):
    request_id: str
    prediction: int
    probability: float
    model_version: str
    variant: Literal["champion", "challenger"]


class FeedbackIn(BaseModel):
    """A delayed ground-truth label for a request the service answered."""

    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(min_length=1, max_length=200)]
    label: Annotated[int, Field(ge=0, le=1)]


def error_detail(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """FastAPI-style 422 details: location, message and type of each error, inputs left out."""
    return [{"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()]
