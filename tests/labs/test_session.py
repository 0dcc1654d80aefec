from pathlib import Path

import pytest

from lab_runtime.errors import LabError
from lab_runtime.events import DRILL_ENDED, DRILL_STARTED, FAULT_INJECTED, LAB_STARTED, LabStarted
from lab_runtime.journal import Event, Journal
from lab_runtime.labs.scenario import Launch, launch_state, model_on
from lab_runtime.labs.session import current_lab
from lab_runtime.service.switch import throttled, write_switch
from lab_runtime.settings import Settings


def event(kind: str, run_id: str, **payload: str) -> Event:
    return Event(0, 0.0, "drill", kind, payload, "ada", run_id)


def test_a_launch_is_the_first_run_of_its_drill_until_its_first_fault_is_in_place() -> None:
    other = event(DRILL_STARTED, "r0", drill="bad-release")
    started = event(DRILL_STARTED, "r1", drill="service-crash")
    assert launch_state("service-crash", []) == Launch()
    assert launch_state("service-crash", [other, event(FAULT_INJECTED, "r0")]) == Launch()
    assert launch_state("service-crash", [other, started]) == Launch("r1")
    injected = [started, event(FAULT_INJECTED, "r1"), event(DRILL_ENDED, "r1", outcome="remediated")]
    assert launch_state("service-crash", injected) == Launch("r1", injected=True)


def test_a_launch_that_ended_before_its_first_fault_says_why() -> None:
    started = event(DRILL_STARTED, "r1", drill="service-crash")
    refused = event(DRILL_ENDED, "r1", outcome="refused", detail="not steady: up.monitor == 1")
    assert launch_state("service-crash", [started, refused]).ended == "not steady: up.monitor == 1"
    assert launch_state("service-crash", [started, event(DRILL_ENDED, "r1", outcome="error")]).ended == "error"


def test_the_current_lab_is_the_last_one_started(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    with pytest.raises(LabError, match=r"^no lab started yet; run `lab start lab-01` first \(see `lab labs`\)$"):
        current_lab(settings)
    assert not settings.journal_path.exists()  # asking creates no journal
    settings.ensure_dirs()
    log = Journal(settings.journal_path, source="cli", learner="ada")
    log.append(LAB_STARTED, LabStarted(lab="lab-01", workspace="w1"))
    second = log.append(LAB_STARTED, LabStarted(lab="lab-02", workspace="w2"))
    lab, started_at = current_lab(settings)
    assert (lab.id, started_at) == ("lab-02", second.ts)


def test_a_labs_incident_waits_for_the_model_to_decide_every_request(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    settings.ensure_dirs()
    model_on(settings)  # no flag file: the built-in switch, on
    write_switch(settings.flags_path, throttled(0.4))
    with pytest.raises(LabError) as caught:
        model_on(settings)
    assert str(caught.value) == (
        "the lab's next incident starts with the model deciding every request, and it is throttled to 40% of the "
        "requests (`lab feature status`): `lab feature enable`, then `lab check`"
    )
    write_switch(settings.flags_path, throttled(0.0))
    with pytest.raises(LabError, match="and it is switched off"):
        model_on(settings)
    write_switch(settings.flags_path, throttled(1.0))
    model_on(settings)
