"""Spans of probes at which a drill's conditions held, and by when the learner's move that brought them back must
have begun (`fixed_by`): what the grader credits a mitigation or a remediation to. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drills.conditions import FAST_SIGNALS, RECENT_FIRST, recent_bad_key

FIX_MARGIN = 1.0  # seconds a fix may take effect after the request it is dated by (a clean run by chance)


def fix_evidence(signal: str, observed: Mapping[str, float], seen: float) -> float:
    """By when the move that brought `signal` back within its condition must have begun, judged at the first
    probe that found it back (done at `seen`).

    A fast signal is judged on the service's recent requests: the fix acted before the first of them, or
    after the last bad one among them (a condition may allow a few), with `FIX_MARGIN` for a clean run by
    chance. Any other signal (an alias, a process, the monitor's window) was back by the time the probe saw it.
    """
    first = observed.get(RECENT_FIRST)
    if signal not in FAST_SIGNALS or first is None:
        return seen
    return min(seen, max(first, observed.get(recent_bad_key(signal), first)) + FIX_MARGIN)


@dataclass
class Span:
    """A stretch of probes at which some conditions held, and by when the move that began it must have begun: the
    latest time by which a condition that had failed was back (`fix_evidence`), over the conditions that failed
    since the stretch's tracking began."""

    hold: float
    start: float | None = None
    seen: float = 0.0
    fixed_by: float = 0.0
    held: float = 0.0
    done: bool = False
    _back: dict[str, float] = field(default_factory=dict)  # signal -> by when it was back, since it last failed
    _failing: frozenset[str] = frozenset()

    def step(self, ok: bool, at: float, seen: float, observed: dict[str, float], failed: frozenset[str]) -> bool:
        """Take one probe (started `at`, done `seen`, `failed`: the signals it found failing); True once the
        conditions have held for `hold`."""
        for name in self._failing - failed:
            self._back[name] = fix_evidence(name, observed, seen)
        for name in failed:
            self._back.pop(name, None)
        self._failing = failed
        if not ok:
            self.start = None
            return False
        if self.start is None:
            self.start, self.seen = at, seen
            self.fixed_by = max(self._back.values(), default=seen)
        self.held = at - self.start
        self.done = self.held >= self.hold
        return self.done

    def payload(self, cleared_since: float | None = None) -> dict[str, float | None]:
        """The span as journaled; every fault seen gone since `cleared_since` (and ever since) dates the fix no
        later than that."""
        fixed_by = self.fixed_by if cleared_since is None else min(self.fixed_by, cleared_since)
        return {"span_start": self.start, "seen_at": self.seen, "fixed_by": fixed_by, "held": self.held}
