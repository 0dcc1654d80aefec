"""The cohort report's plots: a form that suits the number of runs (a named dot per run for a few, histograms for
many), a title, axes with ticks and labels in seconds, learners named in the plot itself, two cohorts in two
colours with a legend. Checked on the SVG's structure, parsed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from grader.cohort import Cohort, cohort, compare
from grader.report import COLOURS, STRIP_LIMIT, ticks, to_html
from grader.results import Bundle, sign
from tests.grader.test_cohort import KEY, raw, run


def learners(runs: dict[str, list[dict[str, Any]]]) -> list[Bundle]:
    return [Bundle.model_validate(sign(raw(name, rs), KEY.encode())) for name, rs in runs.items()]


def crowd(name: str, count: int, drill: str = "drift") -> Cohort:
    """`count` learners, one run each: every fifth not detected, every third not remediated."""
    made = {
        f"l{i:03d}": [run(drill, None if i % 5 == 0 else 5.0 + i, None if i % 3 == 0 else 30.0 + 2 * i)]
        for i in range(count)
    }
    return cohort(name, learners(made))


def plots(page: str, *forms: str) -> list[ET.Element]:
    """The page's plots of these forms (default: the drills' and the learners', not the weeks' or the skill
    check's)."""
    found = [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)]
    return [p for p in found if form(p) in forms or (not forms and form(p) not in ("weekly", "dumbbell"))]


def form(svg: ET.Element) -> str:
    return svg.get("class", "").split()[1]


def texts(svg: ET.Element, cls: str | None = None) -> list[str]:
    """The visible text (not the tooltips), of one class if given."""
    return ["".join(t.itertext()) for t in svg.iter("text") if cls is None or cls in t.get("class", "").split()]


def numbers(svg: ET.Element, axis: str = "x") -> list[float]:
    """The tick labels of one axis, in order."""
    return [float(t.text or "") for t in svg.iter("text") if t.get("class") == f"tick {axis}"]


def test_one_learner_is_named_in_every_plot_with_titles_axes_and_ticks_and_no_histogram() -> None:
    page = to_html(cohort("spring", learners({"ada": [run("drift", 10.0, 40.0), run("latency", 5.0, None)]})))
    *dists, scatter = plots(page)
    assert [form(p) for p in dists] == ["strip"] * 4 and form(scatter) == "scatter"
    assert [texts(p, "title") for p in dists] == [
        ["drift: time to detect"],
        ["drift: time to remediate"],
        ["latency: time to detect"],
        ["latency: time to remediate"],
    ]
    for svg in dists:
        assert texts(svg, "name") == ["ada"]
        assert not [r for r in svg.iter("rect") if r.get("class") == "bar"]
    ttd, ttr, _, not_fixed = dists
    assert texts(ttd, "axis-label") == ["TTD (s)"] and texts(ttr, "axis-label") == ["TTR (s)"]
    assert numbers(ttd) == [0, 2, 4, 6, 8, 10] and texts(ttd, "value") == ["10.0 s"]
    assert len(list(ttd.iter("circle"))) == 1
    assert texts(not_fixed, "miss") == ["not remediated"] and not list(not_fixed.iter("circle"))
    assert texts(scatter, "name") == ["ada"]
    assert texts(scatter, "axis-label") == ["median TTR (s)", "median TTD (s)"]
    assert len(numbers(scatter, "x")) >= 6 and len(numbers(scatter, "y")) >= 4
    (dot,) = scatter.iter("circle")
    assert float(dot.get("r", 0)) >= 4


def test_a_dot_sits_at_its_value_on_the_axis() -> None:
    page = to_html(cohort("spring", learners({"ada": [run("drift", 7.0, 40.0)], "bob": [run("drift", 10.0, 20.0)]})))
    ttd = plots(page)[0]
    ticks_at = {float(t.get("x", 0)): float(t.text or 0) for t in ttd.iter("text") if t.get("class") == "tick x"}
    (zero,) = [x for x, v in ticks_at.items() if v == 0]
    (ten,) = [x for x, v in ticks_at.items() if v == 10]
    dots = sorted(float(c.get("cx", 0)) for c in ttd.iter("circle"))
    assert abs(dots[0] - (zero + (ten - zero) * 0.7)) < 0.2
    assert abs(dots[1] - ten) < 0.2
    assert texts(ttd, "name") == ["ada", "bob"]  # fastest first


def test_fifty_learners_get_histograms_with_labelled_bins_and_the_runs_without_a_time_counted() -> None:
    page = to_html(crowd("spring", 50))
    *dists, scatter = plots(page)
    assert [form(p) for p in dists] == ["histogram", "histogram"]
    ttd, ttr = dists
    bars = [r for r in ttd.iter("rect") if r.get("class") == "bar"]
    counted = [int(re.search(r": (\d+) run", r.findtext("title", "")).group(1)) for r in bars]  # type: ignore[union-attr]
    assert sum(counted) == 40  # ten of fifty not detected
    edges = numbers(ttd)
    assert edges[0] == 0 and edges[-1] >= 54 and len(edges) >= 6
    assert edges == sorted(set(edges))
    assert texts(ttd, "axis-label") == ["runs", "TTD (s)"] and texts(ttr, "axis-label") == ["runs", "TTR (s)"]
    assert numbers(ttd, "y")[0] == 0 and all(n == int(n) for n in numbers(ttd, "y"))  # runs: whole numbers
    assert not texts(ttd, "name")
    assert "spring: 50 run(s), 10 not detected" in page and "spring: 50 run(s), 17 not remediated" in page
    assert texts(scatter, "name") == [] and len(list(scatter.iter("circle"))) == 27  # both times


