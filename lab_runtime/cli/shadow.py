"""`lab shadow start|status|stop`: production requests mirrored to `@staging`, off the hot path."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import typer

from lab_runtime.cli.common import JSON, app, friendly, grid, journal, out, plain, print_json, seconds_option, settings
from lab_runtime.errors import LabError

if TYPE_CHECKING:
    from lab_runtime.shadow.analysis import ShadowReport
    from lab_runtime.shadow.judge import ShadowStats

shadow_app = typer.Typer(
    help="Shadow traffic: a share of production requests mirrored to @staging; the caller never sees its answer.",
    no_args_is_help=True,
)
app.add_typer(shadow_app, name="shadow")


@shadow_app.command("start")
@friendly
def start_cmd(
    version: str = typer.Argument(..., metavar="VERSION", help="the version @staging names"),
    share: float = typer.Option(0.5, "--share", help="the share of requests mirrored, above 0 and at most 1"),
    as_json: bool = JSON,
) -> None:
    """Mirror a share of the champion's requests to VERSION (@staging); its answers are logged, never served."""
    from lab_runtime.registry.model_ops import start_shadow

    current = settings()
    version, before = start_shadow(current, journal(current), version, share)
    if as_json:
        print_json({"staging": version, "share": share, "from": before})
        return
    was = f" (was {before:.0%})" if before else ""
    plain(f"shadow started: {share:.0%} of the champion's requests are mirrored to version {version}{was}")
    plain("callers never see its answers; compare it with the champion with `lab shadow status`, end it with `stop`")


@shadow_app.command("stop")
@friendly
def stop_cmd(as_json: bool = JSON) -> None:
    """Stop mirroring requests to @staging (its share goes to 0; the alias stays); the journal keeps the verdict the
    whole run earned."""
    from lab_runtime.registry.model_ops import stop_shadow
    from lab_runtime.shadow.analysis import run_so_far

    current = settings()
    log = journal(current)
    verdict: tuple[str, list[str]] = ("", [])

    def judged() -> tuple[str, list[str]]:
        nonlocal verdict
        report = run_so_far(current, log)
        verdict = (report.verdict, report.reasons)
        return verdict

    version, before = stop_shadow(current, log, judged)
    if as_json:
        print_json({"staging": version, "from": before, "share": 0.0, "verdict": verdict[0], "reasons": verdict[1]})
        return
    which = f"version {version}" if version else "@staging"
    plain(f"shadow stopped: {which} no longer gets the champion's requests (it had {before:.0%} of them)")
    plain(f"the run's verdict: {verdict[0]}" + (f": {'; '.join(verdict[1])}" if verdict[1] else ""))


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _vs(ours: float | None, theirs: float | None, spec: str, unit: str = "") -> str:
    """`shadow / champion`, each `-` when unknown."""
    return f"{_fmt(ours, spec, unit)} / {_fmt(theirs, spec, unit)}"


def _row(stats: ShadowStats) -> list[str]:
    return [
        f"{datetime.fromtimestamp(stats.start):%H:%M:%S}-{datetime.fromtimestamp(stats.end):%H:%M:%S}",
        str(stats.mirrored),
        str(stats.compared),
        _fmt(stats.decision_agreement, ".1%"),
        _fmt(stats.class_agreement, ".1%"),
        _vs(stats.latency_p50_ms, stats.champion_latency_p50_ms, ".1f"),
        _vs(stats.latency_p99_ms, stats.champion_latency_p99_ms, ".1f"),
        f"{stats.errors} ({_fmt(stats.error_rate, '.1%')})",
        str(stats.dropped),
        f"{stats.violations} / {stats.champion_violations}",
        f"{_vs(stats.accuracy, stats.champion_accuracy, '.3f')} ({stats.labelled})",
    ]


def _verdict(report: ShadowReport, window: str) -> str:
    """One line: the verdict over every window, its figures, and why when it is not a go."""
    total = report.total
    span = f"the last {len(report.windows)} x {window}"
    head = f"verdict on version {report.staging or '-'} over {span}: {report.verdict}"
    figures = [f"{total.compared} compared", f"agreement {_fmt(total.decision_agreement, '.1%')}"]
    figures += [f"p99 {_fmt(total.latency_p99_ms, '.1f', ' ms')}", f"{total.errors} errors", f"{total.dropped} dropped"]
    why = f"; {'; '.join(report.reasons)}" if report.reasons else ""
    return f"{head} ({', '.join(figures)}){why}"


@shadow_app.command("status")
@friendly
def status_cmd(
    window: str = typer.Option("60s", "--window", help="the length of one window, e.g. 30s, 2m"),
    count: int = typer.Option(3, "--windows", help="how many windows, newest first"),
    min_labels: int = typer.Option(30, "--min-labels", help="labelled records a window needs before accuracy shows"),
    as_json: bool = JSON,
) -> None:
    """The shadow against the champion on the same requests, per window: agreement, latency p50/p99, errors, drops,
    policy violations, accuracy on labelled requests; and a verdict."""
    from lab_runtime.shadow.analysis import measure

    seconds = seconds_option(window, "--window")
    if seconds <= 0:
        raise LabError("--window must be longer than 0s")
    if not 1 <= count <= 100:
        raise LabError(f"--windows is a count from 1 to 100, not {count}")
    if min_labels < 1:
        raise LabError(f"--min-labels must be at least 1, not {min_labels}")
    report = measure(settings(), seconds, count, min_labels)
    if as_json:
        print_json(report.as_dict())
        return
    who = f"version {report.staging} (@staging)" if report.staging else "no @staging"
    table = grid("window", "mirrored", "compared", "same decision", "same class", "p50 ms shadow / champion",
                 "p99 ms shadow / champion", "errors", "dropped", "violations shadow / champion",
                 "accuracy shadow / champion (labelled)",
                 title=f"shadow of {who} at {report.share:.0%}, windows of {window}, newest first")  # fmt: skip
    for stats in report.windows:
        table.add_row(*_row(stats))
    out.print(table)
    if report.staging and report.share == 0:
        plain(f"no shadow runs now: `lab shadow start {report.staging} --share 0.5` starts one")
    plain(_verdict(report, window))
