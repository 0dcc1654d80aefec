"""Pieces of inline-SVG plots shared by the self-contained HTML reports (the cohort report, the evaluation report):
tick marks, a plot's opening tag and title, an x axis, and the style they are drawn with. Pure: strings out."""

from __future__ import annotations

import math
from html import escape

SVG_STYLE = (
    "svg text{font-size:11px;fill:#333}svg .title{font-size:13px;font-weight:600;fill:#222}"
    "svg .axis-label{font-size:12px;fill:#222}svg .miss{fill:#888;font-style:italic}svg .value{fill:#555}"
    "svg .name,svg .value{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}"
    "svg .axis{stroke:#444}svg .grid{stroke:#e6e6e6}svg .median{stroke-dasharray:5 4;stroke-opacity:0.8}"
    "svg .dot{stroke:#fff;stroke-width:0.5}"
)


def number(value: float) -> str:
    """A tick label: at most three decimals, trailing zeros dropped."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def ticks(top: float, count: int = 5, whole: bool = False) -> list[float]:
    """Ticks from 0 at a step of 1, 2 or 5 times a power of ten, about `count` of them, the last at or above `top`
    (whole numbers only, for counts, when `whole`)."""
    top = top if top > 0 else 1.0
    raw = top / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    step = max(1.0, step) if whole else step
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def svg_open(form: str, title: str, width: float, height: float) -> str:
    """A plot's opening `<svg>` tag (class `plot <form>`, labelled for screen readers) and its title."""
    return (
        f'<svg class="plot {form}" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="{escape(title)}"><text class="title" x="0" y="15">{escape(title)}</text>'
    )


def x_axis(marks: list[float], x0: float, x1: float, y: float, label: str, unit: str = "") -> str:
    """The axis at `y` from `x0` (the first mark) to `x1` (the last), a labelled tick at each mark and the axis'
    name; `unit` follows each tick label."""
    low, high = marks[0], marks[-1]
    parts = [f'<line class="axis" x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}"/>']
    for t in marks:
        x = x0 + (t - low) / (high - low) * (x1 - x0)
        parts.append(
            f'<line class="axis" x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}"/>'
            f'<text class="tick x" x="{x:.1f}" y="{y + 16:.1f}" text-anchor="middle">{number(t)}{unit}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{(x0 + x1) / 2:.1f}" y="{y + 32:.1f}" text-anchor="middle">{escape(label)}</text>'
    )
    return "".join(parts)
