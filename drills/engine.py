"""Running one drill: steady-state gate, seeded plan, injection, probes, remediation, and a revert on every exit.

Every exit path reverts what was injected: the normal end, the time limit, `lab drill abort`, Ctrl-C, SIGTERM,
an exception in a probe or a fault. Each fault is written to the ledger before it is injected, so `lab reset`
reverts what a runner killed by SIGKILL left, and faults held by a service expire on their own.
"""

from __future__ import annotations

import dataclasses
import os
import random
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

import psutil

from drills.conditions import FAST_SIGNALS, RUNTIME_SIGNALS, Condition, Verdict, judge, recent_view
from drills.faults import REVERTED, Fault, FaultContext
from drills.ledger import ACTIVE, PLANNED, FaultRecord, Ledger, RunRecord
from drills.probes import MONITOR_EVALUATED_AT, observe, observer_for
from drills.spans import Span
from drills.spec import EXPIRY_GRACE, Drill, FaultSpec
from lab_runtime import events as kinds
from lab_runtime.backends.base import Backend
from lab_runtime.clock import process_identity, same_process
from lab_runtime.errors import LabError
from lab_runtime.events import (
    DrillEnded,
    DrillStarted,
    DrillSteadyState,
    EventKind,
    FaultAction,
    FaultInjected,
    FaultReverted,
    FaultRevertFailed,
    Payload,
    ProbeResult,
    Team,
    UnsafeServed,
)
from lab_runtime.journal import Journal
from lab_runtime.predlog import PredictionLog
from lab_runtime.settings import Settings

REVERT_RETRY = 1.0
Observer = Callable[[Settings, Backend], dict[str, float]]
Say = Callable[[str], None]


class DrillRefused(LabError):
    """The sandbox is not in its steady state, so the drill would measure nothing."""


class DrillBusy(LabError):
    """Another drill is running, or a dead runner left faults that `lab reset` must revert first."""


class Interrupted(Exception):
    """SIGTERM (or `lab drill abort`) reached the runner."""


@dataclass(frozen=True)
class RunOptions:
    learner: str
    seed: int
    delay: float = 0.0  # seconds between the gate and the injection (already scaled)
    blind: bool = False
    gate_timeout: float = 30.0
    settle_timeout: float | None = None  # how long to wait for the steady state after the revert
    tag: str | None = None  # what the run belongs to (`capstone:<id>`), recorded in drill.started
    team: Team | None = None  # a team run: `learner` is the team's name, its members act under their own


@dataclass
class RunResult:
    run_id: str
    outcome: str
    detail: str | None = None
    injected_at: float | None = None
    remediated_at: float | None = None
    steady_after: bool | None = None
    failing_after: list[str] = field(default_factory=list)
    revert_failures: list[str] = field(default_factory=list)
    interrupted: bool = False  # a signal arrived while reverting: a game day stops after this drill


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


WALL_CLOCK_ERA = 1e9  # a start after boot is never this large; a wall-clock start (since 2001) always is


def runner_alive(run: RunRecord) -> bool:
    """Whether the process that runs `run` is still that process (a killed one not reaped yet is not)."""
    if run.pid_created <= WALL_CLOCK_ERA:
        return same_process(run.pid, run.pid_created)
    try:  # a run recorded with its wall-clock start, before process_identity
        process = psutil.Process(run.pid)
        return abs(process.create_time() - run.pid_created) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def fault_rng(seed: int, drill_id: str, idx: int) -> random.Random:
    return random.Random(f"{seed}:{drill_id}:{idx}")


def context(
    settings: Settings, backend: Backend, journal: Journal, record: FaultRecord, seed: int, drill_id: str
) -> FaultContext:
    return FaultContext(
        settings,
        backend,
        journal,
        fault_rng(seed, drill_id, record.idx),
        record.run_id,
        f"{record.run_id}-{record.idx}",
        record.expires_at,
        settings.time_scale,
    )


def build(record: FaultRecord) -> Fault:
    return FaultSpec(type=record.type, args=record.args).build()


