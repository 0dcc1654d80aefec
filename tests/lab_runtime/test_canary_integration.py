"""Canary, promotion gate and alias history against a real sandbox (MLflow, the service, the pipeline's traffic)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from lab_runtime.events import ALIAS_CHANGED, CANARY_ANALYSIS, LEARNER_ACTION
from lab_runtime.journal import Journal
from lab_runtime.modeling.model import Registered, Regression, train_and_register
from lab_runtime.registry import model_ops
from lab_runtime.registry.alias_history import OUTSIDE, AliasEntry, history
from lab_runtime.registry.path import EVAL_AGAINST_TAG, EVAL_REASONS_TAG, EVAL_VERDICT_TAG, GO, NO_GO
from lab_runtime.registry.rest import CANARY_WEIGHT_TAG, CHALLENGER, CHAMPION
from tests.cli import lab, one_line_error
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("canary") / "state", versions=2) as sandbox:
        yield sandbox


def evaluated(box: Sandbox, registered: Registered, verdict: str = GO, reasons: str = "") -> Registered:
    """`registered` with the tags `lab eval run` leaves on a version (the canary's gate reads only them)."""
    client = MlflowClient(box.settings.mlflow_url)
    client.set_model_version_tag(box.settings.model_name, registered.version, EVAL_VERDICT_TAG, verdict)
    client.set_model_version_tag(box.settings.model_name, registered.version, EVAL_REASONS_TAG, reasons)
    client.set_model_version_tag(box.settings.model_name, registered.version, EVAL_AGAINST_TAG, box.versions[0].version)
    return registered


@pytest.fixture(scope="module")
def twin(box: Sandbox) -> Registered:
    """A healthy candidate: v1's model with a little less regularisation (it agrees with v1 on 99.95 % of the
    holdout), so a quality check compares like with like and only sampling noise separates the two. Evaluated."""
    return evaluated(box, train_and_register(box.settings.mlflow_url, box.settings.model_name, C=0.5))


@pytest.fixture(scope="module")
def noisy(box: Sandbox) -> Registered:
    return train_and_register(
        box.settings.mlflow_url, box.settings.model_name, regression=Regression(noisy_labels=0.35)
    )


@pytest.fixture(scope="module")
def slow(box: Sandbox) -> Registered:
    """Slow to answer, which an evaluation on a test set does not see: it passed one."""
    return evaluated(
        box,
        train_and_register(
            box.settings.mlflow_url, box.settings.model_name, regression=Regression(slow_predict_ms=300)
        ),
    )


@pytest.fixture(autouse=True)
def champion_v1_and_no_canary(box: Sandbox) -> Iterator[None]:
    """Every test starts and ends with version 1 as @champion and no canary."""
    yield
    settings = box.settings
    model_ops.set_canary_weight(settings, 0.0)
    model_ops.delete_alias(settings, CHALLENGER)
    model_ops.set_alias(settings, CHAMPION, box.versions[0].version)
    wait_for(lambda: served(box)["champion"] == box.versions[0].version and served(box)["challenger"] is None, 30)


def served(box: Sandbox) -> dict[str, Any]:
    return dict(httpx.get(f"{box.settings.service_url}/model").json())


def journal(box: Sandbox) -> Journal:
    return Journal(box.settings.journal_path, source="test")


def entries(box: Sandbox, alias: str, since: float) -> list[AliasEntry]:
    changes = journal(box).events([ALIAS_CHANGED], since=since)
    return history(changes, model=box.settings.model_name, alias=alias)


def actions(box: Sandbox, action: str, since: float = 0.0) -> list[dict[str, Any]]:
    events = journal(box).events([LEARNER_ACTION], since=since)
    return [e.payload for e in events if e.payload.get("action") == action]


def test_alias_changes_made_with_a_plain_mlflow_client_are_in_the_history_within_2s(box: Sandbox) -> None:
    settings, v2 = box.settings, box.versions[1].version
    client = MlflowClient(settings.mlflow_url, registry_uri=settings.mlflow_url)  # not wrapped by this project
    since = time.time()
    client.set_registered_model_alias(settings.model_name, "staging", v2)
    wait_for(lambda: len(entries(box, "staging", since)) == 1, 2.0, "the change in the history")
    client.delete_registered_model_alias(settings.model_name, "staging")
    wait_for(lambda: len(entries(box, "staging", since)) == 2, 2.0, "the removal in the history")
    set_, removed = entries(box, "staging", since)
    assert (set_.before, set_.after, set_.via, set_.learner) == (None, v2, OUTSIDE, None)
    assert (removed.before, removed.after, removed.via) == (v2, None, OUTSIDE)
    assert removed.what == f"@staging removed (was version {v2})"

    shown = lab("model", "history", "--alias", "staging")
    assert shown.returncode == 0, shown
    assert "outside the lab" in shown.stdout and "(removed)" in shown.stdout
    listed = json.loads(lab("model", "history", "--alias", "staging", "--json").stdout)
    assert [(e["before"], e["after"]) for e in listed[-2:]] == [(None, v2), (v2, None)]


def test_the_gate_refuses_a_worse_version_force_overrides_it_and_history_says_how(
    box: Sandbox, noisy: Registered
) -> None:
    settings, v1 = box.settings, box.versions[0].version
    since = time.time()
    refused = lab("model", "promote", noisy.version)
    assert refused.returncode == 1
    assert f"version {noisy.version} failed the validation gate: accuracy 0.6" in refused.stderr
    assert "against the champion's 0.8" in refused.stderr and "nothing changed" in refused.stderr
    assert "--force" in refused.stderr and "Traceback" not in refused.stdout + refused.stderr
    assert model_ops.aliases(settings)[CHAMPION] == v1 and actions(box, "model.promote", since) == []

    forced = lab("model", "promote", noisy.version, "--force", "--json")
    assert forced.returncode == 0, forced
    assert json.loads(forced.stdout) == {
        "version": noisy.version, "alias": "champion", "from": v1, "changed": True, "forced": True, "gate": {}
    }  # fmt: skip
    assert actions(box, "model.promote", since)[-1]["forced"] is True
    wait_for(lambda: len(entries(box, CHAMPION, since)) == 1, 2.0, "the promotion in the history")
    promoted = entries(box, CHAMPION, since)[0]
    assert (promoted.before, promoted.after, promoted.via, promoted.learner) == (
        v1, noisy.version, "lab model promote", settings.learner
    )  # fmt: skip

    back = lab("model", "rollback")
    assert back.returncode == 0 and f"from version {noisy.version} to {v1}" in back.stdout
    wait_for(lambda: len(entries(box, CHAMPION, since)) == 2, 2.0, "the rollback in the history")
    assert entries(box, CHAMPION, since)[1].via == "lab model rollback"


def test_a_version_within_the_allowed_drop_passes_the_gate_and_is_served(box: Sandbox, twin: Registered) -> None:
    settings = box.settings
    v2 = box.versions[1].version  # C=0.001: three points of accuracy below v1 on the holdout
    assert lab("model", "promote", v2).returncode == 1
    passed = lab("model", "promote", v2, "--max-drop", "0.05", "--json")
    assert passed.returncode == 0, passed
    gate = json.loads(passed.stdout)["gate"]
    assert set(gate) == {v2, box.versions[0].version} and gate[v2]["accuracy"] > 0.7
    assert model_ops.aliases(settings)[CHAMPION] == v2
    wait_for(lambda: served(box)["champion"] == v2, 30, "the promoted version served")
    again = lab("model", "promote", v2, "--max-drop", "0.05")
    assert again.returncode == 0 and "nothing changed" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model", "promote", "99"], "has no version '99'; its versions: 1, 2"),
        (["model", "promote", "1", "--max-drop", "2"], "--max-drop is an accuracy difference between 0 and 1"),
        (["canary", "start", "99"], "has no version '99'"),
        (["canary", "start", "2", "--weight", "1.5"], "a canary weight is a share above 0 and at most 1, not 1.5"),
        (["canary", "start", "2", "--weight", "0"], "a canary weight is a share above 0 and at most 1, not 0"),
        (["canary", "start", "1"], "version 1 is @champion already; a canary needs another version"),
        (["canary", "set", "0.5"], "there is no @challenger, so no canary to re-weight; nothing changed"),
        (["canary", "promote"], "there is no @challenger, so no canary to promote; nothing changed"),
        (["canary", "status", "--window", "soon"], "--window: 'soon' is not a duration"),
        (["canary", "start", "2", "--weight", "inf"], "a canary weight is a share above 0 and at most 1, not inf"),
        (["canary", "start", "2", "--weight", "nan"], "a canary weight is a share above 0 and at most 1, not nan"),
        (["canary", "start", "01"], "version 1 is @champion already"),  # the registry's spelling of "01" is 1
        (["model", "promote", "2", "--alias", "challenger"], "@challenger is the canary's alias: `lab canary start"),
        (["model", "history", "--alias", "bogus"], "no change of @bogus in the history of 'credit-risk'; aliases "),
    ],
)
def test_bad_input_gets_one_line_and_changes_nothing(box: Sandbox, args: list[str], message: str) -> None:
    before = MlflowClient(box.settings.mlflow_url).get_registered_model(box.settings.model_name)
    result = lab(*args)
    assert result.returncode == 1, result
    assert message in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stdout == "", result.stdout  # nothing before the refusal, e.g. that a gate is scoring
    after = MlflowClient(box.settings.mlflow_url).get_registered_model(box.settings.model_name)
    assert (after.aliases, after.tags) == (before.aliases, before.tags)


