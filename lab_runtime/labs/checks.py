"""The catalog of lab checks. A lab step names a check and its arguments; each check judges observed state.

Every check takes a `CheckContext` and keyword arguments, and returns whether it passed with a detail
line. Arguments are bound against these signatures when a lab file is validated, not when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab_runtime.errors import LabError
from lab_runtime.events import (
    ALERT_FIRING,
    ALERT_RESOLVED,
    ALIAS_CHANGED,
    CANARY_ABORT,
    CANARY_START,
    FEATURE_DISABLE,
    FEATURE_ENABLE,
    FEATURE_THROTTLE,
    GRADED,
    LAB_EVENT,
    LEARNER_ACTION,
    LEARNER_DECLARED,
    PROMOTE,
)
from lab_runtime.files.yamlfile import read_mapping
from lab_runtime.journal import Event, Journal
from lab_runtime.labs import decision_note as decisions
from lab_runtime.labs.incident_note import Reference, judge, parse
from lab_runtime.modeling.columns import FEATURES, STREAM_ID_GLOB
from lab_runtime.monitor.alerts import firing_alerts
from lab_runtime.monitor.client import fetch_status
from lab_runtime.pipeline.store import ReleaseStore
from lab_runtime.predlog import PredictionLog
from lab_runtime.registry.alias_history import OUTSIDE, AliasEntry, history
from lab_runtime.registry.rest import CHALLENGER, CHAMPION, Registry
from lab_runtime.service.client import served_model
from lab_runtime.settings import Settings


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    detail: str


@dataclass
class CheckContext:
    """What a check may look at: the registry, the services, the prediction log and the journal; `grade_run` is the
    grader's (`grader.grading.grade_run`, passed in by the CLI: the runtime does not import the grader)."""

    settings: Settings
    registry: Registry
    lab_started_at: float
    lab_id: str = ""
    grade_run: Callable[[Sequence[Event], str], Any] | None = None
    _grades: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def workspace(self) -> Path:
        return self.settings.workspace_dir / self.lab_id

    def journal(self) -> Journal:
        return Journal(self.settings.journal_path, source="lab-check", learner=self.settings.learner)

    def scenario(self, number: int = 0) -> Event | None:
        """The lab's scripted event `number` (0: the first, its scenario) since the lab started, if it happened."""
        events = self.journal().events([LAB_EVENT], since=self.lab_started_at)
        return events[number] if len(events) > number else None

    def scenario_at(self) -> float | None:
        """When the lab's scenario happened since the lab started, if it did."""
        event = self.scenario()
        return event.ts if event else None

    def incident(self, number: int = 0) -> Any | None:
        """The grade (`grader.grading.RunGrade`) of the drill run the lab's event `number` started, once it did."""
        scenario = self.scenario(number)
        run_id = scenario.payload.get("run_id") if scenario else None
        if run_id is None or self.grade_run is None:
            return None
        if run_id not in self._grades:  # one `lab check` asks several steps; the journal is read once
            self._grades[run_id] = self.grade_run(self.journal().events(GRADED), run_id)
        return self._grades[run_id]

    def alias_version(self, alias: str) -> str | None:
        state = self.registry.model(self.settings.model_name)
        return state.aliases.get(alias) if state else None


Check = Callable[..., CheckResult]
CATALOG: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CATALOG[fn.__name__] = fn
    return fn


@check
def experiment_has_run(ctx: CheckContext, experiment: str, metric: str) -> CheckResult:
    """A run in `experiment` logged the metric `metric`."""
    runs = ctx.registry.experiment_runs(experiment)
    if runs is None:
        return CheckResult(False, f"no experiment named {experiment!r}")
    logged = [r for r in runs if any(m["key"] == metric for m in r.get("data", {}).get("metrics", []))]
    if not logged:
        return CheckResult(False, f"{len(runs)} run(s) in {experiment!r}, none logged the metric {metric!r}")
    return CheckResult(True, f"{len(logged)} run(s) in {experiment!r} logged {metric!r}")


