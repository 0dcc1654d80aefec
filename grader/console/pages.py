"""The console's HTML (pure): the login page, the instructor's page (the cohort live, the order form, the orders),
a learner's page (their own row), and the live fragment both pages swap in from `/live` (server-sent events)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from grader.console.roster import Row, Run
from grader.console.store import OrderRecord
from lab_runtime.console.wire import DrillChoice

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top;
font-size:.9rem}th{background:#f3f3f3;text-align:left}.healthy{color:#17692b}.degraded{color:#a15c00}
.offline,.refused,.not-joined{color:#b00020}.started{color:#17692b}small{color:#666}fieldset{margin:.5rem 0}
label{margin-right:1rem}
"""

# The live fragment arrives as server-sent events; the learners ticked and the drill chosen survive each swap.
SCRIPT = """
function choose() {
  const choices = document.getElementById('drill-choices');
  const select = document.querySelector('select[name=drill]');
  if (!choices || !select || select.innerHTML === choices.innerHTML) return;
  const chosen = select.value;
  select.innerHTML = choices.innerHTML;
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}
choose();
const live = new EventSource('live');
live.addEventListener('cohort', (e) => {
  const ticked = new Set([...document.querySelectorAll('input[name=learner]:checked')].map((i) => i.value));
  document.getElementById('cohort').innerHTML = e.data;
  document.querySelectorAll('input[name=learner]').forEach((i) => { i.checked = ticked.has(i.value); });
  choose();
});
"""


def _page(title: str, body: str, live: bool = False) -> str:
    script = f"<script>{SCRIPT}</script>" if live else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style>"
        f"</head><body>{body}{script}</body></html>"
    )


def login(problem: str | None = None, hub: bool = False) -> str:
    said = f"<p class='refused'>{escape(problem)}</p>" if problem else ""
    with_hub = "<p><a id='hub-login' href='oauth_login'>Sign in with the class hub</a></p>" if hub else ""
    return _page(
        "Console: sign in",
        "<h1>Instructor console</h1>" + said + with_hub + "<form method='post' action='login'>"
        "<label>Token <input type='password' name='token' size='48' autofocus></label>"
        "<button type='submit'>Sign in</button></form>"
        "<p><small>An instructor's token comes from <code>lab console token --instructor</code>, a learner's from "
        "their instructor.</small></p>",
    )


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}s"


def _run(run: Run) -> str:
    figures = f"TTD {_secs(run.ttd)} · TTM {_secs(run.ttm)} · TTR {_secs(run.ttr)}"
    return (
        f"<span class='run' data-run='{escape(run.run_id)}' data-outcome='{escape(run.outcome)}'>"
        f"<b>{escape(run.drill)}</b>{' (blind)' if run.blind else ''}: {escape(run.outcome)}; {figures}"
        + (f"; score {run.score:.0f}" if run.finished else "")
        + "</span>"
    )


def _active(run: Run | None) -> str:
    if run is None:
        return "–"
    declared = ", ".join(map(escape, run.declared)) or "nothing yet"
    moves = ", ".join(map(escape, run.moves)) or "none yet"
    return f"{_run(run)}<br><small>declared: {declared}; moves: {moves}</small>"


def _order(order: dict[str, Any] | None) -> str:
    if not order:
        return "–"
    message = f"<br><small>{escape(order['message'])}</small>" if order.get("message") else ""
    return f"{escape(order['action'])}: <span class='{escape(order['state'])}'>{escape(order['state'])}</span>{message}"


def _row(r: Row, pick: bool) -> str:
    done = [x for x in r.runs if x.finished]
    cells = [
        f"<input type='checkbox' name='learner' value='{escape(r.learner)}'>" if pick else None,
        f"<b>{escape(r.learner)}</b><br><small>{escape(r.runtime or '')}</small>",
        f"<span class='{r.health.status.replace(' ', '-')}'>{escape(r.health.status)}</span>"
        f"<br><small>{escape(r.health.detail)}</small>"
        + (f"<br><small class='refused'>{escape(r.problem)}</small>" if r.problem else ""),
        f"{escape(r.lab)} <small>({escape(r.steps or '')} steps)</small>" if r.lab else "–",
        _active(r.active),
        ", ".join(map(escape, r.alerts)) or "–",
        "<br>".join(_run(x) for x in done[-3:]) or "–",
        "<br>".join(f"{escape(s)}: {escape(level)}" for s, level in r.skills) or "none yet",
        _order(r.order),
    ]
    return (
        f"<tr data-learner='{escape(r.learner)}' data-cursor='{r.cursor}' data-last-event='{r.last_event or ''}'>"
        + "".join(f"<td>{c}</td>" for c in cells if c is not None)
        + "</tr>"
    )


