"""A cohort report rendered: a JSON-ready dict, CSV (one row per learner and drill run) and a self-contained HTML page
whose plots are inline SVG (no network, no plotting library). Pure: strings in, strings out."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from grader.before_after import LEVEL, BeforeAfter, Pair
from grader.cohort import Cohort, Comparison, DrillStats, Spread, TeamStats, Week, percentile
from grader.results import Run
from grader.skills import LearnerSkills
from lab_runtime.evaluation.svg import SVG_STYLE, ticks
from lab_runtime.evaluation.svg import number as _num
from lab_runtime.evaluation.svg import svg_open as _svg
from lab_runtime.evaluation.svg import x_axis as _x_axis

COLOURS = ("#3366cc", "#dc7633")  # first cohort, second cohort
LEADERBOARD_ROWS = 100  # the HTML page shows the top of the leaderboard; the CSV and JSON hold everyone


def _drill(d: DrillStats | None) -> dict[str, Any] | None:
    if d is None:
        return None
    body = {k: v for k, v in vars(d).items() if k not in ("ttd_values", "ttr_values")}
    return body | {"ttd": vars(d.ttd), "ttm": vars(d.ttm), "ttr": vars(d.ttr), "blast_radius": vars(d.blast_radius)}


def _learner_skills(row: LearnerSkills) -> dict[str, Any]:
    standing = row.progress
    return {
        "learner": row.learner,
        "role": row.role.id if row.role else None,
        "levels": {s.skill: s.level for s in row.levels},
        "milestone": standing.milestone if standing else None,
        "met": list(standing.met) if standing else [],
        "gaps": [vars(g) for g in standing.gaps] if standing else [],
    }


def as_dict(
    cohort: Cohort,
    comparison: list[Comparison] | None = None,
    other: Cohort | None = None,
    skills: Sequence[LearnerSkills] = (),
) -> dict[str, Any]:
    """The report as JSON-ready data (`vars`, not `dataclasses.asdict`: 10,000 learners take it 3 s)."""
    body: dict[str, Any] = {
        "cohort": cohort.name,
        "bundles": cohort.bundles,
        "drills": [_drill(d) for d in cohort.drills],
        "leaderboard": [vars(s) for s in cohort.leaderboard],
        "weeks": [vars(w) for w in cohort.weeks],
        "teams": [vars(t) for t in cohort.teams],
    }
    if skills:
        body["skills"] = [_learner_skills(row) for row in skills]
    for key, ba in (("before_after", cohort.before_after), ("team_before_after", cohort.team_before_after)):
        if ba is not None:
            body[key] = {
                "pairs": [vars(p) for p in ba.pairs],
                "changes": [vars(c) for c in ba.changes],
                "baseline_only": list(ba.baseline_only),
                "final_only": list(ba.final_only),
                "incomplete": list(ba.incomplete),
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
            "decision",
            "verdict",
            "blast_radius",
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
                r.decision or "",
                r.verdict or "",
                "" if r.blast_radius is None else r.blast_radius,
                f"{r.score:.1f}",
            ]
        )
    return buffer.getvalue()


# --- HTML ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    """One timed figure of a drill run, as the plots name it."""

    title: str  # "time to detect"
    axis: str  # "TTD (s)"
    attr: str  # the `Run` and `DrillStats` field: ttd, ttr
    missing: str  # what a run without it was: "not detected"


MEASURES = (
    _Measure("time to detect", "TTD (s)", "ttd", "not detected"),
    _Measure("time to remediate", "TTR (s)", "ttr", "not remediated"),
)
STRIP_LIMIT = 20  # a plot of fewer runs (or learners) than this draws and names each one; from it on, histograms
PLOT_WIDTH = 520  # two plots side by side in a 1200 px window, scroll bar and margins included
FONT = 11  # px: tick labels and names (the page's style sets it)
CHAR = 0.62 * FONT  # a generous average advance of system-ui / DejaVu Sans, to keep labels apart
NAME_CHARS = 18  # longer names are cut in the plots; the tooltip, the table and the CSV keep them whole
ROW = 18  # px per run in a strip plot


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "\u2026"


def _legend(names: list[str], y: float) -> str:
    """A swatch and a name per cohort, on one line under the title (drawn only when two cohorts share a plot)."""
    if len(names) < 2:
        return ""
    parts, x = [], 0.0
    for i, name in enumerate(names):
        label = _short(name)
        parts.append(
            f'<g class="legend"><rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{COLOURS[i]}"/>'
            f'<text x="{x + 14:.1f}" y="{y:.1f}">{escape(label)}</text></g>'
        )
        x += 14 + CHAR * len(label) + 16
    return "".join(parts)


def _y_axis(marks: list[float], x: float, x_end: float, y0: float, y1: float, label: str) -> str:
    """The axis at `x` from `y0` (0, below) to `y1` (the last tick), with a light grid line across at each tick."""
    top = marks[-1]
    parts = [f'<line class="axis" x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}"/>']
    for t in marks:
        y = y0 - t / top * (y0 - y1)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{y:.1f}" x2="{x_end:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick y" x="{x - 5:.1f}" y="{y + 4:.1f}" text-anchor="end">{_num(t)}</text>'
        )
    mid = (y0 + y1) / 2
    parts.append(
        f'<text class="axis-label" transform="rotate(-90)" x="{-mid:.1f}" y="{FONT + 1}" '
        f'text-anchor="middle">{escape(label)}</text>'
    )
    return "".join(parts)


def _strip(title: str, measure: _Measure, names: list[str], rows: list[tuple[int, str, float | None]]) -> str:
    """One row per run (`rows`: cohort index, learner, value), the learner's name written on its left (in the
    cohort's colour when two share the plot) and the value beside its dot; a run without the value says so in its
    row. Cohorts in turn, fastest first; a cohort that never ran the drill has a row saying so."""
    ran = {i for i, _, _ in rows}
    rows = sorted(rows, key=lambda r: (r[0], r[2] is None, r[2] or 0.0, r[1]))
    lines: list[tuple[int, str, float | None, str]] = [(i, learner, v, measure.missing) for i, learner, v in rows]
    lines += [(i, name, None, "no runs") for i, name in enumerate(names) if i not in ran]
    lines.sort(key=lambda line: line[0])
    left = max(48.0, CHAR * max(len(_short(line[1])) for line in lines) + 14)
    right = PLOT_WIDTH - 60  # room for the last dot's value
    top = 26.0 + (18 if len(names) > 1 else 0)
    values = [v for _, _, v in rows if v is not None]
    marks = ticks(max(values, default=1.0))
    height = top + len(lines) * ROW + (44 if values else 8)
    parts = [_svg("strip", title, PLOT_WIDTH, height), _legend(names, 34)]
    for i, (series, learner, value, missing) in enumerate(lines):
        y = top + i * ROW + ROW / 2
        colour = f' style="fill:{COLOURS[series]}"' if len(names) > 1 else ""
        if i and series != lines[i - 1][0]:
            parts.append(f'<line class="axis" x1="0" y1="{y - ROW / 2:.1f}" x2="{right:.1f}" y2="{y - ROW / 2:.1f}"/>')
        parts.append(
            f'<line class="grid" x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}"/>'
            f'<text class="name" x="{left - 8:.1f}" y="{y + 4:.1f}" text-anchor="end"{colour}>'
            f"{escape(_short(learner))}</text>"
        )
        if value is None:
            parts.append(f'<text class="miss" x="{left + 6:.1f}" y="{y + 4:.1f}">{missing}</text>')
            continue
        x = left + max(0.0, value) / marks[-1] * (right - left)
        parts.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{COLOURS[series]}">'
            f"<title>{escape(learner)} ({escape(names[series])}): {value:.1f} s</title></circle>"
            f'<text class="value" x="{x + 9:.1f}" y="{y + 4:.1f}">{value:.1f} s</text>'
        )
    if values:
        parts.append(_x_axis(marks, left, right, top + len(lines) * ROW + 4, measure.axis))
    return "<figure>" + "".join(parts) + "</svg></figure>"


def _histogram(title: str, measure: _Measure, series: list[tuple[str, tuple[float, ...], int]]) -> str:
    """Runs per bin (`series`: cohort, values, runs), the cohorts side by side in each bin; bins of 1, 2 or 5 times
    a power of ten seconds, labelled at their edges. The runs without the value are counted under the plot."""
    left, right = 52.0, PLOT_WIDTH - 16
    top = 26.0 + (18 if len(series) > 1 else 0)
    bottom = top + 160
    edges = ticks(max((v for _, vs, _ in series for v in vs), default=1.0), count=10)
    bins, step = len(edges) - 1, edges[1]
    counts = [[0] * bins for _ in series]
    for row, (_, values, _) in zip(counts, series, strict=True):
        for v in values:
            row[min(bins - 1, max(0, int(v / step)))] += 1
    heights = ticks(max(max(row) for row in counts), count=4, whole=True)
    slot = (right - left) / bins
    bar = (slot - 2) / len(series)
    parts = [
        _svg("histogram", title, PLOT_WIDTH, bottom + 44),
        _legend([name for name, _, _ in series], 34),
        _y_axis(heights, left, right, bottom, top, "runs"),
    ]
    for i, row in enumerate(counts):
        for b, n in enumerate(row):
            if not n:
                continue
            h = n / heights[-1] * (bottom - top)
            parts.append(
                f'<rect class="bar" x="{left + b * slot + 1 + i * bar:.1f}" y="{bottom - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[i]}"><title>{escape(series[i][0])}: {n} run(s) from '
                f"{_num(edges[b])} to {_num(edges[b + 1])} s</title></rect>"
            )
    parts.append(_x_axis(edges, left, right, bottom, measure.axis))
    notes = [
        f"{escape(name)}: {runs} run(s), {runs - len(values)} {measure.missing}"
        for name, values, runs in series
        if runs
    ]
    note = f"<figcaption>{'; '.join(notes)}</figcaption>" if notes else ""
    return "<figure>" + "".join(parts) + "</svg>" + note + "</figure>"


def _distribution(drill: str, measure: _Measure, cohorts: list[Cohort], runs: list[dict[str, list[Run]]]) -> str:
    """A drill's TTD or TTR in each cohort: a strip plot naming each run below `STRIP_LIMIT` runs, else a
    histogram."""
    title = f"{drill}: {measure.title}"
    stats = [c.drill(drill) for c in cohorts]
    if sum(d.runs for d in stats if d is not None) < STRIP_LIMIT:
        rows = [
            (i, r.learner or "-", getattr(r, measure.attr))
            for i, by_drill in enumerate(runs)
            for r in by_drill.get(drill, [])
        ]
        return _strip(title, measure, [c.name for c in cohorts], rows)
    series = [
        (c.name, getattr(d, f"{measure.attr}_values", ()), d.runs if d else 0)
        for c, d in zip(cohorts, stats, strict=True)
    ]
    return _histogram(title, measure, series)


def _place(points: list[tuple[float, float, str]], r: float, box: tuple[float, float, float, float]) -> list[str]:
    """Each point's name as text beside its dot: right, left, above or below, the first place that overlaps no
    dot and no name already placed and stays inside `box` (x0, y0, x1, y1); else the first that overlaps nothing
    (a name over the margin reads better than two names over each other); else the first inside."""
    taken = [(x - r, y - r, x + r, y + r) for x, y, _ in points]
    out = []
    for x, y, name in points:
        w, h = CHAR * len(name), FONT + 1.0
        spots = [
            (x + r + 3, y - h / 2),
            (x - r - 3 - w, y - h / 2),
            (x - w / 2, y - r - 2 - h),
            (x - w / 2, y + r + 2),
        ]
        boxes = [(bx, by, bx + w, by + h) for bx, by in spots]
        inside = [b for b in boxes if b[0] >= box[0] and b[1] >= box[1] and b[2] <= box[2] and b[3] <= box[3]]
        free = [b for b in boxes if not any(_overlap(b, t) for t in taken)]
        chosen = next((b for b in free if b in inside), (free or inside or boxes)[0])
        taken.append(chosen)
        out.append(f'<text class="name" x="{chosen[0]:.1f}" y="{chosen[3] - 3:.1f}">{escape(name)}</text>')
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _scatter(cohorts: list[Cohort]) -> str:
    """Each learner's median TTD against their median TTR, a colour per cohort, with each cohort's medians over
    its runs as dashed lines; names written beside the dots below `STRIP_LIMIT` learners."""
    points = [
        (i, s.median_ttd, s.median_ttr, s.learner)
        for i, c in enumerate(cohorts)
        for s in c.leaderboard
        if s.median_ttd is not None and s.median_ttr is not None
    ]
    few = len(points) < STRIP_LIMIT
    width = PLOT_WIDTH + 200 if few else 2 * PLOT_WIDTH  # a few named dots need less room than a crowd
    left, right = 60.0, width - 20
    top = 26.0 + (18 if len(cohorts) > 1 else 0)
    bottom = top + (280 if few else 380)
    title = "Learners: median time to detect against median time to remediate"
    parts = [_svg("scatter", title, width, bottom + 48), _legend([c.name for c in cohorts], 34)]
    missing = [
        (c.name, s.learner) for c in cohorts for s in c.leaderboard if s.median_ttd is None or s.median_ttr is None
    ]
    medians = [
        (i, percentile([r.ttd for r in c.runs if r.ttd is not None], 0.5),
         percentile([r.ttr for r in c.runs if r.ttr is not None], 0.5))
        for i, c in enumerate(cohorts)
    ]  # fmt: skip
    both = [(i, mx, my) for i, mx, my in medians if mx is not None and my is not None]
    xs = ticks(max([x for _, x, _, _ in points] + [x for _, x, _ in both], default=1.0), count=8)
    ys = ticks(max([y for _, _, y, _ in points] + [y for _, _, y in both], default=1.0), count=5)
    parts.append(_y_axis(ys, left, right, bottom, top, "median TTR (s)"))
    parts.append(_x_axis(xs, left, right, bottom, "median TTD (s)"))

    def at(x: float, y: float) -> tuple[float, float]:
        return left + max(0.0, x) / xs[-1] * (right - left), bottom - max(0.0, y) / ys[-1] * (bottom - top)

    for i, mx, my in both:
        x, y = at(mx, my)
        parts.append(
            f'<g class="median" stroke="{COLOURS[i]}"><line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" '
            f'y2="{bottom:.1f}"/><line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}"/></g>'
        )
    # Named dots are big; a crowd's are small and translucent, so their density shows.
    r, opacity = (
        (5.0, "") if few else (3.5, ' fill-opacity="0.6"') if len(points) < 500 else (2.5, ' fill-opacity="0.35"')
    )
    placed = []
    for i, tx, ty, name in points:
        x, y = at(tx, ty)
        placed.append((x, y, _short(name)))
        parts.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{COLOURS[i]}"{opacity}>'
            f"<title>{escape(name)} ({escape(cohorts[i].name)}): "
            f"TTD {tx:.1f} s, TTR {ty:.1f} s</title></circle>"
        )
    if few:
        parts += _place(placed, r, (left, top - 8, width, bottom))
    if not points:
        parts.append(
            f'<text class="miss" x="{left + 8:.1f}" y="{top + 20:.1f}">no learner both detected and '
            "remediated a drill</text>"
        )
    note = "Dashed lines: each cohort's median TTD and TTR over its runs."
    if missing and len(missing) < STRIP_LIMIT:
        who = ", ".join(escape(learner if len(cohorts) == 1 else f"{learner} ({name})") for name, learner in missing)
        note += f" Not plotted (no run both detected and remediated): {who}."
    elif missing:
        note += f" {len(missing)} learner(s) not plotted (no run both detected and remediated)."
    return "<figure>" + "".join(parts) + f"</svg><figcaption>{note}</figcaption></figure>"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _counts(s: Spread) -> str:
    return "-" if s.count == 0 else " / ".join(f"{v or 0:.0f}" for v in (s.p50, s.p90, s.max))


def _drill_cells(d: DrillStats | None) -> str:
    if d is None:
        return "<td colspan=11>not run</td>"
    cells = [
        str(d.runs),
        _pct(d.detection_rate),
        _pct(d.diagnosis_accuracy),
        _pct(d.remediation_rate),
        *(f"{_secs(s.p50)} / {_secs(s.p90)} / {_secs(s.max)}" for s in (d.ttd, d.ttm, d.ttr)),
        ", ".join(f"{name}: {n}" for name, n in d.decisions.items()),
        _counts(d.blast_radius),
        "-" if d.mean_score is None else f"{d.mean_score:.0f}",
        str(d.learners),
    ]
    return "".join(f"<td>{escape(c)}</td>" for c in cells)


DRILL_HEAD = (
    "<th>runs</th><th>detected</th><th>diagnosis right first time</th><th>remediated</th>"
    "<th>TTD p50 / p90 / max (s)</th><th>TTM p50 / p90 / max (s)</th><th>TTR p50 / p90 / max (s)</th>"
    "<th>first lever pulled (runs)</th><th>blast radius p50 / p90 / max (decisions)</th>"
    "<th>mean score</th><th>learners</th>"
)
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
    "figure{display:inline-block;vertical-align:top;margin:0 1.2em 1.5em 0}"
    "figcaption{font-size:12px;color:#555;max-width:520px;margin-top:2px}"
    ".met{background:#cfe8d4}.short{background:#f5c6cb}.free{background:#eee;color:#777}.skills td{text-align:center}"
    + SVG_STYLE
)


def _by_drill(cohort: Cohort) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for r in cohort.runs:
        runs.setdefault(r.drill, []).append(r)
    return runs


FIGURE_NAMES = {"mttd": "MTTD (s)", "mttr": "MTTR (s)", "score": "score"}
PAIR_ROWS = 60  # learners drawn in a before/after plot; the JSON holds everyone


def _dumbbells(title: str, figure: str, pairs: Sequence[Pair]) -> str:
    """Per learner, the baseline (grey) and the final (blue) on one row, joined by a line."""
    rows: list[tuple[str, float, float]] = []
    for p in pairs[:PAIR_ROWS]:
        before, after = p.before[figure], p.after[figure]
        if before is not None and after is not None:
            rows.append((p.learner, before, after))
    if not rows:
        return ""
    marks = ticks(max(max(b, a) for _, b, a in rows))
    left, right, top, row = 150.0, 620.0, 30.0, 18.0
    height = top + row * len(rows) + 50

    def x(v: float) -> float:
        return left + v / marks[-1] * (right - left)

    parts = [_svg("dumbbell", title, right + 20, height)]
    for i, (name, before, after) in enumerate(rows):
        y = top + row * i + row / 2
        parts.append(
            f'<text class="name" x="{left - 8:.1f}" y="{y + 4:.1f}" text-anchor="end">{escape(_short(name))}</text>'
            f'<line class="grid" x1="{x(before):.1f}" y1="{y:.1f}" x2="{x(after):.1f}" y2="{y:.1f}" '
            f'style="stroke:#999;stroke-width:2"/>'
            f'<circle class="dot before" cx="{x(before):.1f}" cy="{y:.1f}" r="4" fill="#999"><title>{escape(name)} '
            f"baseline {_num(before)}</title></circle>"
            f'<circle class="dot after" cx="{x(after):.1f}" cy="{y:.1f}" r="4" fill="{COLOURS[0]}"><title>'
            f"{escape(name)} final {_num(after)}</title></circle>"
        )
    parts.append(_x_axis(marks, left, right, top + row * len(rows) + 4, FIGURE_NAMES[figure]))
    return "".join(parts) + "</svg>"


def _before_after(ba: BeforeAfter, who: str = "learner") -> str:
    """The skill check's pairs of learners (or teams, `who`): the changes, the unpaired, a plot per time."""
    heading = "Before and after: the skill check" + ("" if who == "learner" else f" ({who}s)")
    parts = [
        f"<h2 id='before-after{'' if who == 'learner' else '-' + who + 's'}'>{heading}</h2>",
        f"<p>{len(ba.pairs)} {who}(s) took both the baseline and the final. MTTD and MTTR are each {who}'s means "
        "over the form's drills, a drill not detected or not remediated counting as its time limit. The interval is "
        f"a {LEVEL:.0%} bootstrap interval of the mean change; p is the paired Wilcoxon signed-rank test's.</p>",
        "<table class='before-after'><tr><th>figure</th><th>pairs</th><th>baseline (mean)</th><th>final (mean)</th>"
        "<th>change (mean)</th><th>interval</th><th>p</th><th>improved</th></tr>",
    ]
    for c in ba.changes:
        interval = "-" if c.interval is None else f"{_num(c.interval[0])} to {_num(c.interval[1])}"
        cells = [FIGURE_NAMES[c.figure], str(c.pairs), _opt(c.before), _opt(c.after), _opt(c.change), interval,
                 _opt(c.p_value), _pct(c.improved)]  # fmt: skip
        parts.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in cells) + "</tr>")
    parts.append("</table>")
    for names, what in unpaired(ba):
        if names:
            parts.append(f"<p class='unpaired'>{len(names)} {who}(s) with {what}: {escape(', '.join(names))}</p>")
    parts += [_dumbbells(f"{FIGURE_NAMES[f]}: baseline (grey) and final (blue)", f, ba.pairs) for f in ("mttd", "mttr")]
    if len(ba.pairs) > PAIR_ROWS:
        parts.append(f"<p>The plots show {PAIR_ROWS} of the {len(ba.pairs)} pairs; the JSON holds every one.</p>")
    return "\n".join(parts)