def revert_faults(
    settings: Settings,
    backend: Backend,
    journal: Journal,
    ledger: Ledger,
    run: RunRecord,
    by: str,
    say: Say = lambda line: None,
) -> list[str]:
    """Revert every fault of `run` not reverted yet, newest first; returns a line per failure (kept for a retry).
    `say` gets a line per fault (its type only when the run is not blind)."""
    failures = []
    for record in ledger.unreverted(run.run_id):
        name = f"fault {record.idx}" + ("" if run.blind else f" ({record.type})")
        for attempt in (1, 2):
            try:
                result = build(record).revert(
                    context(settings, backend, journal, record, run.seed, run.drill), record.plan
                )
            except Exception as exc:  # a revert must never stop the others; it is retried, then left for `lab reset`
                error = f"{type(exc).__name__}: {exc}"
                if attempt == 1:
                    time.sleep(REVERT_RETRY)
                    continue
                ledger.mark_failed(record.id, error)
                payload = FaultRevertFailed(fault=record.idx, type=record.type, error=error)
                journal.append(kinds.FAULT_REVERT_FAILED, payload, run_id=run.run_id)
                failures.append(f"fault {record.idx} ({record.type}): {error}")
                say(f"could not revert {name}: {error}")
            else:
                ledger.mark_reverted(record.id, result)
                say(f"{name}: {result}")
                if record.state == ACTIVE or result == REVERTED:
                    journal.append(
                        kinds.FAULT_REVERTED,
                        FaultReverted(fault=record.idx, type=record.type, result=result, by=by),
                        run_id=run.run_id,
                    )
            break
    return failures


def monitor_settle(settings: Settings) -> float:
    """How long the monitor takes to pass a change: one window and five evaluations, on the sandbox's clock."""
    return settings.scaled(settings.monitor_window + 5 * settings.monitor_interval)


def wait_steady(
    settings: Settings,
    backend: Backend,
    conditions: tuple[Condition, ...],
    timeout: float,
    observer: Observer = observe,
    stop: Callable[[], bool] = lambda: False,
) -> Verdict:
    """Probe until the steady state holds, `timeout` passes or `stop()` is true; the last verdict."""
    deadline = time.monotonic() + timeout
    while True:
        verdict = judge(conditions, observer(settings, backend))
        if verdict.ok or time.monotonic() >= deadline or stop():
            return verdict
        time.sleep(min(settings.drill_probe_interval, 1.0))


@dataclass(frozen=True)
class _Probe:
    steady: Verdict
    remedy: Verdict
    impact: Verdict
    observed: dict[str, float]
    in_force: tuple[bool | None, ...]  # per active fault: still in place (None: it cannot tell)


