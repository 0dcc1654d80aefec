import math
from typing import Any

import jsonschema_rs  # schemathesis' validator
import pytest
from pydantic import ValidationError

from lab_runtime.service.schema import (
    MAX_MAGNITUDE,
    FeedbackIn,
    SchemaError,
    columns_from_signature,
    error_detail,
    predict_body_schema,
    record_model,
)

COLUMNS = [("income", "double", True), ("age", "long", True), ("region", "string", True)]
GOOD = {"income": 52.5, "age": 40, "region": "north"}


def errors(features: dict[str, object]) -> list[dict[str, object]]:
    with pytest.raises(ValidationError) as info:
        record_model(COLUMNS).model_validate(features)
    return error_detail(info.value, ("features",))


def test_a_good_record_passes_and_an_int_is_taken_for_a_double() -> None:
    assert record_model(COLUMNS).model_validate({**GOOD, "income": 52}).model_dump()["income"] == 52


def test_the_features_schema_states_each_type_and_bound() -> None:
    properties = record_model(COLUMNS).model_json_schema()["properties"]
    bounds = {"minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE}
    assert properties["income"] == {"type": "number", "title": "Income", **bounds}
    assert properties["age"] == {"type": "integer", "title": "Age", **bounds}
    assert properties["region"] == {"type": "string", "title": "Region"}


def test_an_integral_number_is_taken_for_an_integer_as_json_schema_says() -> None:
    age = record_model(COLUMNS).model_validate({**GOOD, "age": 40.0}).model_dump()["age"]
    assert (age, type(age)) == (40, int)


@pytest.mark.parametrize(
    ("features", "loc", "kind"),
    [
        ({"age": 40, "region": "north"}, ["features", "income"], "missing"),
        ({**GOOD, "age": "forty"}, ["features", "age"], "int_type"),
        ({**GOOD, "age": 40.5}, ["features", "age"], "int_type"),
        ({**GOOD, "age": True}, ["features", "age"], "int_type"),
        ({**GOOD, "age": 10**13}, ["features", "age"], "less_than_equal"),
        ({**GOOD, "income": -1.7e308}, ["features", "income"], "greater_than_equal"),
        ({**GOOD, "income": "52.5"}, ["features", "income"], "float_type"),
        ({**GOOD, "income": math.nan}, ["features", "income"], "finite_number"),
        ({**GOOD, "income": math.inf}, ["features", "income"], "finite_number"),
        ({**GOOD, "region": 3}, ["features", "region"], "string_type"),
        ({**GOOD, "salary": 1.0}, ["features", "salary"], "extra_forbidden"),
    ],
)
def test_a_bad_record_is_refused_naming_the_field_and_reason(
    features: dict[str, object], loc: list[str], kind: str
) -> None:
    found = errors(features)
    assert any(e["loc"] == loc and str(e["type"]).startswith(kind.split("_")[0]) for e in found), found


def test_a_model_without_signature_cannot_be_served() -> None:
    with pytest.raises(SchemaError, match=r"no input signature.*infer_signature"):
        columns_from_signature(None)


def test_columns_come_from_the_signature() -> None:
    sig = [{"name": "income", "type": "double", "required": True}, {"name": "region", "type": "string"}]
    assert columns_from_signature(sig) == [("income", "double", True), ("region", "string", True)]
    with pytest.raises(SchemaError, match="unsupported signature column"):
        columns_from_signature([{"type": "tensor"}])


BODY = predict_body_schema(record_model(COLUMNS).model_json_schema(), max_batch=2)


def branches(body: object) -> int:
    """How many branches of the /predict body schema `body` fits (the whole schema takes exactly one)."""
    return sum(jsonschema_rs.validator_for(branch).is_valid(body) for branch in BODY["oneOf"])


@pytest.mark.parametrize(
    ("body", "fits"),
    [
        ({"request_id": "a", "features": GOOD}, 1),
        ({"features": GOOD}, 1),
        ({"records": [{"features": GOOD}]}, 1),
        ({"records": [{"features": GOOD}, {"request_id": "b", "features": GOOD}]}, 1),
        ({}, 0),
        ({"records": []}, 0),
        ({"records": [{"features": GOOD}] * 3}, 0),  # over max_batch
        ({"records": [{"features": GOOD}], "features": GOOD}, 0),
        ({"features": {**GOOD, "salary": 1.0}}, 0),
        ({"request_id": "", "features": GOOD}, 0),
    ],
)
def test_the_predict_body_schema_takes_a_record_or_a_batch_exactly_once_and_nothing_the_service_refuses(
    body: object, fits: int
) -> None:
    assert branches(body) == fits
    assert jsonschema_rs.validator_for(BODY).is_valid(body) == (fits == 1)


@pytest.mark.parametrize("label", [0, 1])
def test_a_label_is_the_integer_0_or_1(label: int) -> None:
    assert FeedbackIn.model_validate_json(f'{{"request_id": "r", "label": {label}}}').label == label


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        (False, "int_type"),
        (True, "int_type"),
        ("1", "int_type"),
        (1.0, "int_type"),
        (2, "less_than_equal"),
        (-1, "greater_than_equal"),
    ],
)
def test_any_other_label_is_refused_not_coerced(label: Any, kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        FeedbackIn.model_validate({"request_id": "r", "label": label})
    assert [(e["loc"], e["type"]) for e in error_detail(info.value)] == [(["label"], kind)]
