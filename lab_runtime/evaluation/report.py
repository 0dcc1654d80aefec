"""The evaluation report: a self-contained HTML page (inline SVG, no network) of one evaluation and its review.
Pure: an `Evaluation` and a `ReviewSummary` in, a string out."""

from __future__ import annotations

from datetime import datetime
from html import escape

from lab_runtime.evaluation.judge import MAX_DROP, MIN_SLICE_ROWS, SLICE_MAX_DROP, Evaluation
from lab_runtime.evaluation.review import MIN_VERDICT_LABELS, ReviewSummary
from lab_runtime.evaluation.stats import LEVEL, RESAMPLES
from lab_runtime.evaluation.svg import SVG_STYLE, svg_open, ticks, x_axis
from lab_runtime.registry.path import GO

WIDTH = 680
ROW = 18  # px per interval in the plot
LABEL_WIDTH = 190.0  # px for the row names on the left
WORSE, STEADY = "#c0392b", "#3366cc"
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}tr.flagged td{background:#fbe3e0}"
    ".verdict{font-size:1.4em;font-weight:600;padding:.3em .6em;display:inline-block;border-radius:4px;color:#fff}"
    ".go{background:#2e7d32}.no-go{background:#c0392b}.note{color:#555;font-size:.9em}"
    "svg .threshold{stroke:#c0392b;stroke-dasharray:5 4}svg .whisker{stroke-width:2}" + SVG_STYLE
)


def _num(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else f"{value:{spec}}"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:+.3f} to {high:+.3f}"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _row(cells: list[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"


def _forest(e: Evaluation) -> str:
    """Each difference (overall metrics, then each slice's accuracy) as a dot with its interval as a whisker, the
    zero line, and the slice threshold dashed; flagged slices in red."""
    rows = [(f"overall {f.metric}", f.difference, f.low, f.high, False) for f in e.overall]
    rows += [(s.name, s.difference, s.low, s.high, s.flagged) for s in e.slices]
    rows = [r for r in rows if r[1] is not None]
    reach = max([abs(v) for _, d, lo, hi, _ in rows for v in (d, lo, hi) if v is not None] + [SLICE_MAX_DROP * 1.2])
    steps = ticks(reach, count=3)
    marks = [-t for t in reversed(steps[1:])] + steps
    left, right, top = LABEL_WIDTH, WIDTH - 70.0, 30.0
    bottom = top + len(rows) * ROW + 4

    def at(value: float) -> float:
        return left + (value - marks[0]) / (marks[-1] - marks[0]) * (right - left)

    title = f"version {e.version} minus version {e.against}: differences with {LEVEL:.0%} intervals"
    parts = [svg_open("forest", title, WIDTH, bottom + 44)]
    parts.append(f'<line class="axis" x1="{at(0):.1f}" y1="{top:.1f}" x2="{at(0):.1f}" y2="{bottom:.1f}"/>')
    parts.append(
        f'<line class="threshold" x1="{at(-SLICE_MAX_DROP):.1f}" y1="{top:.1f}" x2="{at(-SLICE_MAX_DROP):.1f}" '
        f'y2="{bottom:.1f}"><title>a slice is flagged beyond this drop ({SLICE_MAX_DROP:g})</title></line>'
    )
    for i, (name, diff, low, high, flagged) in enumerate(rows):
        y = top + i * ROW + ROW / 2
        colour = WORSE if flagged else STEADY
        parts.append(
            f'<line class="grid" x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}"/>'
            f'<text class="name" x="{left - 8:.1f}" y="{y + 4:.1f}" text-anchor="end">{escape(name)}</text>'
        )
        if low is not None and high is not None:
            parts.append(
                f'<line class="whisker" x1="{at(low):.1f}" y1="{y:.1f}" x2="{at(high):.1f}" y2="{y:.1f}" '
                f'stroke="{colour}"/>'
            )
        assert diff is not None
        parts.append(
            f'<circle class="dot" cx="{at(diff):.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"><title>{escape(name)}: '
            f"{diff:+.3f} ({_interval(low, high)})</title></circle>"
            f'<text class="value" x="{right + 6:.1f}" y="{y + 4:.1f}">{diff:+.3f}</text>'
        )
    parts.append(x_axis(marks, left, right, bottom, f"difference (version {e.version} - version {e.against})"))
    return "<figure>" + "".join(parts) + "</svg></figure>"