@check
def model_versions(
    ctx: CheckContext, min_count: int, distinct_param: str | None = None, since_lab_start: bool = False
) -> CheckResult:
    """The sandbox's registered model has at least `min_count` versions; with `distinct_param`, versions trained
    with that many different values of that parameter (re-running the same training does not count); with
    `since_lab_start`, versions registered since the lab started (an earlier lab's do not count)."""
    name = ctx.settings.model_name
    versions = ctx.registry.versions(name) if ctx.registry.model(name) else []
    if since_lab_start:
        new = [v["version"] for v in versions if int(v.get("creation_timestamp", 0)) / 1000 >= ctx.lab_started_at]
        if len(new) >= min_count:
            return CheckResult(True, f"version {', '.join(new)} registered since {ctx.lab_id} started")
        return CheckResult(False, f"{len(new)} version(s) registered since {ctx.lab_id} started, {min_count} needed")
    if len(versions) < min_count or distinct_param is None:
        return CheckResult(len(versions) >= min_count, f"{name!r} has {len(versions)} version(s), {min_count} needed")
    values = {ctx.registry.run_params(v["run_id"]).get(distinct_param) for v in versions if v.get("run_id")}
    values.discard(None)
    if len(values) >= min_count:
        return CheckResult(
            True, f"{name!r} has {len(versions)} versions, trained with {distinct_param} = {_listed(values)}"
        )
    return CheckResult(
        False,
        f"{name!r} has {len(versions)} versions but they were trained with {distinct_param} = "
        f"{_listed(values) or '(not logged)'}: train one with another {distinct_param} "
        "and log it with mlflow.log_params",
    )


def _listed(values: set[str | None]) -> str:
    return ", ".join(sorted(str(v) for v in values))


@check
def served_versions_signed(ctx: CheckContext, alias: str) -> CheckResult:
    """The newest version and the one `alias` points at were logged with a signature naming every feature.

    An older version without one is named but does not fail the step: versions are immutable, the way on is a new one.
    """
    import mlflow
    from mlflow.models import get_model_info

    name = ctx.settings.model_name
    versions = [v["version"] for v in ctx.registry.versions(name)] if ctx.registry.model(name) else []
    if not versions:
        return CheckResult(False, f"{name!r} has no versions yet")
    mlflow.set_tracking_uri(ctx.settings.mlflow_url)
    mlflow.set_registry_uri(ctx.settings.mlflow_url)

    def unsigned(version: str) -> str | None:
        signature = get_model_info(f"models:/{name}/{version}").signature
        if signature is None:
            return f"version {version} has no signature"
        missing = set(FEATURES) - set(signature.inputs.input_names())
        return f"version {version}'s signature lacks {sorted(missing)}" if missing else None

    aliased = ctx.alias_version(alias)
    judged = dict.fromkeys([versions[-1], *filter(None, [aliased])])
    for version in judged:
        if problem := unsigned(version):
            role = f"@{alias}" if version == aliased else "the newest version"
            return CheckResult(
                False, f"{problem} ({role}): versions cannot change; register a new one with signature=..."
            )
    older = [v for v in versions if v not in judged and unsigned(v)]
    note = f"; older version(s) {', '.join(older)} unsigned (never served)" if older else ""
    which = f"version {', '.join(judged)} carries" if len(judged) == 1 else f"versions {' and '.join(judged)} carry"
    return CheckResult(True, f"{which} a signature with every feature{note}")