def test_a_second_canary_and_out_of_range_weights_are_refused(box: Sandbox, twin: Registered) -> None:
    v2 = box.versions[1].version
    assert lab("canary", "start", twin.version, "--weight", "0.2").returncode == 0
    busy = lab("canary", "start", v2)
    assert busy.returncode == 1 and f"a canary of version {twin.version} is running" in busy.stderr
    for weight in ("1.01", "-0.1", "nan"):
        bad = lab("canary", "set", "--", weight)
        assert bad.returncode == 1 and "a canary weight is a share between 0 and 1" in bad.stderr, bad
    assert model_ops.aliases(box.settings)[CHALLENGER] == twin.version
    tags = MlflowClient(box.settings.mlflow_url).get_registered_model(box.settings.model_name).tags
    assert tags[CANARY_WEIGHT_TAG] == "0.2"


def test_operations_while_the_registry_is_down_are_one_line_and_change_nothing(box: Sandbox, twin: Registered) -> None:
    def registry() -> tuple[dict[str, str], dict[str, str]]:
        model = MlflowClient(box.settings.mlflow_url).get_registered_model(box.settings.model_name)
        return dict(model.aliases), dict(model.tags)

    before = registry()
    actions_before = len(journal(box).events([LEARNER_ACTION]))
    box.backend.pause("mlflow")
    try:
        results = [
            lab("model", "promote", twin.version),
            lab("model", "promote", twin.version, "--force"),
            lab("canary", "start", twin.version),
            lab("canary", "set", "0.3"),
            lab("canary", "abort"),
        ]
    finally:
        box.backend.resume("mlflow")
    for result in results:
        one_line_error(result, "MLflow at")
        assert "is it up?" in result.stderr, result
    assert registry() == before and len(journal(box).events([LEARNER_ACTION])) == actions_before