def _overall(e: Evaluation) -> str:
    compared = e.against is not None
    head = f"<th>metric</th><th>version {escape(e.version)}</th>"
    if compared:
        head += f"<th>version {escape(str(e.against))}</th><th>difference</th><th>{LEVEL:.0%} interval</th>"
    body = []
    for f in e.overall:
        cells = [f.metric, _num(f.candidate)]
        if compared:
            cells += [_num(f.against), _num(f.difference, "+.3f"), _interval(f.low, f.high)]
        body.append(_row(cells))
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _slices(e: Evaluation) -> str:
    compared = e.against is not None
    head = "<th>slice</th><th>rows</th><th>accuracy, version " + escape(e.version) + "</th>"
    if compared:
        head += (
            f"<th>accuracy, version {escape(str(e.against))}</th><th>difference</th><th>{LEVEL:.0%} interval</th>"
            "<th>flagged</th>"
        )
    body = []
    for s in e.slices:
        cells = [s.name, str(s.rows), _num(s.candidate)]
        if compared:
            cells += [_num(s.against), _num(s.difference, "+.3f"), _interval(s.low, s.high), "yes" if s.flagged else ""]
        body.append(_row(cells, "flagged" if s.flagged else ""))
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _violations(e: Evaluation) -> str:
    head = "<th></th>" + "".join(f"<th>version {escape(v.version)}</th>" for v in e.violations)
    body = [_row([f"decisions: {d}", *(str(v.decisions.get(d, 0)) for v in e.violations)])
            for d in ("approve", "refer", "decline")]  # fmt: skip
    body.append(_row(["decisions against the policy", *(str(v.rows) for v in e.violations)]))
    rules = list(dict.fromkeys(r for v in e.violations for r in v.by_rule))
    body += [_row([f"rule {r}", *(str(v.by_rule.get(r, 0)) for v in e.violations)]) for r in rules]
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _review(review: ReviewSummary | None) -> str:
    if review is None or review.queue == 0:
        return (
            "<p>No review queue: the candidate was neither split from the version compared nor unsure on any row.</p>"
        )
    parts = [
        f"<p>{review.labelled} of the {review.queue} rows of the queue labelled (a verdict needs "
        f"{min(MIN_VERDICT_LABELS, review.queue)}). Accuracy counts approve as right when the applicant repaid and "
        "decline when they defaulted; refer is neither. Agreement: labels equal to the candidate's decision.</p>"
    ]
    if review.reviewers:
        parts.append(
            "<table><tr><th>reviewer</th><th>labelled</th><th>approve / decline / refer</th><th>accuracy</th>"
            "<th>agreement with the model</th></tr>"
        )
        for r in review.reviewers:
            counts = " / ".join(str(r.counts[k]) for k in ("approve", "decline", "refer"))
            parts.append(_row([r.reviewer, str(r.labelled), counts, _num(r.accuracy, ".0%"), _num(r.agreement, ".0%")]))
        parts.append("</table>")
    for pair in review.pairs:
        a, b = pair.reviewers
        parts.append(
            f"<p>Cohen's kappa between {escape(a)} and {escape(b)}: {_num(pair.kappa, '.2f')} on the {pair.items} "
            "row(s) both labelled.</p>"
        )
    if review.verdict is not None:
        v = review.verdict
        note = f": {escape(v.note)}" if v.note else ""
        parts.append(
            f'<p>Review verdict: <span class="verdict {escape(v.verdict)}">{escape(v.verdict)}</span> by '
            f"{escape(v.reviewer)} on {_when(v.at)}, after {v.labels} labelled row(s){note}</p>"
        )
    else:
        parts.append("<p>No review verdict yet (`lab review verdict go|no-go`).</p>")
    return "".join(parts)


def to_html(e: Evaluation, review: ReviewSummary | None, mlflow_url: str = "") -> str:
    """The whole report."""
    versus = f"against version {e.against} ({e.against_how})" if e.against else f"alone ({e.against_how})"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in e.reasons)
    why = f"<ul>{reasons}</ul>" if reasons else "<p>No reason for a no-go.</p>"
    verdict_class = "go" if e.verdict == GO else "no-go"
    run = f"{mlflow_url}/#/runs/{e.run_id}" if mlflow_url else ""
    run_link = f'<a href="{escape(run)}">{escape(e.run_id)}</a>' if run else escape(e.run_id)
    metrics = ", ".join(f"{escape(k)} {v:.4g}" for k, v in sorted(e.mlflow_metrics.items()))
    flagged = [s for s in e.slices if s.flagged]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation of {escape(e.model)} version "
        f"{escape(e.version)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Evaluation of {escape(e.model)} version {escape(e.version)}</h1>",
        f"<p>{escape(versus)}, on the test set {escape(e.test_set)} ({e.rows} rows), {_when(e.at)}; output policy: "
        f"{escape(e.policy)}.</p>",
        f'<p><span class="verdict {verdict_class}">{escape(e.verdict)}</span></p>{why}',
        "<h2>Overall</h2>",
        _overall(e),
    ]
    if e.against is not None:
        parts.append(_forest(e))
    parts += [
        f"<h2>Slices</h2><p>{len(flagged)} of {len(e.slices)} slice(s) flagged.</p>",
        _slices(e),
        "<h2>Output policy</h2>",
        _violations(e),
        "<h2>Human review</h2>",
        _review(review),
        "<h2>MLflow's evaluation</h2>",
        f"<p>Logged to the version's source run {run_link}: {metrics or 'no metrics'}; plots: "
        f"{escape(', '.join(e.mlflow_artifacts)) or 'none'}.</p>",
        "<h2>Method</h2>",
        f'<p class="note">Both versions are scored on the same rows; each interval is a percentile interval over '
        f"{RESAMPLES} seeded resamples of those rows (paired: the same resample for both). The verdict is no-go "
        f"when the overall accuracy falls by more than {MAX_DROP:g} (the promotion gate), when a slice of at least "
        f"{MIN_SLICE_ROWS} rows loses more than {SLICE_MAX_DROP:g} of accuracy with its interval wholly below 0, or "
        "when the candidate makes more decisions against the output policy than the version compared.</p>",
        "</body></html>\n",
    ]
    return "\n".join(parts)
