"""Model commands: `lab model rollback|retrain` and `lab canary abort` (registry aliases, retraining)."""

from __future__ import annotations

import contextlib
import sys

import typer

from lab_runtime.cli.common import JSON, app, friendly, journal, plain, print_json, seconds_option, settings
from lab_runtime.errors import LabError

model_app = typer.Typer(help="Model versions: roll the champion back, retrain on recent traffic.", no_args_is_help=True)
canary_app = typer.Typer(help="The canary: a share of traffic for @challenger.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(canary_app, name="canary")

RETRAIN = "model.retrain"


@model_app.command("rollback")
@friendly
def rollback_cmd(
    to: str | None = typer.Option(None, "--to", metavar="VERSION", help="default: the previous @champion"),
    as_json: bool = JSON,
) -> None:
    """Move @champion back to the version that held it before (or to --to VERSION)."""
    from lab_runtime.model_ops import rollback_champion

    current = settings()
    done = rollback_champion(current, journal(current), to)
    if as_json:
        print_json({"from": done.before, "to": done.after, "changed": done.changed})
    elif not done.changed:
        plain(f"version {done.after} is @champion already; nothing changed")
    else:
        plain(f"@champion rolled back from version {done.before} to {done.after}")
        plain("the service switches once it has loaded it; watch `lab status`")


@model_app.command("retrain")
@friendly
def retrain_cmd(
    window: str = typer.Option("5m", "--window", help="how far back to take labelled predictions, e.g. 5m, 1h"),
    min_rows: int = typer.Option(500, "--min-rows", help="refuse with fewer labelled predictions than this"),
    promote: bool = typer.Option(False, "--promote", help="make the new version @champion"),
    as_json: bool = JSON,
) -> None:
    """Train a new version on recent labelled traffic (80 %), evaluate it on the rest, register it."""
    from lab_runtime import model_ops
    from lab_runtime.journal import LEARNER_ACTION
    from lab_runtime.modeling import retrain_recent
    from lab_runtime.registry import CHAMPION

    seconds = seconds_option(window, "--window")
    if min_rows < 1:
        raise LabError(f"--min-rows must be at least 1, not {min_rows}")
    current = settings()
    if not as_json:
        plain(f"training on the labelled predictions of the last {window} ...")
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints the run's URL: keep stdout for our output
        registered = retrain_recent(current, seconds, min_rows)
    promoted = False
    try:
        if promote:
            model_ops.set_alias(current, CHAMPION, registered.version)
            promoted = True
    finally:  # the version exists either way; the journal says whether it became champion
        journal(current).append(
            LEARNER_ACTION, {"action": RETRAIN, "version": registered.version, "promoted": promoted}
        )
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


@canary_app.command("abort")
@friendly
def abort_cmd(as_json: bool = JSON) -> None:
    """Stop the canary: no traffic to @challenger, and the alias removed."""
    from lab_runtime.model_ops import abort_canary

    current = settings()
    version = abort_canary(current, journal(current))
    if as_json:
        print_json({"aborted": version})
    else:
        plain(f"canary aborted: version {version} is no longer @challenger and gets no traffic")
