"""The incident note a learner writes in lab 05 (`incident-note.md`), read and judged against what the journal
recorded. Pure: text and reference times in, problems out.

The note has a `Diagnosis:` line, a timeline of `Began:`, `Detected:` and `Mitigated:` times (UTC, `HH:MM:SS`,
`HH:MM` or ISO 8601), and the sections `Impact`, `Root cause` and `Follow-ups`, each filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lab_runtime.durations import format_duration

TIMELINE = ("began", "detected", "mitigated")
SECTIONS = ("impact", "root cause", "follow-ups")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FIELD = r"^\s*[-*]?\s*\**({names})\**\s*:\s*(.*?)\s*$"  # `Name: value`, maybe listed or bold
_HEADING = re.compile(r"^#{2,}\s*(.+?)\s*$", re.M)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:\s*(?:UTC|Z))?$", re.I)


@dataclass(frozen=True)
class IncidentNote:
    fields: dict[str, str]  # diagnosis, began, detected, mitigated (as written; missing ones absent)
    sections: dict[str, str]  # lower-cased heading -> body


def uncommented(text: str) -> str:
    """`text` without its HTML comments (a template's guidance)."""
    return _COMMENT.sub("", text)


def read_fields(text: str, names: tuple[str, ...]) -> dict[str, str]:
    """The first `Name: value` line of each of `names` (lower-cased keys, any case in the text)."""
    pattern = re.compile(_FIELD.format(names="|".join(re.escape(n) for n in names)), re.I | re.M)
    found: dict[str, str] = {}
    for name, value in pattern.findall(text):
        found.setdefault(name.lower(), value.strip().strip("`"))
    return found


def read_sections(text: str) -> dict[str, str]:
    """Each `##` (or deeper) heading, lower-cased, and the text under it up to the next heading."""
    sections: dict[str, str] = {}
    headings = list(_HEADING.finditer(text))
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        sections[heading.group(1).lower()] = text[heading.end() : end].strip()
    return sections


def parse(text: str) -> IncidentNote:
    clean = uncommented(text)
    return IncidentNote(read_fields(clean, ("diagnosis", *TIMELINE)), read_sections(clean))


def resolve_time(text: str, near: float) -> float | None:
    """`text` as a UTC timestamp: an ISO 8601 time, or a clock time on the day nearest `near`; None if neither."""
    value = text.strip()
    match = _CLOCK.match(value)
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            return None
        day = datetime.fromtimestamp(near, UTC).replace(hour=hour, minute=minute, second=second, microsecond=0)
        return min((day + timedelta(days=d) for d in (-1, 0, 1)), key=lambda t: abs(t.timestamp() - near)).timestamp()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Reference:
    """What the journal recorded: the ground-truth diagnosis and when the incident began, was detected, mitigated."""

    diagnosis: str
    began: float
    detected: float
    mitigated: float


def judge(note: IncidentNote, ref: Reference, tolerance: float, began_tolerance: float) -> list[str]:
    """Every way the note disagrees with the journal, or is unfinished; empty when it holds."""
    problems = []
    diagnosis = note.fields.get("diagnosis", "")
    if diagnosis.lower() != ref.diagnosis:
        problems.append(f"Diagnosis: {diagnosis or 'missing'!r} is not what happened (one of `lab declare --list`)")
    for name in TIMELINE:
        written = note.fields.get(name)
        if not written or "todo" in written.lower():
            problems.append(f"{name.title()}: missing; write the time (UTC, HH:MM:SS)")
            continue
        expected = getattr(ref, name)
        at = resolve_time(written, expected)
        if at is None:
            problems.append(f"{name.title()}: {written!r} is not a time; write HH:MM:SS (UTC) or ISO 8601")
            continue
        allowed = began_tolerance if name == "began" else tolerance
        if abs(at - expected) > allowed:
            side = "before" if at < expected else "after"
            problems.append(
                f"{name.title()}: {written} is {format_duration(abs(at - expected))} {side} what the journal recorded "
                f"(allowed: {format_duration(allowed)}); `lab grade` shows the recorded times"
            )
    for section in SECTIONS:
        body = note.sections.get(section)
        if body is None:
            problems.append(f"## {section.title()}: the section is missing")
        elif not body or "todo" in body.lower():
            problems.append(f"## {section.title()}: still to write (no TODO left)")
    return problems