@check
def alias_on_best(ctx: CheckContext, alias: str, metric: str) -> CheckResult:
    """`@alias` points at the version whose training run has the highest `metric`."""
    name = ctx.settings.model_name
    current = ctx.alias_version(alias)
    if current is None:
        return CheckResult(False, f"{name!r} has no '@{alias}' alias")
    scores = {
        v["version"]: ctx.registry.run_metrics(v.get("run_id", "")).get(metric) for v in ctx.registry.versions(name)
    }
    known = {v: s for v, s in scores.items() if s is not None}
    if scores.get(current) is None:
        return CheckResult(False, f"'@{alias}' is version {current}, whose run logged no {metric!r}")
    best = max(known, key=lambda v: known[v])
    if known[current] < known[best]:
        return CheckResult(
            False,
            f"'@{alias}' is version {current} ({metric}={known[current]:.4f}), "
            f"but version {best} scores {known[best]:.4f}",
        )
    return CheckResult(True, f"'@{alias}' is version {current}, the best on {metric} ({known[current]:.4f})")


@check
def service_serves(ctx: CheckContext, alias: str) -> CheckResult:
    """The model service is serving the version that `@alias` points at."""
    wanted = ctx.alias_version(alias)
    served = served_model(ctx.settings)
    if served is None:
        return CheckResult(False, f"the model service does not answer at {ctx.settings.service_url}")
    if wanted is None:
        return CheckResult(False, f"no '@{alias}' alias to serve")
    if served.get(alias) != wanted:
        return CheckResult(False, f"the service serves version {served.get(alias)}, '@{alias}' is {wanted}")
    return CheckResult(True, f"the service serves version {wanted} as {alias}")


@check
def predictions_served(ctx: CheckContext, alias: str, min_count: int) -> CheckResult:
    """At least `min_count` of the learner's own predictions by `@alias` were logged since the lab started."""
    version = ctx.alias_version(alias)
    if version is None:
        return CheckResult(False, f"no '@{alias}' alias yet")
    log = PredictionLog(ctx.settings.prediction_log_path)
    try:
        count = log.count(since=ctx.lab_started_at, model_version=version, exclude_ids=STREAM_ID_GLOB)
    finally:
        log.close()
    return CheckResult(
        count >= min_count,
        f"{count} prediction(s) of yours by version {version} since the lab started (the pipeline's traffic "
        f"does not count), {min_count} needed",
    )


NOT_YET = CheckResult(False, "the incident has not started yet: pass the steps before this one and run `lab check`")


@check
def monitor_sees_traffic(ctx: CheckContext, min_rows: int) -> CheckResult:
    """The monitor's latest evaluation read at least `min_rows` predictions and gave a verdict."""
    status = fetch_status(ctx.settings)
    rows = int(status.get("window", {}).get("rows", 0))
    if status["state"] not in ("ok", "drift") or rows < min_rows:
        return CheckResult(False, f"the monitor's latest verdict: {status['message']}")
    return CheckResult(True, f"the monitor evaluated {rows} predictions: {status['message']}")


@check
def report_answers(ctx: CheckContext, file: str) -> CheckResult:
    """The answers in the workspace's `file` match what the monitor's report shows."""
    path = ctx.workspace / file
    try:
        answers = read_mapping(path, LabError, "file of answers", empty_ok=True)
    except LabError as exc:
        return CheckResult(False, str(exc))
    todo = [key for key in ("credit_score_test", "feature_threshold") if str(answers.get(key, "TODO")) == "TODO"]
    if todo:
        return CheckResult(False, f"{path.name}: {', '.join(todo)} still say TODO")
    drift = fetch_status(ctx.settings).get("drift")
    if not drift:
        return CheckResult(False, "the monitor has no drift verdict yet, so there is no report to read")
    test = {f["name"]: f["test"] for f in drift["features"]}["credit_score"]
    wrong = []
    if str(answers.get("credit_score_test", "")).strip().lower() != test:
        wrong.append("credit_score_test")
    try:
        threshold = float(answers.get("feature_threshold", "nan"))
    except (TypeError, ValueError):
        threshold = float("nan")
    if not abs(threshold - drift["threshold"]) <= 0.01 * drift["threshold"]:  # NaN fails too
        wrong.append("feature_threshold")
    if wrong:
        return CheckResult(False, f"{path.name}: {', '.join(wrong)} do(es) not match the report")
    return CheckResult(True, f"{path.name} matches the report (test {test}, threshold {drift['threshold']:.3g})")


