"""Monitoring commands: `lab monitor status|report|rules|add-rules`, `lab alerts`, `lab declare`."""

from __future__ import annotations

import json
import shutil
import time
import webbrowser
from pathlib import Path

import typer

from lab_runtime.cli.common import JSON, app, friendly, grid, journal, out, print_json, settings
from lab_runtime.events import (
    ALERT_FIRING,
    ALERT_RESOLVED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
    MONITOR_ADD_RULES,
    MONITOR_REPORT,
    LearnerAction,
    LearnerDeclared,
)
from lab_runtime.monitor.client import fetch_status, render_report

monitor_app = typer.Typer(help="The drift and quality monitor, its reports and its alert rules.")
app.add_typer(monitor_app, name="monitor")


def _ago(ts: float | None) -> str:
    return "-" if ts is None else f"{time.time() - ts:.0f}s ago"


def _at(ts: float | None) -> str:
    """When, in UTC and how long ago: what the drift report's own time can be matched against."""
    return "-" if ts is None else f"{time.strftime('%H:%M:%S', time.gmtime(ts))} UTC, {_ago(ts)}"


@monitor_app.command("status")
@friendly
def status_cmd(as_json: bool = JSON) -> None:
    """The latest evaluation: verdict, per-feature drift, traffic and quality signals, active alerts."""
    body = fetch_status(settings())
    if as_json:
        print_json(body)
        return
    colour = {"ok": "green", "drift": "red"}.get(body["state"], "yellow")
    out.print(f"[{colour}]{body['state']}[/]: {body['message']} (evaluated {_at(body.get('evaluated_at'))})")
    drift = body.get("drift")
    if drift:
        signals = body.get("signals", {})
        columns = ("feature", "test", "p-value", "drifted", "change score", "null", "new categories")
        table = grid(*columns, title="Drift per feature")
        for f in drift["features"]:
            p = "-" if f["p_value"] is None else f"{f['p_value']:.3g}"
            new = "-" if f["new_category_share"] is None else f"{f['new_category_share']:.1%}"
            mark = "[red]yes[/]" if f["drifted"] else "no"
            score = signals.get(f"change_score.{f['name']}")
            change = "-" if score is None else (f"[red]{score:.2f}[/]" if score >= 1 else f"{score:.2f}")
            table.add_row(f["name"], f["test"], p, mark, change, f"{f['missing_share']:.1%}", new)
        out.print(table)
        out.print(
            f"family alpha {drift['alpha']:g} over {drift['tested']} tests: a feature drifts when p < "
            f"{drift['threshold']:.3g} (Bonferroni); it has changed when its change score (a CUSUM chart over every "
            f"row since the monitor started) reaches 1: {body.get('details', {}).get('changed_features', 'none')}"
        )
    signals = body.get("signals", {})
    table = grid("signal", "value", title="Signals")
    for name, value in signals.items():
        if "." not in name:
            table.add_row(name, f"{value:.4g}")
    out.print(table)
    for alert in body.get("alerts", []):
        out.print(f"[bold red]{alert['state']}[/] {alert['rule']} ({alert['severity']}): {alert['summary']}")
    for problem in body.get("rule_errors", []):
        out.print(f"[yellow]rule file refused[/]: {problem}")


@monitor_app.command("report")
@friendly
def report_cmd(
    open_it: bool = typer.Option(False, "--open", help="open the HTML report in a browser"), as_json: bool = JSON
) -> None:
    """Render the Evidently drift report of the monitor's latest judged window (a few seconds); where it is."""
    current = settings()
    with out.status("rendering the drift report of the latest window (Evidently, a few seconds)"):
        written = render_report(current)
    html, data = Path(written["html"]), Path(written["json"])
    journal(current).append(LEARNER_ACTION, LearnerAction(action=MONITOR_REPORT))
    if as_json:
        print_json({"html": str(html), "json": str(data), "generated_at": html.stat().st_mtime})
        return
    try:
        judged = json.loads(data.read_text())["monitor"]["evaluated_at"]
    except (OSError, ValueError, KeyError, TypeError):  # a report from before the verdict was part of it
        judged = None
    when = f"of the evaluation at {_at(judged)}" if judged else f"written {_ago(html.stat().st_mtime)}"
    out.print(f"{html}\n{data}\n({when}; `lab monitor status` shows the latest evaluation's time)")
    if open_it:
        webbrowser.open(html.as_uri())