def test_the_form_turns_to_histograms_at_the_limit() -> None:
    assert form(plots(to_html(crowd("spring", STRIP_LIMIT - 1)))[0]) == "strip"
    assert form(plots(to_html(crowd("spring", STRIP_LIMIT)))[0]) == "histogram"


def test_two_cohorts_share_each_plot_in_two_colours_with_a_legend() -> None:
    spring = cohort("spring", learners({"ada": [run("drift", 10.0, 40.0)], "bob": [run("drift", 20.0, 50.0)]}))
    autumn = cohort("autumn", learners({"cy": [run("drift", 15.0, 30.0), run("latency", 4.0, 9.0)]}))
    page = to_html(spring, compare(spring, autumn), autumn)
    ttd, _, latency_ttd, _, scatter = plots(page)
    for svg in (ttd, scatter):
        assert {c.get("fill") for c in svg.iter("circle")} == set(COLOURS)
        assert texts(svg, None)[1:3] == ["spring", "autumn"]  # the legend, under the title
        assert {r.get("fill") for g in svg.iter("g") if g.get("class") == "legend" for r in g.iter("rect")} == set(
            COLOURS
        )
    assert texts(ttd, "name") == ["ada", "bob", "cy"]
    assert texts(latency_ttd, "name") == ["spring", "cy"] and texts(latency_ttd, "miss") == ["no runs"]
    big = to_html(crowd("spring", 40), compare(crowd("spring", 40), crowd("autumn", 30)), crowd("autumn", 30))
    hist = plots(big)[0]
    assert form(hist) == "histogram"
    assert {r.get("fill") for r in hist.iter("rect") if r.get("class") == "bar"} == set(COLOURS)


def test_the_scatter_lists_the_learners_it_cannot_plot_and_keeps_names_apart() -> None:
    same = [run("drift", 10.0, 40.0)]
    page = to_html(cohort("spring", learners({"ada": same, "bob": same, "cy": [run("drift", 12.0, None)]})))
    scatter = plots(page)[-1]
    assert sorted(texts(scatter, "name")) == ["ada", "bob"]
    spots = {(t.get("x"), t.get("y")) for t in scatter.iter("text") if t.get("class") == "name"}
    assert len(spots) == 2  # the same medians: one name beside the dot, the other elsewhere
    assert "Not plotted (no run both detected and remediated): cy." in page


def test_names_are_text_however_they_are_written_and_long_ones_are_cut_in_the_plot_only() -> None:
    long = "a-learner-with-a-very-long-name"
    page = to_html(cohort("<b>", learners({"<i>&": [run("d", 1.0, 2.0)], long: [run("d", 2.0, 3.0)]})))
    svg = plots(page)[0]
    assert texts(svg, "name") == ["<i>&", "a-learner-with-a-…"]
    assert any(long in (c.findtext("title") or "") for c in svg.iter("circle")) and f">{long}<" in page


def test_ticks_are_round_steps_from_zero_to_at_least_the_top() -> None:
    assert ticks(0.0)[0] == 0 and ticks(0.0)[-1] == 1  # no time at all still has an axis
    assert ticks(10.0) == [0, 2, 4, 6, 8, 10]
    assert ticks(195.1) == [0, 50, 100, 150, 200]
    assert ticks(3.0, count=4, whole=True) == [0, 1, 2, 3]
    assert [round(t, 6) for t in ticks(0.7)] == [0, 0.2, 0.4, 0.6, 0.8]
    assert ticks(101.0, count=10) == [0, 20, 40, 60, 80, 100, 120]


def test_the_weeks_of_the_course_plot_median_ttd_and_ttr_per_week() -> None:
    from dataclasses import replace

    from grader.cohort import weeks
    from grader.results import Run

    week = 7 * 24 * 3600.0
    runs = [{**run("drift", ttd, ttr), "injected_at": 1_800_000_000.0 + n * week} for n, (ttd, ttr) in
            enumerate([(100.0, 300.0), (60.0, 200.0), (30.0, None)])]  # fmt: skip
    made = weeks([Run.model_validate(r) for r in runs])
    assert [(w.runs, w.median_ttd, w.median_ttr, w.remediated) for w in made] == [
        (1, 100.0, 300.0, 1.0), (1, 60.0, 200.0, 1.0), (1, 30.0, None, 0.0)]  # fmt: skip
    assert made[0].week == "2027-W02" and made[1].week == "2027-W03"  # 1,800,000,000 s: 15 January 2027
    c = cohort("spring", learners({"ada": [run("drift", 100.0, 300.0)]}))
    page = to_html(replace(c, weeks=made))
    (plot,) = plots(page, "weekly")
    assert texts(plot, "title") == ["Median TTD and TTR per week of the course"]
    assert [t for t in texts(plot) if t.startswith("2027-W")] == ["2027-W02", "2027-W03", "2027-W04"]
    assert len(list(plot.iter("polyline"))) == 2
    assert texts(plot, "name") == ["median TTD", "median TTR"]