@check
def rule_installed(ctx: CheckContext, signal: str, min_for: float) -> CheckResult:
    """A rule of the learner's on `signal`, holding for at least `min_for` seconds, is in force."""
    status = fetch_status(ctx.settings)
    rules_dir = str(ctx.settings.rules_dir)
    mine = [r for r in status["rules"] if r["source"].startswith(rules_dir) and r["signal"] == signal]
    refused = [p for p in status["rule_errors"] if rules_dir in p]
    if refused:
        return CheckResult(False, f"the monitor refused a rule file: {refused[0]}")
    if not mine:
        return CheckResult(False, f"no rule of yours watches {signal!r} (install one with `lab monitor add-rules`)")
    if max(r["for"] for r in mine) < min_for:
        return CheckResult(
            False, f"your rule on {signal!r} would fire on one noisy evaluation; give it `for: {min_for:g}s` or more"
        )
    return CheckResult(True, f"rule {mine[0]['name']!r} watches {signal!r} for {mine[0]['for']:g}s")


@check
def alert_fired(ctx: CheckContext, rules: list[str]) -> CheckResult:
    """One of the alerts `rules` (an early signal and its confirmation) fired after the lab's incident started, or
    was firing when it started."""
    since = ctx.scenario_at()
    if since is None:
        return NOT_YET
    events = [e for e in ctx.journal().events([ALERT_FIRING, ALERT_RESOLVED]) if e.payload["rule"] in rules]
    was_firing = firing_alerts([e for e in events if e.ts < since])
    before = [rule for rule in rules if rule in was_firing]
    if before:
        return CheckResult(True, f"{before[0]!r} was firing when the incident started")
    fired = [e for e in events if e.kind == ALERT_FIRING and e.ts >= since]
    if not fired:
        return CheckResult(False, _none_of(rules, "fired since the incident started (watch `lab alerts`)"))
    first = fired[0]
    return CheckResult(True, f"{first.payload['rule']!r} fired {first.ts - since:.0f}s after the incident started")


def _none_of(rules: list[str], what: str) -> str:
    names = " nor ".join(repr(r) for r in rules)
    return f"neither {names} has {what}" if len(rules) > 1 else f"{names} has not {what}"


@check
def declared(ctx: CheckContext, diagnosis: str) -> CheckResult:
    """The learner declared `diagnosis` after the incident started."""
    since = ctx.scenario_at()
    if since is None:
        return NOT_YET
    said = [e.payload["diagnosis"] for e in ctx.journal().events([LEARNER_DECLARED], since=since)]
    if diagnosis not in said:
        detail = f"you declared {', '.join(said)}; that is not it" if said else "no diagnosis declared yet"
        return CheckResult(False, detail)
    return CheckResult(True, f"declared {diagnosis}" + (f" after {len(said) - 1} other(s)" if len(said) > 1 else ""))


@check
def pipeline_release(ctx: CheckContext, version: str) -> CheckResult:
    """The learner put the pipeline back on release `version` after the incident started."""
    since = ctx.scenario_at()
    if since is None:
        return NOT_YET
    with ReleaseStore(ctx.settings.pipeline_db_path) as store:
        active = store.active()
    if active.version != version or active.ts < since:
        return CheckResult(False, f"the pipeline runs release {active.version} (deployed by {active.by})")
    return CheckResult(True, f"release {version} is back, deployed by {active.by} {active.ts - since:.0f}s in")