def test_a_canary_start_set_status_promote_cycle_on_live_traffic(box: Sandbox, twin: Registered) -> None:
    settings, v1 = box.settings, box.versions[0].version
    since = time.time()
    started = lab("canary", "start", twin.version, "--weight", "0.5")
    assert started.returncode == 0 and "50% of the traffic" in started.stdout
    wait_for(lambda: served(box)["challenger"] == twin.version, 30, "the challenger served")
    assert served(box)["canary_weight"] == 0.5

    def status(*args: str) -> dict[str, Any]:
        shown = lab("canary", "status", *(args or ("--window", "5s", "--min-labels", "60")), "--json")
        return dict(json.loads(shown.stdout))

    wait_for(lambda: (status()["challenger"] or {}).get("accuracy") is not None, 30, "challenger accuracy")
    report = status()
    assert report["weight"] == 0.5 and report["challenger"]["version"] == twin.version
    assert report["champion"]["version"] == v1 and report["champion"]["requests"] > 0
    for variant in ("champion", "challenger"):
        stats = report[variant]
        assert stats["requests"] > 0 and stats["error_rate"] == 0.0 and 0 < stats["latency_p50_ms"] < 250
    assert report["challenger"]["labelled"] >= 60 and abs(report["accuracy_drop"]) < 0.2
    table = lab("canary", "status", "--window", "5s", "--min-labels", "60")
    assert "challenger vs champion: error rate 0.0% vs 0.0%" in table.stdout

    assert lab("canary", "set", "0.2").returncode == 0
    wait_for(lambda: served(box)["canary_weight"] == 0.2, 1.5, "the new share in the service")

    tries: list[str] = []

    def promoted_through_the_gate() -> bool:  # refused (one line, nothing changed) until the evidence is in
        tried = lab("canary", "promote")
        tries.append(tried.stderr or tried.stdout)
        return tried.returncode == 0

    wait_for(promoted_through_the_gate, 60, "the evidence the production gate needs")
    assert all(t.startswith("error: promotion refused: the canary analysis of version") for t in tries[:-1]), tries
    promoted = tries[-1]
    assert f"version {twin.version} is @champion (was version {v1})" in promoted
    assert model_ops.aliases(settings) == {CHAMPION: twin.version}
    wait_for(lambda: served(box)["champion"] == twin.version and served(box)["challenger"] is None, 30)
    assert [a["action"] for a in journal(box).events([LEARNER_ACTION], since=since) for a in [a.payload]] == [
        "canary.start", "canary.set", "canary.promote"
    ]  # fmt: skip
    wait_for(lambda: len(entries(box, CHALLENGER, since)) == 2, 2.0, "challenger set and removed")
    assert {e.via for e in entries(box, CHALLENGER, since)} == {"lab canary start", "lab canary promote"}
    assert entries(box, CHAMPION, since)[-1].via == "lab canary promote"


