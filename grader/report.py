"""A cohort report rendered: a JSON-ready dict, CSV (one row per learner and drill run) and a self-contained HTML page
whose plots are inline SVG (no network, no plotting library). Pure: strings in, strings out."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from grader.cohort import Cohort, Comparison, DrillStats, percentile

COLOURS = ("#3366cc", "#dc7633")  # first cohort, second cohort
LEADERBOARD_ROWS = 100  # the HTML page shows the top of the leaderboard; the CSV and JSON hold everyone


def _drill(d: DrillStats | None) -> dict[str, Any] | None:
    if d is None:
        return None
    body = {k: v for k, v in vars(d).items() if k not in ("ttd_values", "ttr_values")}
    return body | {"ttd": vars(d.ttd), "ttm": vars(d.ttm), "ttr": vars(d.ttr)}


def as_dict(cohort: Cohort, comparison: list[Comparison] | None = None, other: Cohort | None = None) -> dict[str, Any]:
    """The report as JSON-ready data (`vars`, not `dataclasses.asdict`: 10,000 learners take it 3 s)."""
    body: dict[str, Any] = {
        "cohort": cohort.name,
        "bundles": cohort.bundles,
        "drills": [_drill(d) for d in cohort.drills],
        "leaderboard": [vars(s) for s in cohort.leaderboard],
    }
    if comparison is not None and other is not None:
        body["compare"] = {
            "cohort": other.name,
            "bundles": other.bundles,
            "drills": [{"drill": c.drill, "a": _drill(c.a), "b": _drill(c.b)} for c in comparison],
        }
    return body


def to_csv(cohort: Cohort) -> str:
    """One row per drill run, with the cohort's p50 TTD and TTR on that drill beside the learner's own (a bundle
    exported before TTM existed leaves its cells empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "learner",
            "drill",
            "run_id",
            "detected",
            "ttd_s",
            "cohort_p50_ttd_s",
            "wrong_declarations",
            "ttm_s",
            "ttr_s",
            "cohort_p50_ttr_s",
            "time_to_recovery_s",
            "outcome",
            "collateral",
            "score",
        ]
    )
    medians = {d.drill: (d.ttd.p50, d.ttr.p50) for d in cohort.drills}

    def num(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    for r in cohort.runs:
        p50_ttd, p50_ttr = medians[r.drill]
        writer.writerow(
            [
                r.learner,
                r.drill,
                r.run_id,
                r.detected,
                num(r.ttd),
                num(p50_ttd),
                r.wrong_declarations,
                num(r.ttm),
                num(r.ttr),
                num(p50_ttr),
                num(r.time_to_recovery),
                r.outcome,
                "; ".join(r.collateral),
                f"{r.score:.1f}",
            ]
        )
    return buffer.getvalue()


# --- HTML ---------------------------------------------------------------------------------------------------------


def _histogram(title: str, series: list[tuple[str, tuple[float, ...]]], width: int = 360, height: int = 150) -> str:
    """Bars of each series' values in 12 shared bins (series side by side in each bin), with the axis in seconds."""
    values = [v for _, vs in series for v in vs]
    head = f'<figure><figcaption>{escape(title)}</figcaption><svg width="{width}" height="{height + 30}" role="img">'
    if not values:
        return head + '<text x="10" y="40">no runs</text></svg></figure>'
    top = max(values) or 1.0
    bins = 12
    counts = [[0] * bins for _ in series]
    for i, (_, vs) in enumerate(series):
        for v in vs:
            counts[i][min(bins - 1, int(v / top * bins))] += 1
    tallest = max(max(c) for c in counts) or 1
    slot = width / bins
    bar = (slot - 2) / len(series)
    shapes = []
    for i, row in enumerate(counts):
        for b, n in enumerate(row):
            h = n / tallest * height
            x = b * slot + 1 + i * bar
            shapes.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{COLOURS[i]}">'
                f"<title>{escape(series[i][0])}: {n} run(s) in {b * top / bins:.0f}-{(b + 1) * top / bins:.0f} s"
                "</title></rect>"
            )
    axis = (
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#444"/>'
        f'<text x="0" y="{height + 16}" font-size="11">0 s</text>'
        f'<text x="{width}" y="{height + 16}" font-size="11" text-anchor="end">{top:.0f} s</text>'
    )
    return head + "".join(shapes) + axis + "</svg></figure>"