@check
def alert_resolved(ctx: CheckContext, rules: list[str]) -> CheckResult:
    """Each of the alerts `rules` that fired during the incident has resolved since, and one of them did fire."""
    since = ctx.scenario_at()
    if since is None:
        return NOT_YET
    events = ctx.journal().events([ALERT_FIRING, ALERT_RESOLVED])
    firing = firing_alerts(events)
    still = [rule for rule in rules if rule in firing]
    if still:
        return CheckResult(False, f"{' and '.join(repr(r) for r in still)} still firing (watch `lab alerts`)")
    resolved = [e.payload["rule"] for e in events if e.kind == ALERT_RESOLVED and e.ts >= since]
    done = [rule for rule in rules if rule in resolved]
    if not done:
        return CheckResult(False, _none_of(rules, "fired and resolved since the incident started"))
    return CheckResult(True, f"{' and '.join(repr(r) for r in done)} resolved")


def _actions(ctx: CheckContext, action: str, since: float) -> list[dict[str, Any]]:
    events = ctx.journal().events([LEARNER_ACTION], since=since)
    return [e.payload for e in events if e.payload.get("action") == action]


def _champion_since(ctx: CheckContext, ts: float) -> list[AliasEntry]:
    """The @champion changes the alias history holds since `ts`."""
    changes = history(ctx.journal().events([ALIAS_CHANGED], since=ts), model=ctx.settings.model_name, alias=CHAMPION)
    return changes


@check
def canary_started(ctx: CheckContext, max_weight: float) -> CheckResult:
    """The learner started a canary with `lab canary start` at a share of at most `max_weight`."""
    started = _actions(ctx, CANARY_START, ctx.lab_started_at)
    if not started:
        return CheckResult(False, "no canary started since the lab started (`lab canary start VERSION --weight 0.1`)")
    small = [a for a in started if a["weight"] <= max_weight]
    if not small:
        return CheckResult(
            False, f"your canary took {started[-1]['weight']:.0%} of the traffic; start it at {max_weight:.0%} or less"
        )
    return CheckResult(True, f"version {small[-1]['version']} went out as a canary at {small[-1]['weight']:.0%}")


@check
def canary_traffic(ctx: CheckContext, min_count: int) -> CheckResult:
    """The version the learner shipped as a canary answered at least `min_count` requests since the lab started."""
    started = _actions(ctx, CANARY_START, ctx.lab_started_at)
    if not started:
        return CheckResult(False, "no canary started yet")
    version = started[-1]["version"]
    log = PredictionLog(ctx.settings.prediction_log_path)
    try:
        count = log.count(since=ctx.lab_started_at, model_version=version)
    finally:
        log.close()
    return CheckResult(
        count >= min_count, f"your canary (version {version}) answered {count} request(s), {min_count} needed"
    )


@check
def canary_aborted(ctx: CheckContext) -> CheckResult:
    """After the incident started, the learner aborted the canary, and the champion is the one from before."""
    scenario = ctx.scenario()
    if scenario is None:
        return NOT_YET
    state = ctx.registry.model(ctx.settings.model_name)
    aliases = state.aliases if state else {}
    if CHALLENGER in aliases:
        weight = state.canary_weight if state else 0.0
        return CheckResult(False, f"the canary still runs: version {aliases[CHALLENGER]} gets {weight:.0%}")
    if not _actions(ctx, CANARY_ABORT, scenario.ts):
        return CheckResult(False, "the canary ended without `lab canary abort`; the grader counts the abort")
    before, now = scenario.payload.get("aliases_before", {}).get(CHAMPION), aliases.get(CHAMPION)
    if now != before:
        return CheckResult(False, f"@champion moved from version {before} to {now} during the incident")
    return CheckResult(True, f"canary aborted; @champion is still version {before}")


@check
def promoted_through_gate(ctx: CheckContext) -> CheckResult:
    """The learner promoted a version to @champion with `lab model promote`, and it passed the validation gate."""
    promoted = [
        a
        for a in _actions(ctx, PROMOTE, ctx.lab_started_at)
        if a.get("alias") == CHAMPION and not a.get("forced") and a.get("gate")
    ]
    if not promoted:
        return CheckResult(False, "no version promoted through the gate since the lab started (`lab model promote V`)")
    last = promoted[-1]
    scores = ", ".join(f"version {v} {m['accuracy']:.3f}" for v, m in last["gate"].items())
    return CheckResult(True, f"version {last['version']} passed the gate (holdout accuracy: {scores})")