def unpaired(ba: BeforeAfter) -> tuple[tuple[tuple[str, ...], str], ...]:
    """Who is left out of the pairs, and why."""
    return (
        (ba.baseline_only, "no final yet"),
        (ba.final_only, "no baseline"),
        (ba.incomplete, "a form that ended incomplete (aborted, or a drill that never ran)"),
    )


def _opt(value: float | None) -> str:
    return "-" if value is None else _num(value)


def _weekly(weeks: Sequence[Week]) -> str:
    """Median TTD and TTR per week of the course, one line each; the week's runs under its name."""
    if not weeks:
        return ""
    values = [v for w in weeks for v in (w.median_ttd, w.median_ttr) if v is not None]
    marks = ticks(max(values, default=1.0))
    left, right, top, bottom = 70.0, 640.0, 40.0, 260.0
    step = (right - left) / max(len(weeks) - 1, 1)

    def y(v: float) -> float:
        return bottom - v / marks[-1] * (bottom - top)

    parts = [_svg("weekly", "Median TTD and TTR per week of the course", right + 120, bottom + 60)]
    for t in marks:
        parts.append(f'<line class="grid" x1="{left:.1f}" y1="{y(t):.1f}" x2="{right:.1f}" y2="{y(t):.1f}"/>'
                     f'<text x="{left - 6:.1f}" y="{y(t) + 4:.1f}" text-anchor="end">{_num(t)}</text>')  # fmt: skip
    for i, w in enumerate(weeks):
        x = left + step * i
        label = f'<text x="{x:.1f}" y="{bottom + 16:.1f}" text-anchor="middle">{escape(w.week)}</text>'
        runs = f"{w.runs} run" + ("" if w.runs == 1 else "s")
        count = f'<text class="miss" x="{x:.1f}" y="{bottom + 30:.1f}" text-anchor="middle">{runs}</text>'
        parts.append(label + count)
    for name, colour, attr in (("TTD", COLOURS[0], "median_ttd"), ("TTR", COLOURS[1], "median_ttr")):
        points = [(left + step * i, getattr(w, attr)) for i, w in enumerate(weeks) if getattr(w, attr) is not None]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in points)
        parts.append(f'<polyline class="trend {name.lower()}" points="{path}" fill="none" stroke="{colour}" '
                     'stroke-width="2"/>')  # fmt: skip
        parts += [f'<circle class="dot {name.lower()}" cx="{x:.1f}" cy="{y(v):.1f}" r="4" fill="{colour}">'
                  f"<title>median {name} {_num(v)} s</title></circle>" for x, v in points]  # fmt: skip
        last_x, last_v = points[-1]
        parts.append(f'<text class="name" x="{last_x + 8:.1f}" y="{y(last_v) + 4:.1f}">median {name}</text>')
    parts.append(f'<text class="axis-label" x="{left:.1f}" y="{top - 8:.1f}">seconds</text>')
    return "".join(parts) + "</svg>"


