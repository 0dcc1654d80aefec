"""How a drill dates a fix: the recent view a probe judges, and the spans of good probes with `fixed_by` (pure)."""

from __future__ import annotations

from drills.conditions import judge, parse_condition, recent_bad_key, recent_view
from drills.spans import CHANCE, FIX_MARGIN, OUTPUT_CHANCE, OUTPUT_FIX_MARGIN, Span, fix_evidence

ERRORS = "server_error_rate"


def test_a_fix_is_judged_on_the_recent_requests_not_the_monitors_window() -> None:
    observed = {ERRORS: 0.2, "recent.server_error_rate": 0.0, "recent.first": 100.0, "up.mlflow": 1.0}
    view = recent_view(observed)
    assert view[ERRORS] == 0.0 and judge((parse_condition("server_error_rate < 0.01"),), view).ok
    assert ERRORS not in recent_view({ERRORS: 0.2})  # too few recent requests: no value, not the window's
    failed = judge((parse_condition("server_error_rate < 0.01"), parse_condition("up.mlflow == 1")), {ERRORS: 0.3})
    assert failed.signals == frozenset({ERRORS, "up.mlflow"})


def test_traffic_back_dates_the_fix_by_the_last_bad_request_and_how_often_they_came() -> None:
    observed = {"recent.first": 100.0}
    assert fix_evidence(ERRORS, observed, seen=105.0) == 100.0 + FIX_MARGIN  # nothing known: the first request
    assert fix_evidence(ERRORS, observed, seen=100.5) == 100.5  # never after the probe saw it
    # 10 errors a second until 101.0: had the fault acted past 101.3, three more would have come.
    assert fix_evidence(ERRORS, observed, seen=105.0, bad_before=(101.0, 10.0)) == 101.0 + CHANCE / 10
    assert fix_evidence(ERRORS, observed, seen=105.0, bad_before=(101.0, 1.0)) == 101.0 + FIX_MARGIN  # at most
    allowed = {**observed, recent_bad_key(ERRORS): 102.0, recent_bad_key(ERRORS, "rate"): 0.2}  # one allowed
    assert fix_evidence(ERRORS, allowed, seen=105.0, bad_before=(101.0, 10.0)) == 102.0 + CHANCE / 10
    assert recent_bad_key("latency_p99_ms") == recent_bad_key("latency_p50_ms") == "recent.bad_last.latency"
    assert fix_evidence("challenger", observed, seen=105.0) == 105.0  # an alias: when the probe saw it


def test_unsafe_decisions_are_sparse_so_their_gap_dates_the_fix_more_widely() -> None:
    observed = {"recent.first": 100.0}
    # 1.2 unsafe decisions a second until 101.0: a gap of 2 s is common, so the fix may have begun until 105.2
    unsafe = "unsafe_output_rate"
    assert fix_evidence(unsafe, observed, seen=110.0, bad_before=(101.0, 1.2)) == 101.0 + OUTPUT_CHANCE / 1.2
    assert fix_evidence(unsafe, observed, seen=120.0, bad_before=(101.0, 0.1)) == 101.0 + OUTPUT_FIX_MARGIN
    assert fix_evidence(ERRORS, observed, seen=110.0, bad_before=(101.0, 1.2)) == 101.0 + FIX_MARGIN


def probe(span: Span, at: float, failed: set[str], **observed: float) -> bool:
    return span.step(not failed, at, at + 0.1, dict(observed), frozenset(failed))


def test_the_span_is_dated_by_the_last_condition_to_come_back() -> None:
    """A canary: its share to zero stops the errors at 5 s; the abort removes the challenger at 9 s."""
    span = Span(hold=3.0)
    bad = {recent_bad_key(ERRORS): 4.9, recent_bad_key(ERRORS, "rate"): 10.0}
    assert not probe(span, 4.0, {ERRORS, "challenger"}, **bad)
    assert not probe(span, 6.0, {ERRORS, "challenger"}, **bad)  # the window still holds errors from before
    assert not probe(span, 10.5, {"challenger"}, **{"recent.first": 5.6})  # the errors are back within bounds
    assert span._back[ERRORS] == 4.9 + 0.3  # dated by the last error and how often they came
    assert not probe(span, 11.0, set())  # the abort seen
    assert span.fixed_by == 11.1 and span.start == 11.0  # the challenger, seen at 11.1: not the share
    assert not probe(span, 12.5, set()) and probe(span, 14.0, set())
    assert span.payload() == {"span_start": 11.0, "seen_at": 11.1, "fixed_by": 11.1, "held": 3.0}
    assert span.payload(cleared_since=10.8)["fixed_by"] == 10.8  # every fault seen gone by then


def test_a_move_right_after_the_errors_stopped_is_not_what_stopped_them() -> None:
    span = Span(hold=3.0)
    bad = {recent_bad_key(ERRORS): 8.65, recent_bad_key(ERRORS, "rate"): 8.0}
    probe(span, 8.5, {ERRORS}, **bad)
    probe(span, 13.8, set(), **{"recent.first": 8.8})
    assert span.fixed_by == 8.65 + CHANCE / 8.0  # 9.025: a move begun at 9.24 is after it


def test_a_break_in_the_span_starts_it_again_dated_by_what_came_back_last() -> None:
    span = Span(hold=3.0)
    probe(span, 1.0, {ERRORS})
    probe(span, 2.0, set(), **{"recent.first": 1.5})
    assert span.fixed_by == 2.0  # no request to judge at 1.0 s: the fault may have acted until then, and a margin
    probe(span, 3.0, {"latency_p99_ms"}, **{recent_bad_key("latency_p99_ms"): 2.9})  # a blip
    probe(span, 4.0, set(), **{"recent.first": 1.0})
    assert (span.start, span.fixed_by) == (4.0, 3.9)


def test_a_stretch_with_too_few_requests_to_judge_does_not_date_the_fix_by_a_bad_request_before_it() -> None:
    span = Span(hold=3.0)
    slow = {recent_bad_key("latency_p99_ms"): 8.9, recent_bad_key("latency_p99_ms", "rate"): 5.0}
    probe(span, 9.0, {"latency_p99_ms"}, **slow)
    for at in (12.0, 20.0, 28.0):  # the service too slow to answer enough requests: no recent value
        probe(span, at, {"latency_p99_ms"})
    probe(span, 36.0, set(), **{"recent.first": 31.0})
    assert span.fixed_by == 28.0 + FIX_MARGIN  # not 8.9 and a fraction: the fix at 29 s may be the learner's