HEADERS = ("learner", "sandbox", "lab", "drill under way", "alerts firing", "finished runs", "skills", "last order")


def _options(drills: Sequence[DrillChoice]) -> str:
    return "".join(
        f"<option value='{escape(d.id)}'>{escape(d.id)} ({escape(', '.join(d.runtimes))})</option>" for d in drills
    )


def fragment(
    rows: Sequence[Row], orders: Sequence[OrderRecord], instructor: bool, drills: Sequence[DrillChoice] = ()
) -> str:
    """The live part: the cohort table (a tick box per learner for the instructor), the recent orders, and the
    drills the sandboxes have (the order form's choices)."""
    head = "".join(f"<th>{h}</th>" for h in (("",) if instructor else ()) + HEADERS)
    table = f"<table id='learners'><tr>{head}</tr>{''.join(_row(r, instructor) for r in rows)}</table>"
    if not rows:
        table += "<p>No learner yet: issue tokens with <code>lab console token NAME</code>.</p>"
    if not instructor:
        return table
    table += f"<template id='drill-choices'>{_options(drills)}</template>"
    lines = "".join(
        f"<tr data-order='{o.order.id}'><td>{o.order.id}</td><td>{escape(o.learner)}</td>"
        f"<td>{escape(describe(o))}</td><td class='{escape(o.state)}'>{escape(o.state)}</td>"
        f"<td>{escape(o.message or '')}</td></tr>"
        for o in orders[:30]
    )
    return table + (
        "<h2>Orders</h2><table id='orders'><tr><th>#</th><th>learner</th><th>order</th><th>state</th>"
        f"<th>the sandbox said</th></tr>{lines}</table>"
        if orders
        else ""
    )


def describe(o: OrderRecord) -> str:
    order = o.order
    what = {"drill": f"drill {order.drill}", "gameday": f"game day {', '.join(order.drills)}", "abort": "abort"}
    extra = (f" between {order.between[0]} and {order.between[1]}" if order.between else "") + (
        " blind" if order.blind else ""
    )
    return what[order.action] + extra + (f" (seed {order.seed})" if order.seed is not None else "")


def instructor(live: str, notice: str | None = None) -> str:
    said = f"<p id='notice'><b>{escape(notice)}</b></p>" if notice else ""
    body = (
        "<h1>Instructor console</h1>"
        "<p><a href='export/report.html'>cohort report</a> · <a href='export/report.json'>report (JSON)</a> · "
        "<a href='export/xapi.json'>xAPI statements</a> · <a href='export/bundles.json'>signed bundles</a> · "
        "<a href='logout'>sign out</a></p>" + said + "<form id='order' method='post' action='orders'>"
        f"<div id='cohort'>{live}</div>"
        "<fieldset><legend>Send the learners ticked</legend>"
        "<label><input type='radio' name='action' value='drill' checked> a drill</label>"
        "<label><input type='radio' name='action' value='gameday'> a game day</label>"
        "<label><input type='radio' name='action' value='abort'> an abort of their drill</label><br>"
        "<label>drill <select name='drill'></select></label>"
        "<label>game day's drills <input name='drills' size='40' placeholder='id,id,...'></label><br>"
        "<label>delay between <input name='between_min' size='5' placeholder='0s'> and "
        "<input name='between_max' size='5' placeholder='1m'></label>"
        "<label>seed <input name='seed' size='8'></label>"
        "<label><input type='checkbox' name='blind' value='1'> blind</label>"
        "<button type='submit' id='send'>Send</button></fieldset></form>"
    )
    return _page("Instructor console", body, live=True)


def learner(name: str, live: str) -> str:
    return _page(
        f"Console: {name}",
        f"<h1>{escape(name)}'s sandbox</h1><p><a href='logout'>sign out</a></p><div id='cohort'>{live}</div>",
        live=True,
    )