def _teams(found: Sequence[TeamStats]) -> str:
    """The teams' drill runs: rates, median times, and who detected, mitigated and fixed them."""
    if not found:
        return ""

    def who(counts: dict[str, int]) -> str:
        return ", ".join(f"{name} {n}" for name, n in counts.items()) or "-"

    parts = [
        "<h2 id='teams'>Teams</h2><p>Drill runs assigned to a team: any member's right declaration detects the run, "
        "any member's move can stop the impact or fix it. The last three columns count the runs each member "
        "detected, mitigated and fixed.</p><table class='teams'><tr><th>team</th><th>members</th><th>runs</th>"
        "<th>detected</th><th>remediated</th><th>median TTD (s)</th><th>median TTR (s)</th><th>detected by</th>"
        "<th>mitigated by</th><th>remediated by</th></tr>"
    ]
    for t in found:
        members = ", ".join(f"{m} ({t.roles[m]})" if m in t.roles else m for m in t.members)
        cells = [t.team, members, str(t.runs), _pct(t.detection_rate), _pct(t.remediation_rate), _secs(t.median_ttd),
                 _secs(t.median_ttr), who(t.detected_by), who(t.mitigated_by), who(t.remediated_by)]  # fmt: skip
        parts.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return "\n".join(parts) + "</table>"