def test_the_path_gates_refuse_a_canary_without_a_go_and_production_without_the_analysis(
    box: Sandbox, noisy: Registered
) -> None:
    settings, version, began = box.settings, noisy.version, time.time()
    before = model_ops.state(settings)
    unevaluated = lab("canary", "start", version)
    one_line_error(unevaluated, f"canary refused: version {version} has no evaluation; a canary needs one")
    assert f"`lab eval run {version}`" in unevaluated.stderr and "--force" in unevaluated.stderr
    evaluated(box, noisy, NO_GO, "accuracy 0.612 against the champion's 0.804")
    refused = lab("canary", "start", version)
    one_line_error(refused, f"the evaluation of version {version} says no-go: accuracy 0.612 against the champion's")
    direct = lab("model", "promote", version)  # the direct way to @champion does not slip past a no-go either
    one_line_error(direct, f"promotion refused: the evaluation of version {version} says no-go: accuracy 0.612")
    assert model_ops.state(settings) == before and actions(box, "canary.start", began) == []

    since = time.time()
    forced = lab("canary", "start", version, "--weight", "0.01", "--force", "--json")
    assert json.loads(forced.stdout) == {"challenger": version, "weight": 0.01, "forced": True}
    assert actions(box, "canary.start", since)[-1]["forced"] is True
    early = lab("canary", "promote")  # about one call in a hundred: nowhere near the 100 the gate needs
    one_line_error(early, f"promotion refused: the canary analysis of version {version} does not pass: only ")
    assert "challenger calls, 100 needed for a verdict" in early.stderr and "`lab canary status`" in early.stderr
    assert model_ops.aliases(settings)[CHAMPION] == box.versions[0].version
    assert lab("canary", "promote", "--force").returncode == 0
    assert actions(box, "canary.promote", since)[-1]["forced"] is True
    path = json.loads(lab("model", "history", "--version", version, "--json").stdout)
    assert [(s["stage"], s["what"]) for s in path[-2:]] == [
        ("canary", "canary started at 1% (forced)"), ("production", "canary promoted to @champion (forced)")
    ]  # fmt: skip


