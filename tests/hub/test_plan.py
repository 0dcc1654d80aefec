"""The class hub's pure parts: the class as data, each learner's state, the secrets kept across `lab hub up`s, and
the Kubernetes values drawn from the same plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lab_runtime.errors import ConfigError
from lab_runtime.hub.plan import HubPlan, k8s_values, numbered, read_users
from lab_runtime.hub.secrets import HubSecrets
from lab_runtime.hub.status import learner_state


def test_numbered_learners_sort_as_they_read() -> None:
    assert numbered(3) == ("learner-01", "learner-02", "learner-03")
    assert numbered(120)[-1] == "learner-120" and numbered(120)[0] == "learner-001"
    with pytest.raises(ConfigError, match="--learners 0: a class is 1 to 500 learners"):
        numbered(0)


def test_a_users_file_skips_comments_and_names_the_line_of_a_bad_name(tmp_path: Path) -> None:
    good = tmp_path / "class.txt"
    good.write_text("# spring cohort\nada\n\ngrace  # team lead\n")
    assert read_users(good) == ("ada", "grace")
    bad = tmp_path / "bad.txt"
    bad.write_text("ada\nGrace Hopper\n")
    with pytest.raises(ConfigError, match=r"bad.txt, line 2: 'Grace Hopper' cannot be a learner's name on the hub"):
        read_users(bad)
    twice = tmp_path / "twice.txt"
    twice.write_text("ada\nada\n")
    with pytest.raises(ConfigError, match="line 2: 'ada' is there twice"):
        read_users(twice)
    with pytest.raises(ConfigError, match="cannot read it"):
        read_users(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"memory": "512M"}, "needs at least 768M"),
        ({"memory": "lots"}, "a number and K, M or G"),
        ({"learners": ("ada", "instructor")}, "'instructor' is the instructor: it cannot be a learner too"),
        ({"learners": ()}, "at least one learner"),
        ({"cpus": 0}, "greater than 0"),
    ],
)
def test_a_plan_refuses_what_no_server_could_run(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HubPlan.model_validate({"learners": ("ada",), **fields})


def test_a_learners_server_volume_and_environment_follow_from_their_name() -> None:
    plan = HubPlan(learners=("ada",), memory="2G")
    assert (plan.server("ada"), plan.volume("ada")) == ("lab-hub-ada", "lab-hub-ada-work")
    assert plan.memory_bytes == 2 << 30
    assert plan.server_environment("ada", "labc_x") == {
        "LAB_LEARNER": "ada",
        "LAB_CONSOLE_URL": "http://lab-hub:8800/services/console",
        "LAB_CONSOLE_TOKEN": "labc_x",
        "LAB_START_TIMEOUT": "300",
    }


def test_secrets_keep_what_was_issued_and_add_what_a_bigger_class_needs() -> None:
    issued: list[str | None] = []

    def issue(learner: str | None) -> str:
        issued.append(learner)
        return f"token-{learner or 'instructor'}"

    first = HubSecrets().completed(HubPlan(learners=("ada",)), issue)
    again = first.completed(HubPlan(learners=("ada", "grace")), issue)
    assert issued == ["ada", None, "grace"]  # ada's token and the instructor's are not issued twice
    assert again.passwords["ada"] == first.passwords["ada"] and again.api_token == first.api_token
    assert set(again.passwords) == {"ada", "grace", "instructor"} and all(len(p) >= 8 for p in again.passwords.values())
    assert again.console_tokens == {"ada": "token-ada", "grace": "token-grace"}


SERVER = {"servers": {"": {"ready": True, "url": "/user/ada/"}}}


@pytest.mark.parametrize(
    ("user", "sandbox", "failure", "expected"),
    [
        (None, None, None, ("unknown", "-", [], "the hub does not know this learner")),
        ({"servers": {}}, None, None, ("stopped", "-", [], None)),
        (
            {"servers": {}},
            None,
            ("ImageNotFound: no such image", 1.0),
            ("failed", "-", [], "ImageNotFound: no such image"),
        ),
        ({"servers": {"": {"ready": False}}}, None, None, ("starting", "-", [], None)),
        (SERVER, None, None, ("running", "starting", [], None)),
        (SERVER, {"services": [{"name": "mlflow", "healthy": True}]}, None, ("running", "healthy", [], None)),
        (
            SERVER,
            {"services": [{"name": "mlflow", "healthy": True}, {"name": "monitor", "healthy": False}]},
            None,
            ("running", "unhealthy", ["monitor"], None),
        ),
    ],
)
def test_a_learners_state_from_the_hub_their_sandbox_and_the_failure_record(
    user: dict[str, object] | None,
    sandbox: dict[str, object] | None,
    failure: tuple[str, float] | None,
    expected: tuple[str, str, list[str], str | None],
) -> None:
    state = learner_state("ada", user, sandbox, failure)
    assert (state.server, state.sandbox, state.unhealthy, state.reason) == expected
    assert state.ready == (expected[:2] == ("running", "healthy"))


def test_kubernetes_values_carry_the_plans_class_image_limits_and_culling() -> None:
    plan = HubPlan(learners=("ada", "grace"), memory="2G", cpus=0.5, cull_idle=1800)
    values = k8s_values(plan, "registry.school.edu/lab")
    assert values["singleuser"]["image"] == {"name": "registry.school.edu/lab/lab-learner", "tag": "latest"}
    assert values["singleuser"]["memory"]["limit"] == "2G" and values["singleuser"]["cpu"]["limit"] == 0.5
    assert values["hub"]["config"]["Authenticator"] == {
        "allowed_users": ["ada", "grace"],
        "admin_users": ["instructor"],
    }
    assert values["cull"] == {"enabled": True, "timeout": 1800, "every": 300}