def _skills(rows: Sequence[LearnerSkills]) -> str:
    """The learners against the skills: each cell the learner's level, green when it meets what the role's milestone
    needs, red when it falls short, grey when the milestone does not ask for the skill (or the learner has no role)."""
    if not rows:
        return ""
    skills = [s.skill for s in rows[0].levels]
    parts = [
        "<h2 id='skills'>Skills against each learner's role</h2><p>Each cell is the learner's level in the skill "
        "(0 none, 1 practised, 2 independent, 3 proficient; <code>labs/skills.yaml</code>): "
        "<span class='met'>&nbsp;met&nbsp;</span> at or above what the role's next milestone needs, "
        "<span class='short'>&nbsp;short&nbsp;</span> below it, <span class='free'>&nbsp;not asked&nbsp;</span> "
        "the milestone does not ask for it.</p>",
        "<table class='skills'><tr><th>learner</th><th>role</th><th>milestone</th>"
        + "".join(f"<th>{escape(k)}</th>" for k in skills) + "<th>gaps</th></tr>",
    ]  # fmt: skip
    for row in rows:
        needs = (
            row.role.milestones[row.progress.milestone] if row.role and row.progress and row.progress.milestone else {}
        )
        cells = []
        for level in row.levels:
            need = needs.get(level.skill)
            kind = "free" if not need else "met" if level.level >= need else "short"
            title = (
                f"{level.name}"
                + (f"; needs {need}" if need else "")
                + (f"; {level.evidence}" if level.evidence else "")
            )
            cells.append(f"<td class='{kind}' title='{escape(title)}'>{level.level}</td>")
        if row.progress is None:
            milestone, gaps = "-", "no role"
        elif row.progress.milestone is None:
            milestone, gaps = "all met", "-"
        else:
            milestone, gaps = row.progress.milestone, str(len(row.progress.gaps))
        role = row.role.id if row.role else "-"
        parts.append(f"<tr><td>{escape(row.learner)}</td><td>{escape(role)}</td><td>{escape(milestone)}</td>"
                     + "".join(cells) + f"<td>{escape(gaps)}</td></tr>")  # fmt: skip
    parts.append("</table>")
    return "\n".join(parts)


