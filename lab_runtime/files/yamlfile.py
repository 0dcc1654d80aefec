"""Reading YAML files into validated pydantic models, with errors that name the file and the field.

Labs, alert rules, pipeline releases and drills are all data; this is the one loader they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lab_runtime.errors import LabError

M = TypeVar("M", bound=BaseModel)


def where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as `steps.2.check`."""
    return ".".join(str(p) for p in loc) or "(top level)"


def describe(exc: ValidationError) -> str:
    """Every error of a validation failure, each as `field: message`. A tuple whose bad items were dropped is too
    short only as a consequence: that error is left out when its items' own errors are there."""
    errors = exc.errors()
    locs = [e["loc"] for e in errors]

    def consequence(error: Any) -> bool:
        loc = error["loc"]
        return bool(error["type"] == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs))

    return "; ".join(f"{where(e['loc'])}: {e['msg']}" for e in errors if not consequence(e))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: where (line and column, from 1), what is wrong, and what was being read."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark, text = exc.problem_mark, exc.problem or exc.context or "not valid YAML"
        found = f"line {mark.line + 1}, column {mark.column + 1}: {text}"
        if exc.problem and exc.context:
            begun = exc.context_mark
            found += f" ({exc.context}"
            if begun is not None and (begun.line, begun.column) != (mark.line, mark.column):
                found += f" from line {begun.line + 1}, column {begun.column + 1}"
            found += ")"
        return " ".join(found.split())
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.position + 1}: unacceptable character #x{exc.character:04x} ({exc.reason})"
    return " ".join(str(exc).split())


def parse(text: str) -> Any:
    """`text` as YAML, by libyaml's safe loader when PyYAML has it (several times faster); a document it refuses
    is parsed again by the pure-Python loader, whose error (the one `yaml_problem` words) is raised."""
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return yaml.safe_load(text)


def read_mapping(path: Path, error: type[LabError], what: str, empty_ok: bool = False) -> dict[str, Any]:
    """The YAML mapping in `path` (an empty file is an empty mapping when `empty_ok`); any problem raises `error`
    naming the file."""
    try:
        raw = parse(path.read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a text file in UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {yaml_problem(exc)}") from exc
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise error(f"{path}: a {what} must be a mapping of fields, got {type(raw).__name__}")
    return raw


def load_model(path: Path, model: type[M], error: type[LabError], what: str, extra: dict[str, Any] | None = None) -> M:
    """Read `path` and validate it as `model`; errors name the file and every bad field."""
    raw = read_mapping(path, error, what)
    try:
        return model.model_validate({**raw, **(extra or {})})
    except ValidationError as exc:
        raise error(f"{path}: {describe(exc)}") from exc
