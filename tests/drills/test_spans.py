"""How a drill dates a fix: the recent view a probe judges, and the spans of good probes with `fixed_by` (pure)."""

from __future__ import annotations

from drills.conditions import judge, parse_condition, recent_bad_key, recent_view
from drills.spans import FIX_MARGIN, Span, fix_evidence

ERRORS = "server_error_rate"


def test_a_fix_is_judged_on_the_recent_requests_not_the_monitors_window() -> None:
    observed = {ERRORS: 0.2, "recent.server_error_rate": 0.0, "recent.first": 100.0, "up.mlflow": 1.0}
    view = recent_view(observed)
    assert view[ERRORS] == 0.0 and judge((parse_condition("server_error_rate < 0.01"),), view).ok
    assert ERRORS not in recent_view({ERRORS: 0.2})  # too few recent requests: no value, not the window's
    failed = judge((parse_condition("server_error_rate < 0.01"), parse_condition("up.mlflow == 1")), {ERRORS: 0.3})
    assert failed.signals == frozenset({ERRORS, "up.mlflow"})


def test_traffic_back_dates_the_fix_before_its_first_clean_request_or_after_its_last_bad_one() -> None:
    observed = {"recent.first": 100.0}
    assert fix_evidence(ERRORS, observed, seen=105.0) == 100.0 + FIX_MARGIN
    assert fix_evidence(ERRORS, observed, seen=100.5) == 100.5  # never after the probe saw it
    allowed_one = {**observed, recent_bad_key(ERRORS): 102.0}  # a condition may allow a bad request or two
    assert fix_evidence(ERRORS, allowed_one, seen=105.0) == 102.0 + FIX_MARGIN
    assert recent_bad_key("latency_p99_ms") == recent_bad_key("latency_p50_ms") == "recent.last_bad.latency"
    assert fix_evidence("challenger", observed, seen=105.0) == 105.0  # an alias: when the probe saw it


def probe(span: Span, at: float, failed: set[str], **observed: float) -> bool:
    return span.step(not failed, at, at + 0.1, dict(observed), frozenset(failed))


def test_the_span_is_dated_by_the_last_condition_to_come_back() -> None:
    """A canary: its share to zero stops the errors at 5 s; the abort removes the challenger at 9 s."""
    span = Span(hold=3.0)
    assert not probe(span, 4.0, {ERRORS, "challenger"})
    assert not probe(span, 6.0, {ERRORS, "challenger"})  # the window still holds errors from before
    assert not probe(span, 8.0, {"challenger"}, **{"recent.first": 5.2})  # the errors are back within bounds
    assert not probe(span, 9.5, set())  # the abort seen
    assert span.fixed_by == 9.6 and span.start == 9.5  # the challenger, seen at 9.6: not the share's 6.2
    assert not probe(span, 11.0, set()) and probe(span, 12.5, set())
    assert span.payload() == {"span_start": 9.5, "seen_at": 9.6, "fixed_by": 9.6, "held": 3.0}
    assert span.payload(cleared_since=9.2)["fixed_by"] == 9.2  # every fault seen gone by then


def test_a_break_in_the_span_starts_it_again_dated_by_what_came_back_last() -> None:
    span = Span(hold=3.0)
    probe(span, 1.0, {ERRORS})
    probe(span, 2.0, set(), **{"recent.first": 1.5})
    assert span.fixed_by == 2.1  # min(seen, first + margin)
    probe(span, 3.0, {"latency_p99_ms"})  # a blip
    probe(span, 4.0, set(), **{"recent.first": 1.0, recent_bad_key("latency_p99_ms"): 3.2})
    assert (span.start, span.fixed_by) == (4.0, 4.1)
