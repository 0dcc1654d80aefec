"""The cohort report as a training lead sees it: opened from its file in headless Chromium with no network, the
skills matrix coloured against each learner's role, the skill check before and after, and the weeks of the course.
A full-page screenshot is kept in test-artifacts/ (CI keeps it with the run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from grader.results import sign
from tests.cli import lab, ok
from tests.grader.test_cohort import KEY, raw, run

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WEEK = 7 * 24 * 3600.0
T0 = 1_800_000_000.0


def form(mttd: float, mttr: float, score: float) -> dict[str, Any]:
    return {"finished": True, "complete": True, "mttd": mttd, "mttr": mttr, "score": score, "passed": score >= 50}


def write_cohort(folder: Path) -> None:
    """Four learners over two weeks: ada (labs 01-05 and blind drills), bob (lab 01 only), cy (both forms of the
    skill check), dee (a baseline only)."""
    folder.mkdir()
    steps = {"lab-01": 7, "lab-02": 7, "lab-03": 5, "lab-04": 6, "lab-05": 4}

    def labs(*names: str) -> list[dict[str, Any]]:
        return [{"lab": n, "passed": steps[n], "total": steps[n], "completed": True, "steps": []} for n in names]

    def blind(drill: str, ttd: float, ttr: float | None, week: int) -> dict[str, Any]:
        return {**run(drill, ttd, ttr), "blind": True, "injected_at": T0 + week * WEEK, "run_id": f"{drill}-{week}"}

    made = {
        "ada": {"labs": labs(*steps), "runs": [blind("drift-credit-score-shift", 120.0, 300.0, 0),
                                               blind("incident-error-burst", 40.0, 90.0, 1)]},
        "bob": {"labs": labs("lab-01"), "runs": []},
        "cy": {"labs": [], "runs": [blind("incident-latency-spike", 200.0, None, 0)],
               "assessments": {"baseline": form(150, 420, 35), "final": form(70, 180, 75)}},
        "dee": {"labs": [], "runs": [], "assessments": {"baseline": form(90, 300, 50)}},
    }  # fmt: skip
    for name, parts in made.items():
        body = {**raw(name, parts["runs"]), "labs": parts["labs"], "assessments": parts.get("assessments", {})}
        (folder / f"{name}.json").write_text(json.dumps(sign(body, KEY.encode())))


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page that may read files only: any request over the network is aborted and listed."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    left: list[str] = []

    def files_only(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", files_only)
    yield context.new_page(), left
    context.close()


def test_the_report_shows_the_skills_matrix_the_skill_check_and_the_weeks(
    tmp_path: Path, page: tuple[Page, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_INSTRUCTOR_KEY", KEY)
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    folder, html = tmp_path / "spring", tmp_path / "spring.html"
    write_cohort(folder)
    ok(lab("cohort", "report", str(folder), "--html", str(html), "--role", "sre"))
    view, left = page
    view.goto(html.as_uri())

    matrix = view.locator("table.skills")
    expect(view.get_by_role("heading", name="Skills against each learner's role")).to_be_visible()
    expect(matrix).to_be_visible()
    row = {name: matrix.locator("tr", has=view.locator(f"td:text-is('{name}')")) for name in ("ada", "bob", "cy")}
    header = [h.strip() for h in matrix.locator("tr").first.locator("th").all_inner_texts()]
    column = {name: i for i, name in enumerate(header)}

    def cell(learner: str, skill: str) -> Any:
        return row[learner].locator("td").nth(column[skill])

    # ada did labs 01-05 and detected a blind drift: an SRE's day-30 milestone is met; day-60 asks for monitoring 2
    # (hers, from the blind drift) and a mitigation choice of 1 (she has not done lab 06: short, in red)
    expect(cell("ada", "milestone")).to_have_text("day-60")
    expect(cell("ada", "monitor-and-detect")).to_have_text("2")
    expect(cell("ada", "monitor-and-detect")).to_have_css("background-color", "rgb(207, 232, 212)")
    expect(cell("ada", "mitigation-choice")).to_have_text("0")
    expect(cell("ada", "mitigation-choice")).to_have_css("background-color", "rgb(245, 198, 203)")
    expect(cell("ada", "gaps")).to_have_text("1")
    expect(cell("ada", "deploy-and-version")).to_have_css("background-color", "rgb(238, 238, 238)")  # not asked
    expect(cell("bob", "milestone")).to_have_text("day-30")  # lab 01 only: nothing an SRE needs first
    expect(cell("bob", "gaps")).to_have_text("2")

    section = view.locator("#before-after")
    expect(section).to_have_text("Before and after: the skill check")
    before_after = view.locator("table.before-after")
    mttr = before_after.locator("tr", has=view.locator("td:text-is('MTTR (s)')"))
    expect(mttr.locator("td").nth(1)).to_have_text("1")  # one pair: cy
    expect(mttr.locator("td").nth(4)).to_have_text("-240")
    expect(view.locator("p.unpaired")).to_have_text("1 learner(s) with no final yet: dee")
    expect(view.locator("svg.dumbbell")).to_have_count(2)
    expect(view.locator("svg.dumbbell circle.after")).to_have_count(2)

    weekly = view.locator("svg.weekly")
    expect(weekly).to_be_visible()
    expect(weekly.locator("polyline")).to_have_count(2)
    expect(weekly.locator("text", has_text="-W")).to_have_count(2)

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "cohort-report.png"
    view.screenshot(path=str(shot), full_page=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert left == []  # the page is self-contained: nothing fetched
