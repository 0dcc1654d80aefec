"""Evaluation coverage (pure): of the versions promoted to `@champion`, the share evaluated before their promotion.

A version counts once, at its first promotion (a rollback that brings it back is not a new release). Its
promotion is the watcher's `registry.alias_changed` event that made it `@champion`; an evaluation is a
`learner.action` `eval.run` on it, or its `lab.eval.at` tag (which says when its latest evaluation ran), dated
before that. The first `@champion` counts too: a sandbox's baseline nobody evaluated shows as not covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lab_runtime.events import ALIAS_CHANGED, EVAL_RUN, LEARNER_ACTION
from lab_runtime.journal import Event
from lab_runtime.registry.path import EVAL_AT_TAG, EVAL_VERDICT_TAG
from lab_runtime.registry.rest import CHAMPION


@dataclass(frozen=True)
class Evaluated:
    at: float
    verdict: str | None


@dataclass(frozen=True)
class Promoted:
    version: str
    at: float  # when it first became @champion
    via: str
    evaluated: Evaluated | None  # its first evaluation before that, if any

    @property
    def covered(self) -> bool:
        return self.evaluated is not None


@dataclass(frozen=True)
class Coverage:
    promoted: list[Promoted] = field(default_factory=list)

    @property
    def covered(self) -> int:
        return sum(p.covered for p in self.promoted)

    @property
    def share(self) -> float | None:
        return self.covered / len(self.promoted) if self.promoted else None


def evaluations(events: Iterable[Event], tags: Mapping[str, Mapping[str, str]]) -> dict[str, list[Evaluated]]:
    """Every evaluation of each version, oldest first: `eval.run` actions and each version's `lab.eval.at` tag
    (`tags`: version -> its tags)."""
    found: dict[str, list[Evaluated]] = {}
    for event in events:
        p: Mapping[str, Any] = event.payload
        if event.kind == LEARNER_ACTION and p.get("action") == EVAL_RUN and p.get("version"):
            found.setdefault(str(p["version"]), []).append(Evaluated(event.at, p.get("verdict")))
    for version, version_tags in tags.items():
        try:
            at = float(version_tags[EVAL_AT_TAG])
        except (KeyError, ValueError):
            continue
        found.setdefault(version, []).append(Evaluated(at, version_tags.get(EVAL_VERDICT_TAG)))
    return {v: sorted(found[v], key=lambda e: e.at) for v in found}


def coverage(events: Iterable[Event], model: str, tags: Mapping[str, Mapping[str, str]]) -> Coverage:
    """The versions of `model` promoted to @champion (journal order) and whether each was evaluated first."""
    events = list(events)
    evaluated = evaluations(events, tags)
    promoted: list[Promoted] = []
    seen: set[str] = set()
    for event in events:
        p: Mapping[str, Any] = event.payload
        if event.kind != ALIAS_CHANGED or p.get("model") != model or p.get("alias") != CHAMPION:
            continue
        version = p.get("after")
        if version is None or version in seen:
            continue
        seen.add(version)
        before = [e for e in evaluated.get(version, []) if e.at <= event.ts]
        promoted.append(Promoted(version, event.ts, str(p.get("via", "")), before[0] if before else None))
    return Coverage(promoted)