@check
def champion_restored(ctx: CheckContext) -> CheckResult:
    """After the incident started, the learner put @champion back on the version that held it before the incident."""
    scenario = ctx.scenario()
    if scenario is None:
        return NOT_YET
    good, now = scenario.payload.get("aliases_before", {}).get(CHAMPION), ctx.alias_version(CHAMPION)
    if now != good:
        return CheckResult(False, f"@champion is version {now}, not the last good one; read `lab model history`")
    changes = _champion_since(ctx, scenario.ts)
    if not changes or changes[-1].after != good or changes[-1].via == OUTSIDE:
        return CheckResult(False, f"@champion is version {now}, but not by your rollback (`lab model rollback`)")
    return CheckResult(True, f"@champion is back on version {good}, the last good one ({changes[-1].via})")


@check
def incident_diagnosed(ctx: CheckContext, reveal: bool = False) -> CheckResult:
    """The learner declared a diagnosis of the lab's incident. While a blind incident runs, the check neither
    confirms nor denies it (any declaration passes) unless the lab says `reveal: true` (teaching feedback); once
    the incident is over, or with `reveal`, it passes only on the right one. Its words never name the diagnosis."""
    graded = ctx.incident()
    if graded is None:
        return NOT_YET
    if graded.blind and not graded.finished and not reveal:
        if graded.detected_at is None and not graded.wrong_declarations:
            return CheckResult(False, "no diagnosis declared yet")
        return CheckResult(True, "declared; whether it is right shows once the incident is over (`lab grade`)")
    if graded.detected_at is None:
        wrong = graded.wrong_declarations
        return CheckResult(
            False, f"not the right diagnosis yet ({wrong} wrong)" if wrong else "no diagnosis declared yet"
        )
    return CheckResult(
        True, f"diagnosed {graded.ttd:.0f}s after the incident began ({graded.wrong_declarations} wrong)"
    )


@check
def incident_remediated(ctx: CheckContext) -> CheckResult:
    """The lab's incident was remediated by the learner: healthy for the drill's hold time after their fix."""
    graded = ctx.incident()
    if graded is None:
        return NOT_YET
    if graded.remediated_at is None:
        if graded.outcome == "self-healed":
            return CheckResult(False, "the incident ended without a fix of yours; it cannot be credited")
        return CheckResult(False, "not remediated yet: after your fix the service must stay healthy for a while")
    return CheckResult(True, f"remediated {graded.ttr:.0f}s after the incident began")


@check
def incident_note(ctx: CheckContext, file: str, tolerance: float = 60.0, began_tolerance: float = 120.0) -> CheckResult:
    """The incident note in the workspace is filled in, and its diagnosis and timeline match the journal: began
    (first fault), detected (the right declaration) and mitigated (the move credited), within the tolerances (s)."""
    graded = ctx.incident()
    if graded is None:
        return NOT_YET
    mitigated = graded.mitigated_at or graded.fixed_at  # the impact may have stopped on its own before the fix
    if graded.detected_at is None or mitigated is None:
        return CheckResult(False, "diagnose and remediate the incident first, then write the note")
    path = ctx.workspace / file
    if not path.is_file():
        return CheckResult(False, f"no note at {path} yet: fill in the template")
    reference = Reference(graded.diagnosis, graded.injected_at, graded.detected_at, mitigated)
    problems = judge(parse(path.read_text()), reference, tolerance, began_tolerance)
    if problems:
        return CheckResult(False, "; ".join(problems))
    return CheckResult(True, "the note is complete and its diagnosis and timeline match the journal")


