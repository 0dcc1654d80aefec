import math

import pytest
from pydantic import ValidationError

from lab_runtime.service.schema import SchemaError, columns_from_signature, error_detail, record_model

COLUMNS = [("income", "double", True), ("age", "long", True), ("region", "string", True)]
GOOD = {"income": 52.5, "age": 40, "region": "north"}


def errors(features: dict[str, object]) -> list[dict[str, object]]:
    with pytest.raises(ValidationError) as info:
        record_model(COLUMNS).model_validate(features)
    return error_detail(info.value, ("features",))


def test_a_good_record_passes_and_an_int_is_taken_for_a_double() -> None:
    assert record_model(COLUMNS).model_validate({**GOOD, "income": 52}).model_dump()["income"] == 52


@pytest.mark.parametrize(
    ("features", "loc", "kind"),
    [
        ({"age": 40, "region": "north"}, ["features", "income"], "missing"),
        ({**GOOD, "age": "forty"}, ["features", "age"], "int_type"),
        ({**GOOD, "age": 40.5}, ["features", "age"], "int_type"),
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
