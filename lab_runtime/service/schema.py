"""Request schemas derived from a model's MLflow signature, the answers' models (for the OpenAPI document), and the
422 error format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from lab_runtime.service.policy import Policy

# Numeric features are refused beyond this magnitude: larger ones overflow a model's arithmetic (a scaler's
# division gives infinity, and scikit-learn refuses it), and no feature of the lab's data comes near.
MAX_MAGNITUDE = 10**12
FiniteFloat = Annotated[  # strict, yet takes 3 for 3.0
    StrictFloat, Field(allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)
]


def _integral(value: Any) -> Any:
    """40.0 as 40: JSON (and its schema) does not tell them apart; 40.5, "40" and true stay wrong."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


BoundedInt = Annotated[StrictInt, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE), BeforeValidator(_integral)]

# MLflow column types -> strict pydantic types ("wrong type" is an error, never a silent coercion).
_TYPES: dict[str, Any] = {
    "double": FiniteFloat,
    "float": FiniteFloat,
    "long": BoundedInt,
    "integer": BoundedInt,
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
    """Records to score in one call (how many at most is a setting: the app checks it)."""

    model_config = ConfigDict(extra="forbid")
    records: list[RecordIn]


def predict_body_schema(features: dict[str, Any] | None, max_batch: int) -> dict[str, Any]:
    """The JSON schema of a /predict body: one record, or a batch of 1 to `max_batch` records (`features`: the
    schema of a record's features, any object when None). Exactly one branch fits any body: a record has no
    `records`, a batch nothing else."""
    record = RecordIn.model_json_schema()
    if features is not None:
        record["properties"]["features"] = features
    records = {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}
    batch = {
        "title": "BatchIn",
        "type": "object",
        "properties": {"records": records},
        "required": ["records"],
        "additionalProperties": False,
    }
    return {"oneOf": [record, batch]}


class PredictionOut(BaseModel):
    request_id: str
    prediction: int = Field(description="1: predicted to default (the fallback's decline), 0: not")
    probability: float | None = Field(description="the model's probability of default; None from the fallback")
    decision: Literal["approve", "refer", "decline"] = Field(
        description="under the output policy: the model's probability against its thresholds (refer: to a human "
        "reviewer), or the fallback's rules"
    )
    decided_by: Literal["model", "fallback"] = Field(
        description="fallback: the model switch (`lab feature`) sent this request to the fallback rules"
    )
    model_version: str | None = Field(description="the version that scored it; None from the fallback")
    variant: Literal["champion", "challenger", "fallback"]


class BatchOut(BaseModel):
    predictions: list[PredictionOut]


class FeedbackIn(BaseModel):
    """A delayed ground-truth label for a request the service answered: `label` is the integer 0 or 1."""

    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(min_length=1, max_length=200)]
    # JSON Schema cannot tell 1 from 1.0: the enum leaves the integers alone
    label: Annotated[StrictInt, Field(ge=0, le=1, json_schema_extra={"enum": [0, 1]})]


class FeedbackOut(BaseModel):
    status: Literal["accepted"]


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    ready: bool
    reason: str | None = Field(None, description="why the service cannot answer /predict (when not ready)")


class FeatureOut(BaseModel):
    name: str
    type: str
    required: bool


class SwitchOut(BaseModel):
    mode: Literal["on", "off", "throttle"] = Field(description="the model decides all, none or a share of requests")
    share: float = Field(description="the share of requests the model decides")
    source: str = Field(description="the flag file in force")
    problem: str | None = Field(description="why the flag file was refused or is gone (its last state stays)")


class PolicyOut(Policy):
    source: str = Field(description="the output policy file in force")
    problem: str | None = Field(description="why the learner's policy file was refused; None: it was not")


class ShadowOut(BaseModel):
    staging: str | None = Field(description="the version the champion's records are mirrored to (None: no shadow)")
    share: float = Field(description="the share of the champion's records mirrored to it")
    queue_depth: int = Field(description="mirrored records waiting for the shadow")
    queue_size: int = Field(description="the most that wait; records beyond it are dropped")
    queued: int = Field(description="records handed to the shadow since the service started")
    dropped: int = Field(description="records dropped since the service started because the queue was full")


class WebhookOut(BaseModel):
    subscribed: bool = Field(description="MLflow took the subscription of the service's webhook")
    pushed: bool = Field(description="and a signed delivery came since: the registry is read on each, else every 10 s")
    pushes: int = Field(description="signed deliveries taken since the service started")
    refused: int = Field(description="deliveries refused: unsigned, signed with another secret, or too old")


class ModelOut(BaseModel):
    model_name: str
    champion: str | None
    challenger: str | None
    canary_weight: float
    registry_aliases: dict[str, str]
    registry_reachable: bool
    load_errors: dict[str, str] = Field(description="version -> why it cannot be served")
    features: list[FeatureOut]
    switch: SwitchOut
    shadow: ShadowOut
    webhook: WebhookOut | None = Field(description="null when registry webhooks are off (LAB_REGISTRY_WEBHOOKS)")


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidOut(BaseModel):
    """A 422 answer: each error's location (`body`, `records`, index, `features`, field), message and type."""

    detail: list[FieldError]


def error_detail(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """FastAPI-style 422 details: location, message and type of each error, inputs left out."""
    return [{"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()]
