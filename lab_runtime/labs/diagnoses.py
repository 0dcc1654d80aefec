"""The fixed vocabulary of diagnoses a learner may declare (`lab declare`), and what each one means."""

from __future__ import annotations

from lab_runtime.errors import NotFound

DIAGNOSES: dict[str, str] = {
    "data-drift": "the inputs' distribution moved away from what the model was trained on",
    "schema-skew": "the inputs no longer match the model's schema (renamed, null or retyped columns)",
    "concept-drift": "the relation between inputs and outcome changed; quality falls on the same inputs",
    "latency": "the service answers too slowly",
    "errors": "the service answers with errors",
    "bad-model": "a model version serving traffic is worse than it should be",
    "dependency-outage": "a service the model service depends on (the registry) is down",
    "service-down": "the model service itself is not answering",
    "feedback-outage": "ground-truth labels stopped arriving, so quality cannot be measured",
    "unsafe-output": "the service serves decisions its output policy forbids",
    "overload": "more traffic than the model can serve: its answers come slow and degraded",
}


def check_diagnosis(diagnosis: str) -> str:
    """`diagnosis` if it is in the vocabulary; NotFound listing the vocabulary otherwise."""
    if diagnosis not in DIAGNOSES:
        raise NotFound(f"unknown diagnosis {diagnosis!r}; declare one of: {', '.join(DIAGNOSES)}")
    return diagnosis
