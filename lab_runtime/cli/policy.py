"""`lab policy`: the output policy in force, as the model service applies it."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from lab_runtime.cli.common import JSON, app, friendly, out, print_json, settings
from lab_runtime.service.client import policy_in_force


@app.command("policy")
@friendly
def policy_cmd(as_json: bool = JSON) -> None:
    """The output policy in force: its decision thresholds and the decisions never to serve (yours, in
    .lab/policy.yaml, when it is valid; else the built-in one). Asked of the model service; when it does not
    answer, the one it would load."""
    from lab_runtime.files.watched import WatchedFile
    from lab_runtime.service.policy import BUILTIN, Policy, load_policy  # pandas, through the data's categories

    current = settings()
    body: dict[str, Any] | None = policy_in_force(current)
    answered = body is not None
    if body is None:
        watched = WatchedFile(current.policy_path, load_policy, BUILTIN)
        body = {"source": str(watched.source), "problem": watched.problem, **watched.value.model_dump()}
    if as_json:
        print_json({**body, "from_service": answered})
        return
    rules = Policy.model_validate({k: body[k] for k in ("decision", "never", "window") if k in body})
    which = "yours" if body["source"] == str(current.policy_path) else "built-in"
    said = "output policy in force" if answered else "the model service does not answer; the policy it would load"
    out.print(f"{said}: {escape(body['source'])} ({which})")
    if body["problem"]:
        out.print(f"[yellow]refused[/]: {escape(body['problem'])}")
    t = rules.decision
    out.print(
        f"decision: approve when the probability of default is under {t.approve_below:g}, decline from "
        f"{t.decline_from:g}, refer to a reviewer in between"
    )
    for rule in rules.never:
        when = " and ".join(f"{limit.feature} {limit.op} {limit.value}" for limit in rule.when)
        out.print(f"never {rule.decision} when {when} ({rule.id}): {escape(rule.why)}")
    band, tolerance = rules.window.approval_rate, rules.window.calibration_error
    if band is not None:
        out.print(f"over the monitor's window: approve between {band.min:.0%} and {band.max:.0%} of the decisions")
    if tolerance is not None:
        out.print(f"over the monitor's window: a calibration error of at most {tolerance:g} on labelled rows")
