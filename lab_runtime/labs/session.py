"""A learner's lab: the current one (the last `lab.started`), starting one, checking it (its scripted events run
once their step passes) and running its reference solution."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab_runtime.errors import LabError
from lab_runtime.events import LAB_CHECK, LAB_STARTED, LabCheck, LabStarted
from lab_runtime.journal import Event, Journal, learner_journal
from lab_runtime.labs.catalog import Lab, StepResult, check_lab, find_lab
from lab_runtime.labs.checks import CheckContext
from lab_runtime.labs.scenario import Say, run_due_events
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import Registry
from lab_runtime.settings import Settings

if TYPE_CHECKING:
    from lab_runtime.backends.base import Backend
    from lab_runtime.modeling.model import Registered

GradeRun = Callable[[Sequence[Event], str], Any]  # the grader's `grade_run`, passed in by the CLI


def last_started(settings: Settings) -> Event | None:
    """The last `lab.started` event; None before any (the journal is not created to say so)."""
    if not settings.journal_path.exists():
        return None
    log = Journal(settings.journal_path, source="cli", learner=settings.learner)
    try:
        return log.last(LAB_STARTED)
    finally:
        log.close()


def current_lab(settings: Settings) -> tuple[Lab, float]:
    """The current lab and when it started."""
    event = last_started(settings)
    if event is None:
        raise LabError("no lab started yet; run `lab start lab-01` first (see `lab labs`)")
    return find_lab(event.payload["lab"]), event.ts


@dataclass(frozen=True)
class Started:
    lab: Lab
    workspace: Path
    champion: Registered | None  # the first @champion registered for a lab that needs one
    candidates: dict[str, str]  # the versions registered for the learner to judge: {name: version}


def register_candidates(settings: Settings, lab: Lab) -> dict[str, str]:
    """Train and register the lab's candidate versions, in order: {name: version}."""
    from lab_runtime.modeling.model import train_and_register
    from lab_runtime.registry.rest import fail_fast

    registered = {}
    with fail_fast():
        for c in lab.candidates:
            done = train_and_register(
                settings.mlflow_url,
                settings.model_name,
                seed=c.seed,
                regression=c.regression,
                description=c.description,
                experiment=lab.id,
            )
            registered[c.name] = done.version
    return registered


def lab_candidates(settings: Settings) -> dict[str, str]:
    """The versions the current lab registered when it started: {name: version}."""
    event = last_started(settings)
    return dict(event.payload.get("candidates", {})) if event else {}


def start_lab(
    settings: Settings,
    backend: Backend,
    lab_id: str,
    *,
    resume: bool = False,
    on_training: Callable[[], None],
    on_candidates: Callable[[], None] = lambda: None,
) -> Started:
    """Start lab `lab_id` (its starter files copied, never over the learner's; a first @champion registered when
    it needs one, `on_training` called before the training); with `resume`, a lab that is already the current one
    goes on where it is (its scripted events, e.g. a running incident, stay counted). The lab's candidate versions
    are registered once per start (`on_candidates` called before)."""
    lab = find_lab(lab_id)
    last = last_started(settings)
    resume = resume and last is not None and last.payload.get("lab") == lab.id
    backend.require("mlflow", "model-service")
    champion = model_ops.ensure_champion(settings, on_training) if lab.needs_champion else None
    workspace = settings.workspace_dir / lab.id
    workspace.mkdir(parents=True, exist_ok=True)
    for name in lab.starter:
        if not (workspace / name).exists():  # never overwrite the learner's edits
            shutil.copy2(lab.directory / name, workspace / name)
    if resume:
        return Started(lab, workspace, champion, lab_candidates(settings))
    if lab.candidates:
        on_candidates()
    candidates = register_candidates(settings, lab)
    started = LabStarted(lab=lab.id, workspace=str(workspace))
    if candidates:
        started["candidates"] = candidates
    learner_journal(settings).append(LAB_STARTED, started)
    return Started(lab, workspace, champion, candidates)


@dataclass(frozen=True)
class Judged:
    lab: Lab
    started_at: float
    results: list[StepResult]

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


def judge(
    settings: Settings, backend: Backend, grade_run: GradeRun | None = None, until_failing: bool = False
) -> Judged:
    """Every step of the current lab judged from observed state (`until_failing`: up to the first failing one)."""
    lab, started_at = current_lab(settings)
    backend.require("mlflow", "model-service")
    registry = Registry(settings.mlflow_url)
    try:
        context = CheckContext(settings, registry, started_at, lab.id, grade_run=grade_run)
        return Judged(lab, started_at, check_lab(lab, context, until_failing))
    finally:
        registry.close()


@dataclass(frozen=True)
class Checked:
    judged: Judged
    announcements: list[str]  # the scripted events this check ran, as the lab announces them


def check(settings: Settings, backend: Backend, grade_run: GradeRun, say: Say) -> Checked:
    """`lab check`: judge every step, run the scripted events now due (then judge again, so the result says what is
    true now) and journal `lab.check`. An event that cannot start yet is said, and the steps still reported."""
    judged = judge(settings, backend, grade_run)
    try:
        announcements = run_due_events(settings, judged.lab, judged.started_at, judged.results, say)
    except LabError as exc:  # a drill's gate refused, a switch left off: the next `lab check` tries again
        say(f"the lab's next phase could not start yet: {exc}")
        announcements = []
    if announcements:
        judged = judge(settings, backend, grade_run)
    steps = [asdict(r) for r in judged.results]
    learner_journal(settings).append(LAB_CHECK, LabCheck(lab=judged.lab.id, passed=judged.passed, steps=steps))
    return Checked(judged, announcements)


def run_solution(settings: Settings, started: Started) -> None:
    """Run the lab's reference solution in its workspace against the sandbox (its output goes to ours)."""
    from lab_runtime.backends.services import settings_env

    lab = started.lab
    env = {**os.environ, **settings_env(settings), "MLFLOW_TRACKING_URI": settings.mlflow_url}
    result = subprocess.run(
        [sys.executable, str(lab.directory / lab.solution)], cwd=started.workspace, env=env, check=False
    )
    if result.returncode != 0:
        raise LabError(
            f"the reference solution of {lab.id} failed (exit code {result.returncode}); see its output above"
        )
