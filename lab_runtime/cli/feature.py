"""`lab feature status|disable|enable|throttle`: the model switch, a flagd feature flag the service follows."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from lab_runtime.cli.common import JSON, app, friendly, journal, out, print_json, settings
from lab_runtime.events import FEATURE_DISABLE, FEATURE_ENABLE, FEATURE_THROTTLE, LEARNER_ACTION, LearnerAction
from lab_runtime.files.watched import WatchedFile
from lab_runtime.service.client import served_model
from lab_runtime.service.switch import BUILTIN_FLAGS, Switch, read_switch, throttled, write_switch
from lab_runtime.settings import Settings

feature_app = typer.Typer(help="The model switch: let the model decide all, none or a share of requests.")
app.add_typer(feature_app, name="feature")


def _in_file(current: Settings) -> WatchedFile[Switch]:
    return WatchedFile(current.flags_path, read_switch, BUILTIN_FLAGS)


def _in_force(current: Settings) -> tuple[dict[str, Any], bool]:
    """The switch the service applies (and True), or, when it does not answer, the one its file sets (and False)."""
    served = served_model(current)
    if served is not None and "switch" in served:
        return dict(served["switch"]), True
    watched = _in_file(current)
    sw = watched.value
    return {"mode": sw.mode, "share": sw.share, "source": str(watched.source), "problem": watched.problem}, False


def _set(current: Settings, switch: Switch, action: str, as_json: bool) -> None:
    current.ensure_dirs()
    shown, _ = _in_force(current)
    before = Switch(mode=shown["mode"], share=shown["share"])
    write_switch(current.flags_path, switch)
    action = {"on": FEATURE_ENABLE, "off": FEATURE_DISABLE}.get(switch.mode, action)  # a throttle to 1 or 0 is one
    journal(current).append(LEARNER_ACTION, LearnerAction({"action": action, "from": before.share, "to": switch.share}))
    if as_json:
        print_json({"mode": switch.mode, "share": switch.share, "from": before.share, "file": str(current.flags_path)})
        return
    out.print(
        f"model switch {switch.describe()} (was {before.describe().split(':')[0]}); the service follows within a second"
    )


@feature_app.command("status")
@friendly
def status_cmd(as_json: bool = JSON) -> None:
    """The model switch in force, as the model service applies it (or, when it does not answer, its file)."""
    current = settings()
    body, answered = _in_force(current)
    if as_json:
        print_json({**body, "from_service": answered})
        return
    switch = Switch(mode=body["mode"], share=body["share"])
    said = "" if answered else " (the model service does not answer: its flag file says)"
    out.print(f"model switch {switch.describe()}{said}; flag file {escape(body['source'])}")
    if body["problem"]:
        out.print(f"[yellow]{escape(body['problem'])}[/]")


@feature_app.command("disable")
@friendly
def disable_cmd(as_json: bool = JSON) -> None:
    """The kill switch: the model decides nothing; the output policy's fallback rules decide every request."""
    _set(settings(), throttled(0.0), FEATURE_DISABLE, as_json)


@feature_app.command("enable")
@friendly
def enable_cmd(as_json: bool = JSON) -> None:
    """The model decides every request again."""
    _set(settings(), throttled(1.0), FEATURE_ENABLE, as_json)


@feature_app.command("throttle")
@friendly
def throttle_cmd(
    share: float = typer.Argument(..., help="the share of requests the model decides, from 0 to 1 (e.g. 0.25)"),
    as_json: bool = JSON,
) -> None:
    """Only SHARE of the requests reach the model (the same requests each time); the fallback decides the rest."""
    _set(settings(), throttled(share), FEATURE_THROTTLE, as_json)