def to_html(
    cohort: Cohort,
    comparison: list[Comparison] | None = None,
    other: Cohort | None = None,
    skills: Sequence[LearnerSkills] = (),
) -> str:
    names = [cohort.name] + ([other.name] if other else [])
    legend = " ".join(f'<span style="color:{COLOURS[i]}">&#9632; {escape(n)}</span>' for i, n in enumerate(names))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Cohort report: {escape(' vs '.join(names))}</title>"
        f"<style>{STYLE}</style></head><body><h1>Cohort report: {escape(cohort.name)}</h1>",
        f"<p>{cohort.bundles} learner(s), {len(cohort.runs)} drill run(s), every bundle signature verified. "
        "TTD: time to detect with the right diagnosis; TTM: time to mitigate (the impact stopped); TTR: time to "
        "remediate. Each is timed from the fault to the start of the learner's command, and TTM and TTR are "
        "credited only to a learner's action. Blast radius: the decisions served against the output policy from "
        "the fault until the mitigation.</p>",
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
    cohorts = [cohort] + ([other] if other else [])
    runs = [_by_drill(c) for c in cohorts]
    parts.append(
        f"<h2>Time to detect and to remediate, per drill</h2><p>{legend}. With fewer than {STRIP_LIMIT} runs on a "
        "drill, each run is a dot on its learner's row; with more, a histogram of the runs.</p>"
    )
    for d in cohort.drills if comparison is None else [c.a or c.b for c in comparison]:
        assert d is not None
        parts += [_distribution(d.drill, m, cohorts, runs) for m in MEASURES]
    parts.append(_teams(cohort.teams))
    parts.append(_skills(skills))
    if cohort.before_after is not None:
        parts.append(_before_after(cohort.before_after))
    if cohort.team_before_after is not None:
        parts.append(_before_after(cohort.team_before_after, "team"))
    if cohort.weeks:
        parts.append("<h2 id='weeks'>Over the course's weeks</h2>" + _weekly(cohort.weeks))
    parts.append("<h2>Learners</h2>" + _scatter(cohorts))
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