def _scatter(cohort: Cohort, width: int = 480, height: int = 320) -> str:
    """Each learner's median TTD against their median TTR, with the cohort's medians as lines."""
    points = [(s.median_ttd, s.median_ttr, s.learner) for s in cohort.leaderboard]
    both = [(x, y, n) for x, y, n in points if x is not None and y is not None]
    head = (
        "<figure><figcaption>Each learner against the cohort: median time to detect (x) and to remediate (y); "
        f'the lines are the cohort\'s medians</figcaption><svg width="{width}" height="{height + 20}" role="img">'
    )
    if not both:
        return head + '<text x="10" y="40">no learner both detected and remediated a drill</text></svg></figure>'
    xmax = max(x for x, _, _ in both) or 1.0
    ymax = max(y for _, y, _ in both) or 1.0
    marks = [
        f'<circle cx="{x / xmax * (width - 10) + 5:.1f}" cy="{height - y / ymax * (height - 10) - 5:.1f}" r="3" '
        f'fill="{COLOURS[0]}" fill-opacity="0.5"><title>{escape(n)}: TTD {x:.1f} s, TTR {y:.1f} s</title></circle>'
        for x, y, n in both
    ]
    mx = percentile([r.ttd for r in cohort.runs if r.ttd is not None], 0.5) or 0.0
    my = percentile([r.ttr for r in cohort.runs if r.ttr is not None], 0.5) or 0.0
    lines = (
        f'<line x1="{mx / xmax * (width - 10) + 5:.1f}" y1="0" x2="{mx / xmax * (width - 10) + 5:.1f}" y2="{height}" '
        'stroke="#888" stroke-dasharray="4"/>'
        f'<line x1="0" y1="{height - my / ymax * (height - 10) - 5:.1f}" x2="{width}" '
        f'y2="{height - my / ymax * (height - 10) - 5:.1f}" stroke="#888" stroke-dasharray="4"/>'
        f'<text x="{width}" y="{height + 14}" font-size="11" text-anchor="end">TTD up to {xmax:.0f} s; '
        f"TTR up to {ymax:.0f} s</text>"
    )
    return head + "".join(marks) + lines + "</svg></figure>"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _drill_cells(d: DrillStats | None) -> str:
    if d is None:
        return "<td colspan=9>not run</td>"
    cells = [
        str(d.runs),
        _pct(d.detection_rate),
        _pct(d.diagnosis_accuracy),
        _pct(d.remediation_rate),
        *(f"{_secs(s.p50)} / {_secs(s.p90)} / {_secs(s.max)}" for s in (d.ttd, d.ttm, d.ttr)),
        "-" if d.mean_score is None else f"{d.mean_score:.0f}",
        str(d.learners),
    ]
    return "".join(f"<td>{escape(c)}</td>" for c in cells)


DRILL_HEAD = (
    "<th>runs</th><th>detected</th><th>diagnosis right first time</th><th>remediated</th>"
    "<th>TTD p50 / p90 / max (s)</th><th>TTM p50 / p90 / max (s)</th><th>TTR p50 / p90 / max (s)</th>"
    "<th>mean score</th><th>learners</th>"
)
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
    "figure{display:inline-block;margin:0 1.5em 1em 0}figcaption{font-size:13px;margin-bottom:4px}"
)


def to_html(cohort: Cohort, comparison: list[Comparison] | None = None, other: Cohort | None = None) -> str:
    names = [cohort.name] + ([other.name] if other else [])
    legend = " ".join(f'<span style="color:{COLOURS[i]}">&#9632; {escape(n)}</span>' for i, n in enumerate(names))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Cohort report: {escape(' vs '.join(names))}</title>"
        f"<style>{STYLE}</style></head><body><h1>Cohort report: {escape(cohort.name)}</h1>",
        f"<p>{cohort.bundles} learner(s), {len(cohort.runs)} drill run(s), every bundle signature verified. "
        "TTD: time to detect with the right diagnosis; TTM: time to mitigate (the impact stopped); TTR: time to "
        "remediate. Each is timed from the fault to the start of the learner's command, and TTM and TTR are "
        "credited only to a learner's action.</p>",
    ]
    if comparison is not None and other is not None:
        parts.append(f"<h2>{escape(cohort.name)} against {escape(other.name)} ({other.bundles} learner(s))</h2>")
        parts.append(f"<table><tr><th>drill</th><th>cohort</th>{DRILL_HEAD}</tr>")
        for c in comparison:
            parts.append(
                f"<tr><td rowspan=2>{escape(c.drill)}</td><td>{escape(cohort.name)}</td>{_drill_cells(c.a)}</tr>"
            )
            parts.append(f"<tr><td>{escape(other.name)}</td>{_drill_cells(c.b)}</tr>")
        parts.append("</table>")
    else:
        parts.append(f"<h2>Per drill</h2><table><tr><th>drill</th>{DRILL_HEAD}</tr>")
        parts += [f"<tr><td>{escape(d.drill)}</td>{_drill_cells(d)}</tr>" for d in cohort.drills]
        parts.append("</table>")
    parts.append(f"<h2>Time to detect and to remediate, per drill</h2><p>{legend}</p>")
    for d in cohort.drills if comparison is None else [c.a or c.b for c in comparison]:
        assert d is not None
        theirs = other.drill(d.drill) if other else None
        for label, attr in (("time to detect", "ttd_values"), ("time to remediate", "ttr_values")):
            series = [(cohort.name, getattr(cohort.drill(d.drill), attr, ()))]
            series += [(other.name, getattr(theirs, attr, ()))] if other else []
            parts.append(_histogram(f"{d.drill}: {label} (s)", series))
    parts.append("<h2>Learners</h2>" + _scatter(cohort))
    parts.append(
        "<table><tr><th>rank</th><th>learner</th><th>runs</th><th>detected</th><th>remediated</th><th>harm</th>"
        "<th>mean score</th><th>median TTD (s)</th><th>median TTR (s)</th><th>labs done</th><th>capstone</th></tr>"
    )
    for s in cohort.leaderboard[:LEADERBOARD_ROWS]:
        cells = [
            str(s.rank),
            s.learner,
            str(s.runs),
            str(s.detected),
            str(s.remediated),
            str(s.collateral),
            "-" if s.mean_score is None else f"{s.mean_score:.1f}",
            _secs(s.median_ttd),
            _secs(s.median_ttr),
            str(s.labs_completed),
            s.capstone,
        ]
        parts.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    if len(cohort.leaderboard) > LEADERBOARD_ROWS:
        parts.append(f"<p>{len(cohort.leaderboard) - LEADERBOARD_ROWS} more learner(s) in the CSV and JSON.</p>")
    return "\n".join(parts) + "</body></html>\n"
