"""Result bundles: one learner's graded drill runs, labs and capstone, signed with HMAC-SHA256 under the
instructor's key, so a cohort report can refuse any bundle changed after export. Pure, except the file reading
(`read_json`, `read_bundle`).

The signature covers the canonical JSON of everything but the `signature` field (sorted keys, no spaces), so any
change to a figure, a name or the journal digest breaks it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from grader.grading import RunGrade, grade
from lab_runtime.errors import InvalidBundle
from lab_runtime.events import LAB_CHECK, LAB_STARTED
from lab_runtime.journal import Event

# 2: ttr from the fix's start; ttm, mitigated_at and time_to_recovery added. 3: decision, verdict, blast_radius.
# 4: the steps each lab passed; the skill check's forms (assessments); team runs (team, who detected, mitigated and
# remediated, each member's part).
FORMAT = "mlops-lab-results/4"
FORMATS = (
    "mlops-lab-results/1",
    "mlops-lab-results/2",
    "mlops-lab-results/3",
    FORMAT,
)  # every format verifies (older runs lack fields)
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_BYTES = 16 * 2**20  # a bundle file, read at most: a graded run takes about 450 bytes
MAX_DEPTH = 1024  # levels of JSON nesting orjson parses; a bundle has a handful
ALGORITHM = "HMAC-SHA256"


class Member(BaseModel):
    """A team member's part in a team's run (the fields of `MemberGrade`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    learner: str
    role: str | None
    ttd: float | None
    wrong_declarations: int
    actions: int
    mitigated: bool
    remediated: bool


class Run(BaseModel):
    """A graded drill run as a bundle holds it (the fields of `RunGrade`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    run_id: str
    drill: str
    learner: str | None
    diagnosis: str
    injected_at: float | None
    detected_at: float | None
    ttd: float | None
    wrong_declarations: int
    remediated_at: float | None
    ttr: float | None
    outcome: str
    collateral: tuple[str, ...]
    score: float
    time_limit: float
    fixed_at: float | None
    blind: bool
    finished: bool
    mitigated_at: float | None = None
    ttm: float | None = None
    time_to_recovery: float | None = None
    decision: str | None = None
    verdict: str | None = None
    blast_radius: int | None = None
    team: str | None = None
    detected_by: str | None = None
    mitigated_by: str | None = None
    remediated_by: str | None = None
    members: tuple[Member, ...] = ()

    @property
    def detected(self) -> bool:
        return self.detected_at is not None


class LabResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lab: str
    passed: int
    total: int
    completed: bool
    steps: tuple[str, ...] = ()  # the ids of the steps some check passed (a bundle before format 4 has none)
    checked_at: float | None = None  # when a check first passed that many steps (a bundle before format 4: none)


class Bundle(BaseModel):
    """A verified bundle, as the cohort report reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str
    learner: str
    exported_at: float
    labs: tuple[LabResult, ...]
    runs: tuple[Run, ...]
    capstone: dict[str, Any] | None = None
    assessments: dict[str, dict[str, Any]] = {}  # the skill check's baseline and final (a bundle before 4: none)
    team_assessments: dict[str, dict[str, dict[str, Any]]] = {}  # team -> its forms, for the learner's teams
    journal: dict[str, Any]
    signature: dict[str, str]

    @property
    def scored_capstone(self) -> dict[str, Any] | None:
        """The capstone once it finished with a score (score, passed, dimensions), else None."""
        cap = self.capstone
        return cap if cap and cap.get("finished") and "score" in cap else None


def canonical(value: Any) -> bytes:
    """The signed form: compact JSON with sorted keys (orjson: a cohort report verifies 10,000 of these)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def key_id(key: bytes) -> str:
    """A short fingerprint of the key, so a bundle says which key signed it without revealing it."""
    return hashlib.sha256(b"key-id:" + key).hexdigest()[:12]


def journal_digest(events: Iterable[Event]) -> dict[str, Any]:
    """The count and SHA-256 of the events a bundle was graded from, in append order."""
    digest, count = hashlib.sha256(), 0
    for e in events:
        fields = [e.id, e.ts, e.source, e.kind, e.learner, e.run_id, e.payload]
        digest.update(canonical(fields if e.began is None else [*fields, e.began]) + b"\n")
        count += 1
    return {"events": count, "sha256": digest.hexdigest()}


def lab_results(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Per lab started: the most steps one check passed (and when a check first did), whether one check passed
    them all, and every step some check passed (in the lab's order)."""
    labs: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind == LAB_STARTED:
            empty = {
                "lab": e.payload["lab"],
                "passed": 0,
                "total": 0,
                "completed": False,
                "steps": [],
                "checked_at": None,
            }
            labs.setdefault(e.payload["lab"], empty)
        elif e.kind == LAB_CHECK and e.payload.get("lab") in labs:
            entry, passed, steps = labs[e.payload["lab"]], int(e.payload["passed"]), e.payload.get("steps", [])
            entry["total"] = len(steps)
            if entry["checked_at"] is None or passed > entry["passed"]:
                entry["checked_at"] = e.at  # when its command started
            entry["passed"] = max(entry["passed"], passed)
            entry["completed"] = entry["completed"] or passed == entry["total"] > 0
            done = set(entry["steps"]) | {s.get("id") for s in steps if s.get("passed")}
            entry["steps"] = [s["id"] for s in steps if s.get("id") in done]
    return list(labs.values())


def learner_runs(events: Iterable[Event], learner: str) -> list[RunGrade]:
    """The graded runs of `learner`: their own, and their teams' runs."""
    return [g for g in grade(events) if g.learner == learner or any(m.learner == learner for m in g.members)]


def build_bundle(
    events: list[Event],
    learner: str,
    exported_at: float,
    capstone: dict[str, Any] | None = None,
    assessments: dict[str, dict[str, Any]] | None = None,
    team_assessments: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The unsigned bundle of `learner`: labs, graded drill runs, capstone, skill check, digest of their events."""
    own = [e for e in events if e.learner == learner]
    # A blind run still going would give its drill away to whoever reads the file: it comes in a later export.
    runs: list[RunGrade] = [g for g in learner_runs(events, learner) if g.finished or not g.blind]
    return {
        "format": FORMAT,
        "learner": learner,
        "exported_at": exported_at,
        "labs": lab_results(own),
        "runs": [asdict(r) for r in runs],
        "capstone": capstone,
        "assessments": assessments or {},
        "team_assessments": team_assessments or {},
        "journal": journal_digest(own),
    }


def sign(bundle: dict[str, Any], key: bytes) -> dict[str, Any]:
    body = {k: v for k, v in bundle.items() if k != "signature"}
    mac = hmac.new(key, canonical(body), hashlib.sha256).hexdigest()
    return {**body, "signature": {"algorithm": ALGORITHM, "key_id": key_id(key), "value": mac}}


def verify(data: Any, key: bytes, name: str) -> Bundle:
    """The bundle `data` (parsed JSON) if its signature holds under `key`; InvalidBundle naming `name` otherwise."""
    if not isinstance(data, dict) or data.get("format") not in FORMATS:
        raise InvalidBundle(f"{name} is not a result bundle (export one with `lab results export --out FILE`)")
    signature = data.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        raise InvalidBundle(f"{name} is not signed; only bundles from `lab results export` are accepted")
    if signature.get("algorithm") != ALGORITHM:
        raise InvalidBundle(f"{name} is signed with {signature.get('algorithm')!r}; only {ALGORITHM} is accepted")
    if not _HEX64.fullmatch(signature["value"]):
        raise InvalidBundle(f"{name} has a malformed signature (64 hex digits expected); re-export it")
    try:
        expected = sign(data, key)["signature"]["value"]
    except orjson.JSONEncodeError:
        raise InvalidBundle(f"{name} is not a result bundle (its JSON cannot be read back as one)") from None
    if not hmac.compare_digest(expected.encode(), signature["value"].encode()):
        if signature.get("key_id") != key_id(key):
            raise InvalidBundle(
                f"{name} was signed with another key (key id {signature.get('key_id')}, yours {key_id(key)}); "
                "verify it with the instructor key it was exported under"
            )
        raise InvalidBundle(f"{name} was changed after it was signed (its signature does not match its contents)")
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise InvalidBundle(f"{name} is signed but malformed: {fields}") from None


def read_json(path: Path, limit: int = MAX_BYTES) -> Any:
    """The JSON value in `path`, never reading more than `limit` bytes; InvalidBundle saying what was wrong."""
    advice = "a result bundle comes from `lab results export`"
    most = f"the {limit:,} bytes ({limit / 2**20:g} MiB) a result bundle may have"
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise InvalidBundle(f"{path} is {size:,} bytes, more than {most}; {advice}")
            raw = handle.read(limit + 1)  # a file that grew, or one with no size (a pipe, a device)
    except OSError as exc:
        raise InvalidBundle(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise InvalidBundle(f"{path} holds more than {most}; {advice}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg == "depth limit exceeded":
            raise InvalidBundle(f"{path} is JSON nested deeper than {MAX_DEPTH} levels; {advice}") from None
        raise InvalidBundle(f"{path} is not JSON ({exc}); {advice}") from None


def read_bundle(path: Path, key: bytes) -> Bundle:
    """Read and verify one bundle file."""
    return verify(read_json(path), key, str(path))
