"""Traffic commands: `lab pipeline status|releases|deploy|rollback|ship|labels resume` and `lab load`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lab_runtime.cli.common import JSON, app, backend, friendly, grid, journal, out, plain, print_json, settings
from lab_runtime.errors import LabError, RuntimeNotReady
from lab_runtime.events import LABELS_RESUME, LEARNER_ACTION, PIPELINE_DEPLOY, PIPELINE_ROLLBACK, LearnerAction
from lab_runtime.settings import Settings

if TYPE_CHECKING:
    from lab_runtime.pipeline.store import Deployment, ReleaseStore

pipeline_app = typer.Typer(
    help="The upstream pipeline that sends production traffic, and its releases.", no_args_is_help=True
)
app.add_typer(pipeline_app, name="pipeline")
labels_app = typer.Typer(help="The label feed: the delayed true labels the pipeline posts.", no_args_is_help=True)
pipeline_app.add_typer(labels_app, name="labels")

BY = "learner"  # who the journal says made a change from the CLI


def _store(current: Settings) -> ReleaseStore:
    from lab_runtime.pipeline.store import ReleaseStore

    current.ensure_dirs()
    return ReleaseStore(current.pipeline_db_path)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@pipeline_app.command("status")
@friendly
def status_cmd(as_json: bool = JSON) -> None:
    """The release the pipeline applies, its state, rates, counters, the label feed and the last error."""
    from lab_runtime.files.atomic import read_json as read_status
    from lab_runtime.pipeline.conditions import LABEL_FEED, LabelFeedStop, label_feed_status

    current = settings()
    backend(current).require("pipeline")
    body = read_status(current.pipeline_status_path)
    if body is None:
        raise RuntimeNotReady(f"the pipeline has written no status yet ({current.pipeline_status_path}); try again")
    with _store(current) as store:
        deployed = store.active()
        stop = store.conditions().get(LABEL_FEED)
    body["deployed"] = {"version": deployed.version, "at": deployed.ts, "by": deployed.by, "reason": deployed.reason}
    stored_feed = label_feed_status(
        LabelFeedStop.model_validate(stop.value) if stop else None, stop.set_at if stop else None
    )
    feed = body.setdefault("label_feed", stored_feed)  # a pipeline started before label feeds existed has none
    if as_json:
        print_json(body)
        return
    state = body["state"] + (f": {body['reason']}" if body.get("reason") else "")
    c = body["counters"]
    plain(f"release    {deployed.version} (deployed {_when(deployed.ts)} by {deployed.by}, {deployed.reason})")
    if deployed.version != body["release"]:
        plain(f"           the pipeline still applies {body['release']}; it switches within a second")
    plain(f"state      {state}")
    plain(f"rate       {body['actual_rate']:.1f} req/s over the last 10 s (target {body['target_rate']:g})")
    plain(f"requests   {c['sent']} sent, {c['ok']} ok, {c['rejected_4xx']} rejected (4xx), {c['failed_5xx']} failed "
           f"(5xx), {c['connection_errors']} connection errors, {c['skipped']} skipped")  # fmt: skip
    plain(f"labels     {c['labels_posted']} posted, {body['pending_labels']} pending, {c['labels_dropped']} dropped, "
           f"{c.get('labels_withheld', 0)} withheld")  # fmt: skip
    if feed["state"] == "stopped":
        plain(f"label feed stopped since {_when(feed['since'])}: {feed['reason']}; "
               "labels that come due are withheld; resume it with `lab pipeline labels resume`")  # fmt: skip
    else:
        plain("label feed running")
    if feed["state"] != stored_feed["state"]:
        plain(f"           the label feed is {stored_feed['state']} now; the pipeline follows within a second")
    error = body.get("last_error")
    if error:
        code = error["status"] if error["status"] is not None else "no answer"
        plain(f"last error {code} at {_when(error['at'])}: {error['body']}")
    else:
        plain("last error none")


@pipeline_app.command("releases")
@friendly
def releases_cmd(as_json: bool = JSON) -> None:
    """Every release: version, note, transforms, when it was created, and which one is active."""
    current = settings()
    with _store(current) as store:
        stored, active = store.releases(), store.active().version
    if as_json:
        print_json(
            [
                {
                    **s.release.model_dump(mode="json"),
                    "summary": s.release.summary(),
                    "created": s.created,
                    "active": s.release.version == active,
                }
                for s in stored
            ]
        )
        return
    table = grid("", "version", "note", "transforms", "created")
    for s in stored:
        mark = "[green]*[/]" if s.release.version == active else ""
        table.add_row(mark, s.release.version, s.release.note, s.release.summary(), _when(s.created))
    out.print(table)
    out.print("* active release")


def _acted(current: Settings, action: str, deployment: Deployment | None) -> None:
    """Journal a release the learner put in place as their action (timed from when the command began)."""
    if deployment is not None:
        payload = LearnerAction({"action": action, "version": deployment.version, "from": deployment.previous})
        journal(current).append(LEARNER_ACTION, payload)


def _changed(deployment: Deployment | None, version: str, done: Callable[[Deployment], str]) -> None:
    if deployment is None:
        plain(f"{version} is already the active release; nothing changed")
    else:
        plain(done(deployment))
        plain("the pipeline applies it within a second; watch it with `lab pipeline status`")


@pipeline_app.command("deploy")
@friendly
def deploy_cmd(version: str = typer.Argument(..., metavar="VERSION")) -> None:
    """Deploy an existing release (roll forward)."""
    from lab_runtime.pipeline.store import deploy

    current = settings()
    with _store(current) as store:
        deployment = deploy(store, journal(current), version, BY)
    _acted(current, PIPELINE_DEPLOY, deployment)
    _changed(deployment, version, lambda d: f"deployed {d.version} (was {d.previous})")


@pipeline_app.command("rollback")
@friendly
def rollback_cmd(
    to: str | None = typer.Option(None, "--to", metavar="VERSION", help="default: the previous release"),
) -> None:
    """Go back to the release deployed before the current one (or to --to VERSION)."""
    from lab_runtime.pipeline.store import rollback

    current = settings()
    with _store(current) as store:
        deployment = rollback(store, journal(current), to, BY)
    _acted(current, PIPELINE_ROLLBACK, deployment)
    _changed(deployment, str(to), lambda d: f"rolled back from {d.previous} to {d.version}")


@pipeline_app.command("ship")
@friendly
def ship_cmd(path: Path = typer.Argument(..., metavar="FILE", help="a release YAML file")) -> None:
    """Validate a release file and deploy it (for instructors and labs)."""
    from lab_runtime.pipeline.releases import load_release
    from lab_runtime.pipeline.store import ship

    release = load_release(path)
    current = settings()
    with _store(current) as store:
        deployment = ship(store, journal(current, source="instructor"), release, "instructor")
    _changed(deployment, release.version, lambda d: f"shipped {d.version} (was {d.previous}): {release.note}")


@labels_app.command("resume")
@friendly
def labels_resume_cmd() -> None:
    """Resume the label feed after an outage; labels withheld meanwhile stay lost."""
    from lab_runtime.pipeline.conditions import LABEL_FEED

    current = settings()
    with _store(current) as store:
        resumed = store.clear_condition(LABEL_FEED)
    if not resumed:
        plain("the label feed is running already; nothing changed")
        return
    journal(current).append(LEARNER_ACTION, LearnerAction(action=LABELS_RESUME))
    plain("resumed the label feed: labels that come due from now on are posted (the withheld ones are lost)")


@app.command()
@friendly
def load(
    users: int = typer.Option(10, "--users", "-u", help="concurrent simulated users (at least 1)"),
    spawn_rate: float = typer.Option(10.0, "--spawn-rate", "-r", help="users started per second"),
    duration: str = typer.Option("30s", "--duration", "-t", help="how long, e.g. 30s, 2m, 1h30m"),
    as_json: bool = JSON,
) -> None:
    """Load-test the model service with Locust (single-record /predict calls) and print throughput and latency."""
    from lab_runtime.load import load_seconds
    from lab_runtime.load.run import run_load

    seconds = load_seconds(duration)
    if users < 1:
        raise LabError(f"--users must be at least 1, not {users}")
    if not spawn_rate > 0:
        raise LabError(f"--spawn-rate must be more than 0 users per second, not {spawn_rate:g}")
    done = run_load(settings(), users, spawn_rate, seconds, say=(lambda line: None) if as_json else out.print)
    summary, prefix = done.summary, done.prefix
    result: dict[str, Any] = {
        "users": users,
        "spawn_rate": spawn_rate,
        "duration_s": seconds,
        "elapsed_s": done.elapsed,
        **asdict(summary),
        "csv": f"{prefix}_stats.csv",
    }
    if as_json:
        print_json(result)
        return
    table = grid("requests/s", "p50 ms", "p95 ms", "p99 ms", "requests", "failures")
    failures = f"[red]{summary.failures}[/]" if summary.failures else "0"
    table.add_row(
        f"{summary.rps:.1f}",
        f"{summary.p50_ms:.0f}",
        f"{summary.p95_ms:.0f}",
        f"{summary.p99_ms:.0f}",
        str(summary.requests),
        failures,
    )
    out.print(table)
    plain(f"Locust's CSV files: {prefix}_*.csv")
