"""An instructor runs a class from the console's page alone: three real sandboxes (started before the console, so
their agents wait for it), a refused order with its reason, a game day sent to all three from the page, one
learner's detection and fix, and the grades arriving live. Headless Chromium (Debian's); screenshots are kept in
test-artifacts/."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from grader.console.store import SqliteStore
from lab_runtime.backends.services import settings_env
from tests.cli import LAB
from tests.conftest import free_port
from tests.drills.learner import fault_visible, run_id_after
from tests.grader.console.running import console
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # three sandboxes: the machine's cores to itself
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LEARNERS = ("ada", "bob", "cy")
SECOND = 1000  # Playwright's timeouts are in milliseconds


def as_learner(box: Sandbox, *args: str) -> None:
    """A learner's `lab` command in their own sandbox (a process, with that sandbox's settings)."""
    done = subprocess.run(
        [*LAB, *args], env={**os.environ, **settings_env(box.settings)}, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done


def row(page: Page, learner: str) -> object:
    return page.locator(f"#learners tr[data-learner='{learner}']")


def tick(page: Page, *learners: str) -> None:
    for learner in learners:
        page.check(f"input[name=learner][value='{learner}']")


def test_an_instructor_runs_a_class_of_three_sandboxes_from_the_page(tmp_path: Path, browser: Browser) -> None:
    store_path = tmp_path / "console" / "console.db"
    issued = SqliteStore(store_path)
    tokens = {name: issued.issue("learner", name)[1] for name in LEARNERS}
    _, teacher = issued.issue("instructor", None)
    issued.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        boxes = {
            name: stack.enter_context(
                running_sandbox(
                    tmp_path / name,
                    {"LAB_LEARNER": name, "LAB_CONSOLE_URL": url, "LAB_CONSOLE_TOKEN": tokens[name]},
                    versions=1,
                )
            )
            for name in LEARNERS
        }  # each came up healthy, its agent with it, while no console answered
        for box in boxes.values():
            said = (box.settings.logs_dir / "console-agent.log").read_text()
            assert said.count("does not answer") == 1, said
        stack.enter_context(console(store_path, port))
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        stack.callback(context.close)
        page = context.new_page()
        page.goto(url + "/")
        expect(page).to_have_url(url + "/login")
        page.fill("input[name=token]", teacher)
        page.click("button[type=submit]")
        for name in LEARNERS:
            expect(page.locator(f"#learners tr[data-learner='{name}'] .healthy")).to_be_visible(timeout=60 * SECOND)
        page.screenshot(path=str(ARTIFACTS / "console-class-joined.png"), full_page=True)

        tick(page, "ada")
        page.select_option("select[name=drill]", "incident-service-starved")
        page.click("#send")
        expect(page.locator("#notice")).to_have_text("order sent to 1 sandbox(es)")
        refusal = page.locator("#orders tr", has_text="incident-service-starved")
        expect(refusal).to_contain_text("refused", timeout=60 * SECOND)
        expect(refusal).to_contain_text("needs the compose runtime")
        expect(page.locator("#learners tr[data-learner='ada']")).to_contain_text("refused")

        tick(page, *LEARNERS)
        page.check("input[name=action][value=gameday]")
        page.fill("input[name=drills]", "incident-service-crash")
        page.fill("input[name=between_min]", "0s")
        page.fill("input[name=between_max]", "1s")
        page.fill("input[name=seed]", "7")
        page.click("#send")
        expect(page.locator("#notice")).to_have_text("order sent to 3 sandbox(es)")
        for name in LEARNERS:
            learner_row = page.locator(f"#learners tr[data-learner='{name}']")
            expect(learner_row).to_contain_text("gameday: started", timeout=60 * SECOND)
            expect(learner_row.locator(".run[data-outcome='under way']")).to_contain_text(
                "incident-service-crash", timeout=60 * SECOND
            )
        page.screenshot(path=str(ARTIFACTS / "console-gameday-under-way.png"), full_page=True)

        ada = boxes["ada"]
        run_id = run_id_after(ada.settings, 0)
        wait_for(lambda: fault_visible(ada.settings, run_id, 1), 120, "the crash in ada's probes")
        as_learner(ada, "declare", "service-down")
        ada_row = page.locator("#learners tr[data-learner='ada']")
        expect(ada_row).to_contain_text("declared: service-down", timeout=30 * SECOND)
        expect(ada_row).not_to_contain_text("TTD –", timeout=30 * SECOND)  # the detection, timed, before the fix
        as_learner(ada, "up")
        expect(ada_row.locator(".run[data-outcome='remediated']")).to_be_visible(timeout=120 * SECOND)
        for name in ("bob", "cy"):  # no move: the run ends at its time limit, graded all the same
            finished = page.locator(f"#learners tr[data-learner='{name}'] .run:not([data-outcome='under way'])")
            expect(finished).to_contain_text("score", timeout=150 * SECOND)
        page.screenshot(path=str(ARTIFACTS / "console-gameday-graded.png"), full_page=True)

        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {teacher}"}, trust_env=False) as client:
            cohort = client.get("/api/cohort").json()
            exported = client.get("/export/report.json").json()
            statements = client.get("/export/xapi.json").json()
    runs = {r["learner"]: r["runs"] for r in cohort["learners"]}
    (ada_run,) = runs["ada"]
    assert (ada_run["drill"], ada_run["outcome"]) == ("incident-service-crash", "remediated")
    assert ada_run["ttd"] is not None and ada_run["ttr"] is not None and ada_run["ttd"] <= ada_run["ttr"]
    assert all(r[0]["outcome"] != "remediated" for r in (runs["bob"], runs["cy"]))
    assert exported["bundles"] == 3 and [d["drill"] for d in exported["drills"]] == ["incident-service-crash"]
    assert len([s for s in statements if "incident-service-crash" in s["object"]["id"]]) == 3
