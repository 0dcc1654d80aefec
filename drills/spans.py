"""Spans of probes at which a drill's conditions held, and by when the learner's move that brought them back must
have begun (`fixed_by`): what the grader credits a mitigation or a remediation to. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drills.conditions import FAST_SIGNALS, OUTPUT_FAST, RECENT, RECENT_FIRST, recent_bad_key
from lab_runtime.events import HeldSpan

FIX_MARGIN = 1.0  # seconds a fix may have acted after the request it is dated by, at most
CHANCE = 3.0  # bad requests expected in that time, had the fault still acted (no bad one then: e**-3 by chance)
# Unsafe decisions are sparse (a few a second): a gap of a second or two between them is common, so the output
# signal's margin is wider, and surer (no unsafe decision in it by chance: e**-5).
OUTPUT_FIX_MARGIN, OUTPUT_CHANCE = 10.0, 5.0


def fix_evidence(
    signal: str, observed: Mapping[str, float], seen: float, bad_before: tuple[float, float] | None = None
) -> float:
    """By when the move that brought `signal` back within its condition must have begun, judged at the first
    probe that found it back (done at `seen`).

    A fast signal is judged on the service's recent requests. `bad_before` is (when the last bad request was, how
    many came a second) as the probes saw them while the signal failed. The fault stopped acting after the last bad
    request seen (one the condition allows included), or before the first recent request when none is known; had
    it acted longer, more bad requests would have come: the margin is the time `CHANCE` of them take (at most
    `FIX_MARGIN`). Any other signal (an alias, a process, the monitor's window) was back when the probe saw it.
    """
    first = observed.get(RECENT_FIRST)
    if signal not in FAST_SIGNALS or first is None:
        return seen
    last, rate = bad_before if bad_before is not None else (first, 0.0)
    allowed = observed.get(recent_bad_key(signal))  # a bad request within what the condition allows
    if allowed is not None and allowed > last:
        last, rate = allowed, max(rate, observed.get(recent_bad_key(signal, "rate"), 0.0))
    cap, chance = (OUTPUT_FIX_MARGIN, OUTPUT_CHANCE) if signal in OUTPUT_FAST else (FIX_MARGIN, CHANCE)
    margin = min(cap, chance / rate) if rate > 0 else cap
    return min(seen, last + margin)


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
    _bad: dict[str, tuple[float, float]] = field(default_factory=dict)  # signal -> its last bad request and rate
    _failing: frozenset[str] = frozenset()

    def step(self, ok: bool, at: float, seen: float, observed: Mapping[str, float], failed: frozenset[str]) -> bool:
        """Take one probe (started `at`, done `seen`, `failed`: the signals it found failing); True once the
        conditions have held for `hold`."""
        for name in self._failing - failed:
            self._back[name] = fix_evidence(name, observed, seen, self._bad.pop(name, None))
        for name in failed:
            self._back.pop(name, None)
            last = observed.get(recent_bad_key(name))
            if last is not None:
                self._bad[name] = (last, observed.get(recent_bad_key(name, "rate"), 0.0))
            elif RECENT + name not in observed:  # too few requests to judge: the fault may act on, unseen
                self._bad[name] = (at, 0.0)
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

    def payload(self, cleared_since: float | None = None) -> HeldSpan:
        """The span as journaled, once it has started; every fault seen gone since `cleared_since` (and ever since)
        dates the fix no later than that."""
        assert self.start is not None
        fixed_by = self.fixed_by if cleared_since is None else min(self.fixed_by, cleared_since)
        return HeldSpan(span_start=self.start, seen_at=self.seen, fixed_by=fixed_by, held=self.held)