@check
def levers_rehearsed(ctx: CheckContext) -> CheckResult:
    """Since the lab started and before its first incident, the learner took the model out of some decisions
    (`lab feature throttle` or `disable`) and then put it back on all of them (`lab feature enable`). A lever pulled
    in an incident later does not undo the rehearsal."""
    before = ctx.scenario_at() or float("inf")
    moves = [
        e.payload.get("action")
        for e in ctx.journal().events([LEARNER_ACTION], since=ctx.lab_started_at)
        if e.payload.get("action") in (FEATURE_THROTTLE, FEATURE_DISABLE, FEATURE_ENABLE) and e.ts < before
    ]
    if not any(m != FEATURE_ENABLE for m in moves):
        return CheckResult(False, "the model still decides every request: try `lab feature throttle 0.5`")
    if moves[-1] != FEATURE_ENABLE:
        return CheckResult(False, "the model is switched off for some requests: `lab feature enable` puts it back")
    return CheckResult(True, "throttled, then the model back on every request")


@check
def incident_handled(ctx: CheckContext, incident: int) -> CheckResult:
    """The lab's incident `incident` (0: the first) is over, and the learner declared a diagnosis, pulled a lever
    (rollback, disable, throttle) and remediated it; then whether the diagnosis was right and how the lever rates.
    It passes only once the drill has ended, so the next incident never waits on this one's runner."""
    graded = ctx.incident(incident)
    if graded is None:
        return NOT_YET
    if graded.finished and graded.remediated_at is None:  # its time limit: the lab goes on, the grade keeps it
        return CheckResult(True, f"over without a fix of yours ({graded.outcome}); `lab grade` counts it")
    if graded.detected_at is None and not graded.wrong_declarations:
        return CheckResult(False, "no diagnosis declared yet (`lab declare --list`)")
    if graded.decision is None:
        return CheckResult(False, "no lever pulled yet: throttle, roll back or disable")
    if graded.remediated_at is None:
        return CheckResult(False, "not remediated yet: after your moves the service must stay safe for a while")
    done = f"{graded.decision} first, remediated {graded.ttr:.0f}s after it began"
    if not graded.finished:
        return CheckResult(False, f"{done}; the situation ends once the sandbox is steady again (a minute or two)")
    diagnosis = "right diagnosis" if graded.detected_at is not None else f"the diagnosis was {graded.diagnosis}"
    served = "not recorded" if graded.blast_radius is None else str(graded.blast_radius)
    return CheckResult(True, f"{done}: {graded.verdict} here; {diagnosis}; unsafe decisions served first: {served}")


@check
def decision_note(ctx: CheckContext, file: str, incidents: int, tolerance: float = 0.2) -> CheckResult:
    """The decision note in the workspace names, per incident, the lever pulled first, why, and the blast radius
    (within `tolerance` of the grader's count, or 5 decisions), once every incident is over."""
    grades = [g for n in range(incidents) if (g := ctx.incident(n)) is not None and g.finished]
    if len(grades) < incidents:
        return CheckResult(False, "handle every situation first (each must be over), then write the note")
    path = ctx.workspace / file
    if not path.is_file():
        return CheckResult(False, f"no note at {path} yet: fill in the template")
    situations = [decisions.Situation(g.decision, g.blast_radius) for g in grades]
    problems = decisions.judge(path.read_text(), situations, tolerance)
    if problems:
        return CheckResult(False, "; ".join(problems))
    return CheckResult(True, "the note is complete and its levers and blast radii match the record")


def run_check(name: str, ctx: CheckContext, args: dict[str, Any]) -> CheckResult:
    """Run one check; a failure to reach a service is a failed check with the reason, not a crash."""
    try:
        return CATALOG[name](ctx, **args)
    except LabError as exc:
        return CheckResult(False, str(exc))
    except Exception as exc:  # a check reads live services: any failure there fails the step, with the reason
        return CheckResult(False, f"could not check: {type(exc).__name__}: {exc}")