class DrillRunner:
    """Runs one drill in this process, start to revert. `say` gets a line for each step (blind runs say less)."""

    def __init__(
        self,
        drill: Drill,
        settings: Settings,
        backend: Backend,
        options: RunOptions,
        say: Say = lambda line: None,
        observer: Observer | None = None,
        run_id: str | None = None,
    ) -> None:
        self.drill = drill
        self.settings = settings
        self.backend = backend
        self.options = options
        self.say = say
        self.run_id = run_id or new_run_id()
        scale = settings.time_scale
        self.hold = drill.remediation.hold * scale
        self.time_limit = drill.time_limit * scale
        self.steady_conditions = drill.steady()
        self.remedy_conditions = drill.remediation.parsed()
        # The impact, what the service's callers feel: the steady state's process and traffic conditions, and the
        # remediation's traffic conditions (not quality or drift: they wait for the monitor's window).
        felt = [c for c in self.steady_conditions if c.signal in FAST_SIGNALS or c.signal in RUNTIME_SIGNALS]
        felt += [c for c in self.remedy_conditions if c.signal in FAST_SIGNALS]
        self.impact_conditions = tuple(dict.fromkeys(felt))
        settings.ensure_dirs()
        self.journal = Journal(settings.journal_path, source="drill", learner=options.learner)
        self.ledger = Ledger(settings.drills_db_path)
        self._used = {c.signal for c in (*self.steady_conditions, *self.remedy_conditions)}
        # Only drift and quality still wait for the monitor's window; the runtime and traffic signals are read live.
        self._uses_monitor = any(s not in RUNTIME_SIGNALS and s not in FAST_SIGNALS for s in self._used)
        # A probe reads only the sources its conditions need.
        self.observer = observer or observer_for((*self.steady_conditions, *self.remedy_conditions))
        self._signalled: str | None = None
        self._signal_count = 0
        self._injected_at: float | None = None  # when the first fault was in place

    # -- the run ---------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """The whole run. Signals are caught from the first line, so no exit path skips the revert."""
        result = RunResult(self.run_id, "error")
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        claimed = False
        try:
            try:
                self._claim()
                claimed = True
                self._started()
                self._drill(result)
            except DrillBusy:
                raise
            except DrillRefused as exc:
                result.outcome, result.detail = "refused", str(exc)
            except Interrupted as exc:
                aborted = self._abort_requested()
                result.outcome = "aborted" if aborted else "interrupted"
                result.detail = "by the instructor" if aborted else f"by {exc}"
            except Exception as exc:  # a probe or a fault failed: the drill ends, and still reverts
                result.outcome, result.detail = "error", f"{type(exc).__name__}: {exc}"
            finally:
                if claimed:
                    self._finish(result)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.journal.close()
            self.ledger.close()
        return result

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Note the signal. The run ends at its next pause (between probes, in the gate's wait, before an injection):
        raised from here, the exception would cut through whatever ran (a probe's thread pool, a fault half
        injected) and leave it broken."""
        self._signalled = signal.Signals(signum).name
        self._signal_count += 1

    def _claim(self) -> None:
        me = psutil.Process(os.getpid())
        record = RunRecord(
            self.run_id,
            self.drill.id,
            self.options.learner,
            self.options.seed,
            self.options.blind,
            me.pid,
            process_identity(me.pid),
            time.time(),
            None,
            None,
            None,
            False,
        )
        blocker = self.ledger.claim(record)
        if blocker is None:
            return
        if blocker.ended is not None:
            raise DrillBusy(f"faults of drill run {blocker.run_id} could not be reverted; run `lab reset` first")
        if runner_alive(blocker):
            raise DrillBusy(
                f"drill run {blocker.run_id} is running (pid {blocker.pid}); "
                "wait for it or end it with `lab drill abort`"
            )
        raise DrillBusy(f"drill run {blocker.run_id} ended without reverting (its runner died); run `lab reset` first")

    def _started(self) -> None:
        self._event(
            kinds.DRILL_STARTED,
            DrillStarted(
                drill=self.drill.id,
                title=self.drill.title,
                kind=self.drill.kind,
                diagnosis=self.drill.diagnosis,
                seed=self.options.seed,
                blind=self.options.blind,
                delay=self.options.delay,
                time_limit=self.time_limit,
                hold=self.hold,
                faults=[f.type for f in self.drill.faults],
                steady_state=list(self.drill.steady_state),
                remediation=list(self.drill.remediation.conditions),
                tag=self.options.tag,
                decision=None
                if self.drill.decision is None
                else {lever: choice.model_dump() for lever, choice in self.drill.decision.items()},
                team=self.options.team,
            ),
        )

    def _drill(self, result: RunResult) -> None:
        if refusal := self.drill.runtime_refusal(self.settings.runtime):
            raise DrillRefused(refusal)
        self._say(f"gate: waiting for the steady state ({', '.join(self.drill.steady_state)})")
        verdict = wait_steady(
            self.settings, self.backend, self.steady_conditions, self.options.gate_timeout, self.observer, self._stop
        )
        self._check_signal()
        if not verdict.ok:
            raise DrillRefused(
                f"the sandbox is not in its steady state, so drill {self.drill.id} would measure nothing: "
                f"{'; '.join(verdict.failing)}. Fix that (or `lab reset`) and run it again"
            )
        if self.options.delay > 0:
            self._say(f"injecting in {self.options.delay:.0f}s")
            self._sleep_until(time.monotonic() + self.options.delay)
        self._probe_loop(result)

    def _inject(self, idx: int, spec: FaultSpec) -> tuple[Fault, FaultRecord, float]:
        """Plan the fault now (seeded choices, the state its revert restores), record it, then inject it."""
        fault = spec.build()
        expires_at = time.time() + self.time_limit + EXPIRY_GRACE
        draft = FaultRecord(0, self.run_id, idx, spec.type, spec.args, {}, PLANNED, None, expires_at, None, None)
        plan = fault.plan(self._ctx(draft))
        record = dataclasses.replace(
            draft, id=self.ledger.plan_fault(self.run_id, idx, spec.type, spec.args, plan, expires_at), plan=plan
        )
        details = fault.inject(self._ctx(record), plan)
        self.ledger.mark_injected(record.id)
        injected = time.time()
        self._event(kinds.FAULT_INJECTED, FaultInjected(fault=idx, type=spec.type, details=details))
        self._say(f"injected fault {idx}: {spec.type} {details}")
        return fault, record, injected

    def _probe_loop(self, result: RunResult) -> None:
        """Inject on schedule, probe, and journal when the impact stopped (`drill.mitigated`) and when the remediation
        held (`drill.remediated`), each held for the drill's hold time, with `fixed_by`: by when the learner's move
        that did it must have begun. Conditions are judged on the service's recent requests (`recent_view`), so a
        fix shows within seconds; drift and quality wait for the monitor's window."""
        start = time.time()
        self.ledger.set_deadline(self.run_id, start + self.time_limit)
        result.injected_at = start
        pending = sorted(enumerate(self.drill.faults), key=lambda p: p[1].at)
        active: list[tuple[Fault, FaultRecord, float]] = []
        broken_seen, impact_seen, last_injected = False, False, start
        remedy_span, impact_span = Span(self.hold), Span(self.hold)
        cleared_since: float | None = None  # since when every fault that can tell has been seen gone
        scale = self.settings.time_scale
        while True:
            while pending and pending[0][1].at * scale <= time.time() - start:
                self._check_signal()  # nothing more is injected once the run was asked to end
                idx, spec = pending.pop(0)
                active.append(self._inject(idx, spec))
                last_injected = active[-1][2]
                if len(active) == 1:  # the time limit runs from the first fault in place (a plan may train a model)
                    self._injected_at = last_injected
                    start = last_injected - spec.at * scale
                    self.ledger.set_deadline(self.run_id, start + self.time_limit)
                    result.injected_at = start
            at = time.time()  # a probe's time is when it started observing (it reads every service at once)
            probe = self._probe(active)
            steady, remedy, impact, observed = probe.steady, probe.remedy, probe.impact, probe.observed
            seen = time.time()  # ... and by when it had seen what it reports

            # Only a monitor evaluation made after the last injection can show the fault, or its remedy.
            fresh = not self._uses_monitor or observed.get(MONITOR_EVALUATED_AT, 0.0) > last_injected
            broken_seen = broken_seen or (not pending and fresh and not remedy.ok)
            # A fault that cannot tell whether it is still there keeps the fix from being dated by the others.
            if pending or not probe.in_force or any(x is not False for x in probe.in_force):
                cleared_since = None
            elif cleared_since is None:
                cleared_since = seen
            impact_seen = impact_seen or (not pending and not impact.ok)
            for fault, record, injected in active:
                line = fault.tick(self._ctx(record), record.plan, at - injected)
                if line:
                    self._event(kinds.FAULT_ACTION, FaultAction(fault=record.idx, type=record.type, action=line))
                    self._say(line)
            mitigating = impact_seen and not impact_span.done
            if mitigating and impact_span.step(impact.ok and not pending, at, seen, observed, impact.signals):
                self._event(kinds.DRILL_MITIGATED, impact_span.payload())
                self._say("mitigated: the impact stayed away after your move")
            if broken_seen:
                healthy = steady.ok and remedy.ok and not pending and fresh
                if remedy_span.step(healthy, at, seen, observed, steady.signals | remedy.signals):
                    result.outcome, result.remediated_at = "remediated", remedy_span.start
                    self._event(kinds.DRILL_REMEDIATED, remedy_span.payload(cleared_since))
                    self._say(f"remediated: the remediation condition and the steady state held for {self.hold:g}s")
                    return
            if at - start >= self.time_limit:
                result.outcome = "time_limit"
                self._say(f"time limit ({self.time_limit:g}s) reached")
                return
            self._sleep_until(time.monotonic() + self.settings.drill_probe_interval)

    def _ctx(self, record: FaultRecord) -> FaultContext:
        return context(self.settings, self.backend, self.journal, record, self.options.seed, self.drill.id)

    def _probe(self, active: list[tuple[Fault, FaultRecord, float]]) -> _Probe:
        """One observation, judged on its recent view, and whether each active fault is still in force."""
        observed = self.observer(self.settings, self.backend)
        view = recent_view(observed)
        found = _Probe(
            judge(self.steady_conditions, view),
            judge(self.remedy_conditions, view),
            judge(self.impact_conditions, view),
            observed,
            tuple(self._in_force(fault, record) for fault, record, _ in active),
        )
        self._event(
            kinds.PROBE_RESULT,
            ProbeResult(
                steady=found.steady.ok,
                remediated=found.remedy.ok,
                impact=not found.impact.ok,
                failing=list(dict.fromkeys((*found.steady.failing, *found.remedy.failing))),
                values={s: view[s] for s in sorted(self._used) if s in view},
                in_force=list(found.in_force),
            ),
        )
        return found

    def _in_force(self, fault: Fault, record: FaultRecord) -> bool | None:
        try:
            return fault.in_force(self._ctx(record), record.plan)
        except Exception:  # a store or service that cannot be read now says nothing about the fault
            return None

    # -- the end ---------------------------------------------------------------------------------------------

    def _finish(self, result: RunResult) -> None:
        """Revert, check the steady state again, journal the end. From here on signals are only noted."""
        # A signal that ended the run was acted on; one noted during the run's last probe (the run then ended on its
        # own) was not, and counts as arriving now: the settle wait is cut short and a sequence stops after this run.
        acted_on = self._signal_count if result.outcome in ("interrupted", "aborted") else 0

        def again() -> bool:  # a signal during the revert cuts the steady-state wait short (never the revert)
            return self._signal_count > acted_on or (acted_on == 0 and self._abort_requested())

        failures: list[str] = []
        try:
            self._unsafe_served()
            run = self.ledger.run(self.run_id)
            assert run is not None
            failures = revert_faults(self.settings, self.backend, self.journal, self.ledger, run, by="runner")
            result.revert_failures = failures
            if failures:
                self.say("could not revert: " + "; ".join(failures) + " -- run `lab reset`")  # even when blind
            if result.outcome != "refused":
                settle = self.options.settle_timeout
                if settle is None:
                    settle = monitor_settle(self.settings)
                try:
                    verdict = wait_steady(
                        self.settings, self.backend, self.steady_conditions, settle, self.observer, again
                    )
                except Exception as exc:  # the probe itself fails: the end is still journaled
                    verdict = Verdict(False, (f"the steady-state probe failed: {type(exc).__name__}: {exc}",))
                result.steady_after, result.failing_after = verdict.ok, list(verdict.failing)
                self._event(kinds.DRILL_STEADY_STATE, DrillSteadyState(ok=verdict.ok, failing=list(verdict.failing)))
                self._say("steady state holds again" if verdict.ok else f"not steady yet: {'; '.join(verdict.failing)}")
        finally:
            result.interrupted = again()
            self._event(
                kinds.DRILL_ENDED,
                DrillEnded(
                    drill=self.drill.id,
                    outcome=result.outcome,
                    detail=result.detail,
                    remediated_at=result.remediated_at,
                    steady_after=result.steady_after,
                    revert_failures=failures,
                ),
            )
            self.ledger.end_run(self.run_id, result.outcome)

    def _unsafe_served(self) -> None:
        """Journal the policy-violating decisions served while the faults were in place (the grader's blast radius)."""
        if self._injected_at is None:
            return
        until = time.time()
        try:
            log = PredictionLog(self.settings.prediction_log_path)
            try:
                served = log.unsafe(self._injected_at, until)
            finally:
                log.close()
        except Exception as exc:  # an unreadable log loses this figure, never the revert
            self.say(f"could not read the prediction log for the blast radius: {type(exc).__name__}: {exc}")
            return
        self._event(kinds.DRILL_UNSAFE, UnsafeServed(served=served, since=self._injected_at, until=until))

    # -- helpers ---------------------------------------------------------------------------------------------

    def _event(self, kind: EventKind[Payload], payload: Payload) -> None:
        self.journal.append(kind, payload, run_id=self.run_id)

    def _say(self, line: str) -> None:
        if not self.options.blind:
            self.say(line)

    def _abort_requested(self) -> bool:
        run = self.ledger.run(self.run_id)
        return bool(run and run.abort_requested)

    def _stop(self) -> bool:
        """Whether a signal or `lab drill abort` asked the runner to end."""
        return self._signalled is not None or self._abort_requested()

    def _check_signal(self) -> None:
        if self._signalled is not None:
            raise Interrupted(self._signalled)
        if self._abort_requested():
            raise Interrupted("abort requested")

    def _sleep_until(self, until: float) -> None:
        while (left := until - time.monotonic()) > 0:
            self._check_signal()
            time.sleep(min(left, 0.25))
        self._check_signal()