# On the tests' clock (a tenth of the sandbox's): a decision every 2 s.
# The p99 of an interval's 20-50 requests is about their slowest: on a machine loaded by three workers a healthy
# version's slowest answer was seen at 219 ms. The slow version answers in 300 ms or more, always above 280.
ANALYSIS = """
interval: 20s
step_weight: 0.25
max_weight: 0.5
failure_limit: 2
min_requests: 5
thresholds: {max_error_rate: 0.05, max_latency_p99_ms: 280, max_accuracy_drop: 0.15, min_labels: 100}
"""


def analysis_file(tmp_path: Path) -> Path:
    path = tmp_path / "canary.yaml"
    path.write_text(ANALYSIS)
    return path


def test_the_analysis_steps_a_healthy_canary_up_and_promotes_it(box: Sandbox, twin: Registered, tmp_path: Path) -> None:
    since = time.time()
    assert lab("canary", "start", twin.version, "--weight", "0.25").returncode == 0
    wait_for(lambda: served(box)["challenger"] == twin.version, 30, "the challenger served")
    result = lab("canary", "analyze", str(analysis_file(tmp_path)))
    assert result.returncode == 0, result
    assert "canary promoted" in result.stdout
    decisions = [e.payload for e in journal(box).events([CANARY_ANALYSIS], since=since)]
    assert [d["decision"] for d in decisions] == ["start", "step", "promote"]
    step = decisions[1]
    assert (step["weight_before"], step["weight"], step["failed"]) == (0.25, 0.5, [])
    assert step["measured"]["requests"] >= 5 and step["measured"]["error_rate"] == 0.0
    assert model_ops.aliases(box.settings)[CHAMPION] == twin.version


def test_the_analysis_aborts_a_slow_canary_and_journals_what_it_measured(
    box: Sandbox, slow: Registered, tmp_path: Path
) -> None:
    since = time.time()
    assert lab("canary", "start", slow.version, "--weight", "0.25").returncode == 0
    wait_for(lambda: served(box)["challenger"] == slow.version, 30, "the slow challenger served")
    result = lab("canary", "analyze", str(analysis_file(tmp_path)))
    assert result.returncode == 1 and "canary aborted" in result.stdout
    decisions = [e.payload for e in journal(box).events([CANARY_ANALYSIS], since=since)]
    assert [d["decision"] for d in decisions] == ["start", "hold", "abort"]
    for failed in decisions[1:]:
        assert failed["measured"]["latency_p99_ms"] >= 300 and "p99 latency" in failed["failed"][0]
        assert failed["weight"] == (0.25 if failed["decision"] == "hold" else 0.0)
    assert CHALLENGER not in model_ops.aliases(box.settings)
    assert actions(box, "canary.abort", since)[-1]["via"] == "lab canary analyze"


def test_a_bad_analysis_file_is_one_line_naming_file_and_field(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("interval: soon\nstep_weight: 0.6\nmax_weight: 0.5\nthresholds: {max_latency: 3}\n")
    result = lab("canary", "analyze", str(path))
    assert result.returncode == 1 and str(path) in result.stderr
    assert "interval: Value error, 'soon' is not a duration" in result.stderr
    assert "thresholds.max_latency: Extra inputs are not permitted" in result.stderr
    nothing = lab("canary", "analyze", str(analysis_file(tmp_path)))
    assert nothing.returncode == 1 and "there is no @challenger to analyse" in nothing.stderr
