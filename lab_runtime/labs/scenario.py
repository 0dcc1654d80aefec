"""A lab's scripted events: once a step passes, `lab check` ships a release or starts a blind catalog drill (the
lab's incident), each once, and journals `lab.event`. An incident starts only with the model deciding every
request (a learner's throttle or disable left on would hide it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab_runtime.errors import LabError
from lab_runtime.events import DRILL_ENDED, DRILL_STARTED, FAULT_INJECTED, LAB_EVENT, LabEvent
from lab_runtime.journal import Event, Journal, learner_journal
from lab_runtime.labs.catalog import Lab, StepResult, due_events
from lab_runtime.labs.scripting import lab as run_lab
from lab_runtime.settings import Settings

DRILL_START_TIMEOUT = 120.0  # seconds for a lab's drill to pass its gate and put its first fault in place
PROGRESS_EVERY = 10.0  # seconds between two progress lines while it does
POLL = 0.2  # seconds between two reads of the journal meanwhile
Say = Callable[[str], None]


def run_due_events(settings: Settings, lab: Lab, started_at: float, results: list[StepResult], say: Say) -> list[str]:
    """Run the lab's scripted events whose step now passes (once each); their announcements. `say` tells how the
    start of a drill goes."""
    from lab_runtime.pipeline.store import ReleaseStore, ship
    from lab_runtime.registry import model_ops

    log = learner_journal(settings, source=f"{lab.id}-scenario")
    happened = len(log.events([LAB_EVENT], since=started_at))
    announcements = []
    for number, event in enumerate(due_events(lab, results, happened), start=happened):
        # What served before the incident: the checks compare with it.
        payload = LabEvent(lab=lab.id, event=number, aliases_before=model_ops.aliases(settings))
        if event.ship_release is not None:
            with ReleaseStore(settings.pipeline_db_path) as store:
                ship(store, log, event.ship_release, by=f"{lab.id} scenario")
            payload["release"] = event.ship_release.version
        else:
            model_on(settings)
            payload["drill"] = str(event.run_drill)
            payload["run_id"] = start_incident(settings, log, payload["drill"], say)
        log.append(LAB_EVENT, payload)
        announcements.append(event.announce.strip())
    return announcements


def model_on(settings: Settings) -> None:
    """LabError unless the learner's model switch has the model decide every request."""
    from lab_runtime.service.switch import read_switch

    if not settings.flags_path.exists():
        return
    switch = read_switch(settings.flags_path)  # InvalidFlags, a LabError, names a bad file's field
    if switch.mode != "on":
        now = "switched off" if switch.mode == "off" else f"throttled to {switch.share:.0%} of the requests"
        raise LabError(
            f"the lab's next incident starts with the model deciding every request, and it is {now} "
            "(`lab feature status`): `lab feature enable`, then `lab check`"
        )


@dataclass(frozen=True)
class Launch:
    """What the journal says of a drill started in the background."""

    run_id: str | None = None  # its run, once the runner journaled `drill.started`
    injected: bool = False  # its first fault is in place
    ended: str | None = None  # why it ended before its first fault


def launch_state(drill_id: str, events: Sequence[Event]) -> Launch:
    """Pure: the launch of `drill_id` from its `drill.started`, `fault.injected` and `drill.ended` events (the first
    run of that drill among `events`)."""
    run_id = next((e.run_id for e in events if e.kind == DRILL_STARTED and e.payload.get("drill") == drill_id), None)
    if run_id is None:
        return Launch()
    first = next((e for e in events if e.run_id == run_id and e.kind in (FAULT_INJECTED, DRILL_ENDED)), None)
    if first is None:
        return Launch(run_id)
    if first.kind == FAULT_INJECTED:
        return Launch(run_id, injected=True)
    return Launch(run_id, ended=str(first.payload.get("detail") or first.payload.get("outcome")))


def start_incident(settings: Settings, log: Journal, drill_id: str, say: Say) -> str:
    """Start a lab's drill in the background, blind, for the current learner (`lab drill run --detach`), and wait
    until its first fault is in place (its run id): a drill its gate refuses is an error here, so the next
    `lab check` tries again, instead of an incident that never comes."""
    since = time.time()
    result = run_lab("drill", "run", drill_id, "--detach", "--blind", "--learner", settings.learner, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"the lab's incident (drill {drill_id}) could not start: {reason}")
    say(f"getting the lab's next phase ready (its drill waits for steady traffic; at most "
        f"{DRILL_START_TIMEOUT:.0f}s)...")  # fmt: skip
    started = time.monotonic()
    told = 0.0
    while (waited := time.monotonic() - started) < DRILL_START_TIMEOUT:
        launch = launch_state(drill_id, log.events([DRILL_STARTED, FAULT_INJECTED, DRILL_ENDED], since=since))
        if launch.injected:
            say(f"ready after {waited:.0f}s")
            return str(launch.run_id)
        if launch.ended is not None:
            raise LabError(
                f"the lab's incident (drill {drill_id}) did not start: {launch.ended}; run `lab check` again"
            )
        if waited >= told + PROGRESS_EVERY:
            told += PROGRESS_EVERY
            say(f"  still getting ready ({told:.0f}s)")
        time.sleep(POLL)
    raise LabError(f"the lab's incident (drill {drill_id}) did not start within {DRILL_START_TIMEOUT:.0f}s; "
                   "see `lab drill status`")  # fmt: skip
