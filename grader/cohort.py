"""A cohort's figures from its learners' verified result bundles: per drill, per learner, and two cohorts side by
side. Pure: the bundles come in already read and verified (`grader.results`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from statistics import fmean

from grader.before_after import BeforeAfter, before_after, team_before_after
from grader.grading import decision_label
from grader.results import Bundle, Run


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q` (0..1) percentile of `values` with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """p50, p90 and max of a figure (a duration in seconds, a count) over the runs that have it."""

    count: int
    p50: float | None
    p90: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(len(values), percentile(values, 0.5), percentile(values, 0.9), max(values) if values else None)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class DrillStats:
    """How the cohort did on one drill."""

    drill: str
    runs: int
    learners: int
    detection_rate: float | None  # runs with the right diagnosis declared
    diagnosis_accuracy: float | None  # of the runs with any declaration, those right at the first try
    remediation_rate: float | None  # runs the learner remediated (not the drill's own revert)
    ttd: Spread
    ttm: Spread  # a bundle exported before TTM existed has none
    ttr: Spread
    mean_score: float | None
    decisions: dict[str, int] = field(default_factory=dict)  # first lever pulled (with its verdict) -> runs; "none"
    blast_radius: Spread = Spread(0, None, None, None)  # policy-violating decisions served before the mitigation
    ttd_values: tuple[float, ...] = field(repr=False, default=())
    ttr_values: tuple[float, ...] = field(repr=False, default=())


@dataclass(frozen=True)
class LearnerStats:
    """One learner's line on the leaderboard, with their medians against the cohort's."""

    rank: int
    learner: str
    runs: int
    detected: int
    remediated: int
    collateral: int
    mean_score: float | None
    median_ttd: float | None
    median_ttr: float | None
    labs_completed: int
    capstone: str  # passed | failed | running | -


@dataclass(frozen=True)
class Cohort:
    name: str
    bundles: int
    drills: tuple[DrillStats, ...]
    leaderboard: tuple[LearnerStats, ...]
    runs: tuple[Run, ...] = field(repr=False, default=())
    before_after: BeforeAfter | None = None  # the skill check's baselines and finals, when any learner took one
    weeks: tuple[Week, ...] = ()  # the course's weeks, oldest first
    teams: tuple[TeamStats, ...] = ()  # the teams that ran drills together
    team_before_after: BeforeAfter | None = None  # the teams' skill checks, when any team took one

    def drill(self, drill: str) -> DrillStats | None:
        return next((d for d in self.drills if d.drill == drill), None)


def drill_stats(drill: str, runs: Sequence[Run]) -> DrillStats:
    ttds = [r.ttd for r in runs if r.ttd is not None]
    ttrs = [r.ttr for r in runs if r.ttr is not None]
    ttms = [r.ttm for r in runs if r.ttm is not None]
    declared = [r for r in runs if r.detected or r.wrong_declarations]
    decisions: dict[str, int] = {}
    for r in runs:
        name = decision_label(r.decision, r.verdict)
        decisions[name] = decisions.get(name, 0) + 1
    first_try = sum(r.detected and r.wrong_declarations == 0 for r in declared)
    return DrillStats(
        drill,
        len(runs),
        len({r.learner for r in runs}),
        _share(len(ttds), len(runs)),
        _share(first_try, len(declared)),
        _share(len(ttrs), len(runs)),
        Spread.of(ttds),
        Spread.of(ttms),
        Spread.of(ttrs),
        fmean(r.score for r in runs) if runs else None,
        dict(sorted(decisions.items())),
        Spread.of([float(r.blast_radius) for r in runs if r.blast_radius is not None]),
        tuple(ttds),
        tuple(ttrs),
    )


def counted(bundle: Bundle) -> list[Run]:
    """The runs a learner could act on: injected, and ended (a run refused by its gate, or still going, is not)."""
    return [r for r in bundle.runs if r.injected_at is not None and r.finished]


def _capstone(bundle: Bundle) -> str:
    if not bundle.capstone:
        return "-"
    if not bundle.capstone.get("finished"):
        return "running"
    return "passed" if bundle.capstone.get("passed") else "failed"


def _learner(bundle: Bundle) -> LearnerStats:
    runs = counted(bundle)
    return LearnerStats(
        0,
        bundle.learner,
        len(runs),
        sum(r.detected for r in runs),
        sum(r.ttr is not None for r in runs),
        sum(len(r.collateral) for r in runs),
        fmean(r.score for r in runs) if runs else None,
        percentile([r.ttd for r in runs if r.ttd is not None], 0.5),
        percentile([r.ttr for r in runs if r.ttr is not None], 0.5),
        sum(lab.completed for lab in bundle.labs),
        _capstone(bundle),
    )


def latest_per_learner(bundles: Iterable[Bundle]) -> tuple[list[Bundle], list[str]]:
    """One bundle per learner, the latest export; and the learners who had more than one."""
    latest: dict[str, Bundle] = {}
    repeated = set()
    for b in bundles:
        if b.learner in latest:
            repeated.add(b.learner)
            if b.exported_at < latest[b.learner].exported_at:
                continue
        latest[b.learner] = b
    return list(latest.values()), sorted(repeated)


@dataclass(frozen=True)
class Week:
    """The cohort's drill runs injected in one ISO week, with their median and mean TTD and TTR (over the runs
    that have one) and the share remediated."""

    week: str  # 2026-W49
    runs: int
    median_ttd: float | None
    median_ttr: float | None
    mean_ttd: float | None
    mean_ttr: float | None
    remediated: float


def weeks(runs: Sequence[Run]) -> tuple[Week, ...]:
    by_week: dict[str, list[Run]] = {}
    for r in runs:
        if r.injected_at is not None:
            year, number, _ = datetime.fromtimestamp(r.injected_at, UTC).isocalendar()
            by_week.setdefault(f"{year}-W{number:02d}", []).append(r)
    found = []
    for name in sorted(by_week):
        held = by_week[name]
        ttds, ttrs = [r.ttd for r in held if r.ttd is not None], [r.ttr for r in held if r.ttr is not None]
        found.append(
            Week(
                name,
                len(held),
                percentile(ttds, 0.5),
                percentile(ttrs, 0.5),
                fmean(ttds) if ttds else None,
                fmean(ttrs) if ttrs else None,
                len(ttrs) / len(held),
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class TeamStats:
    """How a team did on its runs, and who in it detected, mitigated and fixed them (runs per member)."""

    team: str
    members: tuple[str, ...]
    roles: dict[str, str]
    runs: int
    detection_rate: float
    remediation_rate: float
    median_ttd: float | None
    median_ttr: float | None
    detected_by: dict[str, int]
    mitigated_by: dict[str, int]
    remediated_by: dict[str, int]


def _tally(names: Iterable[str | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in names:
        if n is not None:
            counts[n] = counts.get(n, 0) + 1
    return dict(sorted(counts.items()))


def teams(runs: Sequence[Run]) -> tuple[TeamStats, ...]:
    by_team: dict[str, list[Run]] = {}
    for r in runs:
        if r.team:
            by_team.setdefault(r.team, []).append(r)
    found = []
    for name in sorted(by_team):
        held = by_team[name]
        members = tuple(dict.fromkeys(m.learner for r in held for m in r.members))
        roles = {m.learner: m.role for r in held for m in r.members if m.role}
        ttds, ttrs = [r.ttd for r in held if r.ttd is not None], [r.ttr for r in held if r.ttr is not None]
        found.append(
            TeamStats(
                name,
                members,
                roles,
                len(held),
                len(ttds) / len(held),
                len(ttrs) / len(held),
                percentile(ttds, 0.5),
                percentile(ttrs, 0.5),
                _tally(r.detected_by for r in held),
                _tally(r.mitigated_by for r in held),
                _tally(r.remediated_by for r in held),
            )
        )
    return tuple(found)


def cohort(name: str, bundles: Sequence[Bundle]) -> Cohort:
    """Per drill figures and a leaderboard (by mean score, then more runs remediated) of one learner's bundle each.
    A team's run, in each member's bundle, counts once in the drills' figures."""
    runs, shared = [], set()
    for r in (r for b in bundles for r in counted(b)):
        if r.team and r.run_id in shared:
            continue  # a team's run, seen in another member's bundle
        shared |= {r.run_id} if r.team else set()
        runs.append(r)
    by_drill: dict[str, list[Run]] = {}
    for r in runs:
        by_drill.setdefault(r.drill, []).append(r)
    drills = tuple(drill_stats(d, by_drill[d]) for d in sorted(by_drill))
    learners = sorted(
        (_learner(b) for b in bundles),
        key=lambda s: (-(s.mean_score if s.mean_score is not None else -1.0), -s.remediated, s.learner),
    )
    board = tuple(replace(s, rank=i) for i, s in enumerate(learners, start=1))
    return Cohort(
        name, len(bundles), drills, board, tuple(runs), before_after(bundles), weeks(runs), teams(runs),
        team_before_after(bundles),
    )  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """One drill in two cohorts: rates and medians side by side (None where a cohort never ran it)."""

    drill: str
    a: DrillStats | None
    b: DrillStats | None


def compare(a: Cohort, b: Cohort) -> list[Comparison]:
    names = sorted({d.drill for d in a.drills} | {d.drill for d in b.drills})
    return [Comparison(n, a.drill(n), b.drill(n)) for n in names]