@monitor_app.command("rules")
@friendly
def rules_cmd(as_json: bool = JSON) -> None:
    """The alert rules in force, and any rule file that was refused."""
    from lab_runtime.monitor.rules import NEGATED

    body = fetch_status(settings())
    if as_json:
        print_json({"rules": body["rules"], "rule_errors": body["rule_errors"]})
        return
    table = grid("rule", "condition", "for", "severity", "source")
    for r in body["rules"]:
        condition = f"{r['signal']} {r['comparison']} {r['threshold']:g}"
        if r.get("resolve_threshold") is not None:  # hysteresis: a firing alert resolves only beyond this level
            condition += f", resolves at {NEGATED[r['comparison']]} {r['resolve_threshold']:g}"
        table.add_row(r["name"], condition, f"{r['for']:g}s", r["severity"], Path(r["source"]).name)
    out.print(table)
    for problem in body["rule_errors"]:
        out.print(f"[yellow]rule file refused[/]: {problem}")


@monitor_app.command("add-rules")
@friendly
def add_rules(file: Path = typer.Argument(..., help="a YAML file of alert rules")) -> None:
    """Validate a rule file and install it; the monitor loads it at its next evaluation."""
    from lab_runtime.monitor.rules import load_rules

    current = settings()
    rules = load_rules(file)  # refuses a bad file before anything is installed
    current.ensure_dirs()
    target = current.rules_dir / f"{file.stem}.yaml"
    shutil.copyfile(file, target)
    journal(current).append(LEARNER_ACTION, LearnerAction(action=MONITOR_ADD_RULES, rules=[r.name for r in rules]))
    out.print(f"installed {len(rules)} rule(s) from {file} as {target}: {', '.join(r.name for r in rules)}")


@app.command()
@friendly
def alerts(
    show_all: bool = typer.Option(False, "--all", help="also list incidents that resolved"), as_json: bool = JSON
) -> None:
    """Alerts firing now (and with --all, every incident of this sandbox), from the journal. An alert that fires
    again soon after it resolved is one incident: one row, with its occurrences."""
    from lab_runtime.monitor.alerts import alert_history, incidents

    current = settings()
    events = journal(current).events([ALERT_FIRING, ALERT_RESOLVED]) if current.journal_path.exists() else []
    rows = incidents(alert_history(events))
    shown = rows if show_all else [r for r in rows if r["state"] == "firing"]
    if as_json:
        print_json(shown)
        return
    if not shown:
        out.print("no alert is firing" + ("" if show_all else " (`lab alerts --all` lists resolved ones)"))
        return
    table = grid("rule", "severity", "state", "occurrences", "fired", "resolved", "summary")
    for r in shown:
        n, fired, resolved = r["occurrence"], _ago(r["fired_at"]), _ago(r["resolved_at"])
        times = "1" if n == 1 else f"occurrence {n}, last fired {_ago(r['last_fired_at'])}"
        table.add_row(r["rule"], r["severity"], r["state"], times, fired, resolved, r["summary"])
    out.print(table)


@app.command()
@friendly
def declare(
    diagnosis: str = typer.Argument(None, help="what you think is wrong; `--list` shows the vocabulary"),
    note: str = typer.Option("", help="a line of evidence, kept with the declaration"),
    show_list: bool = typer.Option(False, "--list", help="list the diagnoses you may declare"),
) -> None:
    """Declare your diagnosis of what is wrong; the grader times it from the journal."""
    from lab_runtime.labs.diagnoses import DIAGNOSES, check_diagnosis

    if show_list or diagnosis is None:
        for name, meaning in DIAGNOSES.items():
            out.print(f"  [bold]{name:<18}[/] {meaning}")
        return
    current = settings()
    event = journal(current).append(LEARNER_DECLARED, LearnerDeclared(diagnosis=check_diagnosis(diagnosis), note=note))
    out.print(f"declared {diagnosis} at {time.strftime('%H:%M:%S', time.gmtime(event.at))} UTC (when you ran it)")
