"""Model commands: `lab model list|promote|rollback|history|retrain` and `lab canary ...` (the canary)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lab_runtime.cli.common import JSON, app, friendly, grid, journal, out, plain, print_json, seconds_option, settings
from lab_runtime.errors import LabError, NotFound
from lab_runtime.settings import Settings

if TYPE_CHECKING:
    from lab_runtime.canary.judge import VariantStats

model_app = typer.Typer(
    help="Model versions: list, promote (behind a validation gate), roll back, the alias history, retrain.",
    no_args_is_help=True,
)
canary_app = typer.Typer(
    help="The canary: @challenger gets a share of the traffic, judged live against @champion.", no_args_is_help=True
)
app.add_typer(model_app, name="model")
app.add_typer(canary_app, name="canary")

DEFAULT_MAX_DROP = 0.02  # two points: a retrain on a few thousand recent rows lands within about 1.5


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@model_app.command("list")
@friendly
def list_cmd(as_json: bool = JSON) -> None:
    """Every registered version: when it was made, its training metrics and the aliases it holds."""
    from lab_runtime.registry.rest import list_versions

    current = settings()
    rows = list_versions(current.mlflow_url, current.model_name)
    if as_json:
        print_json([asdict(row) for row in rows])
        return
    if not rows:
        plain(f"model {current.model_name!r} has no versions yet")
        return
    table = grid("version", "created", "aliases", "accuracy", "f1", "roc_auc", "description", title=current.model_name)
    for row in rows:
        m = row.metrics
        table.add_row(
            row.version,
            _when(row.created_at),
            " ".join(f"@{a}" for a in row.aliases),
            *(f"{m[k]:.4f}" if k in m else "-" for k in ("accuracy", "f1", "roc_auc")),
            row.description or "",
        )
    out.print(table)


@model_app.command("promote")
@friendly
def promote_cmd(
    version: str = typer.Argument(..., metavar="VERSION"),
    alias: str = typer.Option("champion", "--alias", help="the alias to point at VERSION"),
    force: bool = typer.Option(False, "--force", help="skip the validation gate (the journal records it)"),
    max_drop: float = typer.Option(
        DEFAULT_MAX_DROP, "--max-drop", help="the gate: how far below the champion's holdout accuracy VERSION may be"
    ),
    as_json: bool = JSON,
) -> None:
    """Point an alias (default @champion) at VERSION, once it is not worse than the champion on a holdout and no
    evaluation or review of it says no-go."""
    from lab_runtime.registry.model_ops import promote
    from lab_runtime.registry.promotion import refuse_a_no_go

    if not 0.0 <= max_drop <= 1.0:
        raise LabError(f"--max-drop is an accuracy difference between 0 and 1, not {max_drop:g}")
    current = settings()
    if not force:
        refuse_a_no_go(current, version)  # a version the path stopped does not slip past it

    def scoring(candidate: str, champion: str) -> None:
        if not as_json:
            plain(f"validation gate: scoring version {candidate} and the champion (version {champion}) on the holdout")

    with contextlib.redirect_stdout(sys.stderr):
        done = promote(current, journal(current), version, alias, force=force, max_drop=max_drop, on_gate=scoring)
    if as_json:
        print_json({"version": done.version, "alias": done.alias, "from": done.before, "changed": done.changed,
                    "forced": done.forced, "gate": done.gate})  # fmt: skip
        return
    for v, metrics in done.gate.items():
        plain(f"  version {v}: " + ", ".join(f"{k} {x:.4f}" for k, x in metrics.items()))
    if force:
        plain("validation gate skipped (--force); the journal records it")
    if not done.changed:
        plain(f"version {done.version} is @{alias} already; nothing changed")
    else:
        was = f" (was version {done.before})" if done.before else ""
        plain(f"@{alias} is now version {done.version}{was}; undo with `lab model rollback`")


@model_app.command("rollback")
@friendly
def rollback_cmd(
    to: str | None = typer.Option(None, "--to", metavar="VERSION", help="default: the previous @champion"),
    as_json: bool = JSON,
) -> None:
    """Move @champion back to the version that held it before (or to --to VERSION)."""
    from lab_runtime.registry.model_ops import rollback_champion

    current = settings()
    done = rollback_champion(current, journal(current), to)
    if as_json:
        print_json({"from": done.before, "to": done.after, "changed": done.changed})
    elif not done.changed:
        plain(f"version {done.after} is @champion already; nothing changed")
    else:
        plain(f"@champion rolled back from version {done.before} to {done.after}")
        plain("the service switches once it has loaded it; `lab status` shows what it serves")


@model_app.command("retrain")
@friendly
def retrain_cmd(
    window: str = typer.Option("5m", "--window", help="how far back to take labelled predictions, e.g. 5m, 1h"),
    min_rows: int = typer.Option(500, "--min-rows", help="refuse with fewer labelled predictions than this"),
    promote: bool = typer.Option(False, "--promote", help="make the new version @champion"),
    as_json: bool = JSON,
) -> None:
    """Train a new version on recent labelled traffic (80 %), evaluate it on the rest, register it."""
    from lab_runtime.modeling.model import retrain_recent
    from lab_runtime.registry.model_ops import adopt_retrained

    seconds = seconds_option(window, "--window")
    if min_rows < 1:
        raise LabError(f"--min-rows must be at least 1, not {min_rows}")
    current = settings()
    if not as_json:
        plain(f"training on the labelled predictions of the last {window} ...")
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints the run's URL: keep stdout for our output
        registered = retrain_recent(current, seconds, min_rows)
    promoted = adopt_retrained(current, journal(current), registered.version, promote=promote)
    if as_json:
        print_json(
            {
                "version": registered.version,
                "run_id": registered.run_id,
                "metrics": registered.metrics,
                "train_rows": registered.train_rows,
                "test_rows": registered.test_rows,
                "promoted": promoted,
            }
        )
        return
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in registered.metrics.items())
    plain(f"registered version {registered.version} (trained on {registered.train_rows} rows, "
           f"evaluated on {registered.test_rows}): {metrics}")  # fmt: skip
    if promoted:
        plain(f"version {registered.version} is now @champion; undo with `lab model rollback`")


@model_app.command("stage")
@friendly
def stage_cmd(version: str = typer.Argument(..., metavar="VERSION"), as_json: bool = JSON) -> None:
    """Point @staging at VERSION: the first stage of the path to production (evaluate, shadow, canary)."""
    from lab_runtime.registry.promotion import stage

    current = settings()
    version, before = stage(current, journal(current), version)
    if as_json:
        print_json({"staging": version, "from": before, "changed": before != version})
    elif before == version:
        plain(f"version {version} is @staging already; nothing changed")
    else:
        was = f" (was version {before})" if before else ""
        plain(f"@staging is now version {version}{was}; next: `lab eval run {version}`, `lab shadow start {version}`")


def _version_path(version: str, as_json: bool) -> None:
    from lab_runtime.events import ALIAS_CHANGED, LEARNER_ACTION
    from lab_runtime.registry.model_ops import resolve_version
    from lab_runtime.registry.path import version_path

    current = settings()
    version = resolve_version(current, version)
    steps = version_path(journal(current).events([ALIAS_CHANGED, LEARNER_ACTION]), version, current.model_name)
    if as_json:
        print_json([asdict(s) for s in steps])
        return
    if not steps:
        plain(f"version {version} has not moved along the path yet (`lab model stage {version}` starts it)")
        return
    table = grid("time", "stage", "what", "by", title=f"the path of version {version}")
    for s in steps:
        table.add_row(_when(s.ts), s.stage, s.what, s.learner or "-")
    out.print(table)


@model_app.command("history")
@friendly
def history_cmd(
    alias: str | None = typer.Option(None, "--alias", help="only this alias, e.g. champion"),
    version: str | None = typer.Option(
        None, "--version", metavar="VERSION", help="the path this version took: staging, evaluation, shadow, canary"
    ),
    as_json: bool = JSON,
) -> None:
    """Every alias change, oldest first: when, before and after, and how it was made (or one version's path)."""
    from lab_runtime.events import ALIAS_CHANGED
    from lab_runtime.registry.alias_history import history

    if version is not None:
        if alias is not None:
            raise LabError("--alias and --version show different histories; give one of them")
        _version_path(version, as_json)
        return
    current = settings()
    changes = journal(current).events([ALIAS_CHANGED])
    entries = history(changes, model=current.model_name, alias=alias)
    if alias is not None and not entries:
        seen = sorted({e.alias for e in history(changes, model=current.model_name)})
        listing = ", ".join(f"@{a}" for a in seen) or "none yet"
        raise NotFound(f"no change of @{alias} in the history of {current.model_name!r}; aliases recorded: {listing}")
    if as_json:
        print_json([asdict(e) for e in entries])
        return
    if not entries:
        which = f"@{alias} of " if alias else ""
        plain(f"no alias change of {which}{current.model_name!r} recorded yet")
        return
    table = grid("time", "alias", "before", "after", "how", "by", title=f"alias history of {current.model_name}")
    for e in entries:
        table.add_row(_when(e.ts), f"@{e.alias}", e.before or "-", e.after or "(removed)", e.via, e.learner or "-")
    out.print(table)


@canary_app.command("start")
@friendly
def canary_start_cmd(
    version: str = typer.Argument(..., metavar="VERSION"),
    weight: float = typer.Option(0.1, "--weight", help="the share of traffic the canary gets, above 0 and at most 1"),
    force: bool = typer.Option(False, "--force", help="skip the evaluation gate (the journal records it)"),
    as_json: bool = JSON,
) -> None:
    """Serve VERSION as @challenger to a share of the traffic, beside @champion, once its evaluation says go."""
    from lab_runtime.registry.model_ops import start_canary
    from lab_runtime.registry.promotion import require_evaluation

    current = settings()
    gate = None if force else partial(require_evaluation, current, require_review=_lab_requires_review(current))
    version = start_canary(current, journal(current), version, weight, gate=gate, forced=force)
    if as_json:
        print_json({"challenger": version, "weight": weight, "forced": force})
        return
    if force:
        plain("evaluation gate skipped (--force); the journal records it")
    plain(f"canary started: version {version} is @challenger with {weight:.0%} of the traffic")
    plain("watch it against the champion with `lab canary status`; end it with `lab canary promote` or `abort`")


@canary_app.command("set")
@friendly
def canary_set_cmd(
    weight: float = typer.Argument(..., metavar="WEIGHT", help="a share between 0 and 1"), as_json: bool = JSON
) -> None:
    """Change the canary's share of the traffic."""
    from lab_runtime.registry.model_ops import set_canary

    current = settings()
    before = set_canary(current, journal(current), weight)
    if as_json:
        print_json({"from": before, "to": weight})
        return
    plain(f"canary share {before:.0%} -> {weight:.0%}; the service applies it within a second")


def _lab_requires_review(current: Settings) -> bool:
    """Whether the current lab asks for a human review before a canary (no lab started: no)."""
    from lab_runtime.labs.session import current_lab

    try:
        lab, _ = current_lab(current)
    except LabError:
        return False
    return lab.require_review


@canary_app.command("promote")
@friendly
def canary_promote_cmd(
    force: bool = typer.Option(False, "--force", help="skip the canary analysis gate (the journal records it)"),
    as_json: bool = JSON,
) -> None:
    """The challenger becomes @champion and the canary ends, once the live canary analysis passes."""
    from lab_runtime.registry.model_ops import promote_canary
    from lab_runtime.registry.promotion import require_canary_analysis

    current = settings()
    gate = None if force else partial(require_canary_analysis, current)
    version, before = promote_canary(current, journal(current), gate=gate, forced=force)
    if as_json:
        print_json({"champion": version, "from": before, "forced": force})
        return
    if force:
        plain("canary analysis gate skipped (--force); the journal records it")
    was = f" (was version {before})" if before else ""
    plain(f"canary promoted: version {version} is @champion{was}; undo with `lab model rollback`")


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _stats_row(stats: VariantStats, share: float) -> list[str]:
    return [
        stats.variant,
        stats.version or "-",
        f"{share:.0%}",
        str(stats.requests),
        _fmt(stats.error_rate, ".1%"),
        _fmt(stats.latency_p50_ms, ".1f", " ms"),
        _fmt(stats.latency_p99_ms, ".1f", " ms"),
        str(stats.labelled),
        _fmt(stats.accuracy, ".3f"),
    ]


@canary_app.command("status")
@friendly
def canary_status_cmd(
    window: str = typer.Option("60s", "--window", help="how far back to measure traffic, e.g. 30s, 2m"),
    quality_window: str = typer.Option("2m", "--quality-window", help="how far back to judge quality on labels"),
    min_labels: int = typer.Option(30, "--min-labels", help="labelled rows a variant needs before accuracy shows"),
    as_json: bool = JSON,
) -> None:
    """Champion and challenger side by side, live: calls, error rate, p50/p99 latency, accuracy on labelled rows."""
    from lab_runtime.canary.analysis import measure

    seconds = seconds_option(window, "--window")
    quality = seconds_option(quality_window, "--quality-window")
    if seconds <= 0 or quality <= 0:
        raise LabError("--window and --quality-window must be longer than 0s")
    if min_labels < 1:
        raise LabError(f"--min-labels must be at least 1, not {min_labels}")
    report = measure(settings(), seconds, quality, min_labels)
    if as_json:
        print_json(report.as_dict())
        return
    table = grid("variant", "version", "share", "calls", "errors", "p50", "p99", "labelled", "accuracy",
                  title=f"canary over the last {window} (quality over {quality_window})")  # fmt: skip
    table.add_row(*_stats_row(report.champion, 1.0 - report.weight))
    if report.challenger is None:
        out.print(table)
        plain("no canary: there is no @challenger (`lab canary start VERSION` starts one)")
        return
    table.add_row(*_stats_row(report.challenger, report.weight))
    out.print(table)
    plain(_verdict(report.as_dict()))


def _verdict(report: dict[str, Any]) -> str:
    """One line comparing the challenger with the champion."""
    champ, chall = report["champion"], report["challenger"]
    parts = []
    if chall["error_rate"] is not None and champ["error_rate"] is not None:
        parts.append(f"error rate {chall['error_rate']:.1%} vs {champ['error_rate']:.1%}")
    if chall["latency_p99_ms"] is not None and champ["latency_p99_ms"] is not None:
        parts.append(f"p99 {chall['latency_p99_ms']:.0f} ms vs {champ['latency_p99_ms']:.0f} ms")
    if report["accuracy_drop"] is not None:
        parts.append(f"accuracy {chall['accuracy']:.3f} vs {champ['accuracy']:.3f}")
    else:
        parts.append("accuracy: too few labelled rows yet")
    return "challenger vs champion: " + "; ".join(parts)


@canary_app.command("analyze")
@friendly
def canary_analyze_cmd(
    file: Path = typer.Argument(..., metavar="FILE", help="the analysis: interval, steps, thresholds"),
) -> None:
    """Automated canary analysis: step the share up while the challenger is healthy, abort or promote it."""
    from lab_runtime.canary.analysis import load_spec, run_analysis

    spec = load_spec(file)
    current = settings()
    decision = run_analysis(current, journal(current, dated=False), spec, plain)  # it acts later, on its own
    if decision.action == "abort":
        plain("canary aborted: the challenger failed the analysis; it gets no traffic now")
        raise typer.Exit(1)
    plain("canary promoted: the challenger passed every step and is @champion now")


@canary_app.command("abort")
@friendly
def abort_cmd(as_json: bool = JSON) -> None:
    """Stop the canary: no traffic to @challenger, and the alias removed."""
    from lab_runtime.registry.model_ops import abort_canary

    current = settings()
    version = abort_canary(current, journal(current))
    if as_json:
        print_json({"aborted": version})
    else:
        plain(f"canary aborted: version {version} is no longer @challenger and gets no traffic")
