"""The model switch's flag file: what `lab feature` writes, what the service accepts, what it refuses by field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab_runtime.errors import InvalidFlags
from lab_runtime.events import LEARNER_ACTION
from lab_runtime.journal import Journal
from lab_runtime.service.switch import BUILTIN_FLAGS, Switch, definition, read_switch, throttled, write_switch
from tests.cli import lab, one_line_error


@pytest.mark.parametrize(
    ("share", "switch"),
    [(1.0, Switch(mode="on")), (0.0, Switch(mode="off", share=0.0)), (0.25, Switch(mode="throttle", share=0.25))],
)
def test_each_switch_round_trips_through_its_flagd_definition(tmp_path: Path, share: float, switch: Switch) -> None:
    assert throttled(share) == switch
    path = tmp_path / "flags.json"
    write_switch(path, switch)
    assert read_switch(path) == switch


def test_a_throttle_is_a_fractional_split_on_the_request_id() -> None:
    flag = definition(throttled(0.25))["flags"]["credit-model"]
    assert flag["defaultVariant"] == "model"
    assert flag["targeting"] == {"fractional": [{"var": "targetingKey"}, ["model", 25], ["fallback", 75]]}
    assert "targeting" not in definition(throttled(0.0))["flags"]["credit-model"]


def test_the_built_in_flag_file_leaves_the_model_on() -> None:
    assert read_switch(BUILTIN_FLAGS) == Switch(mode="on")


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_0_to_1_is_refused(share: float) -> None:
    with pytest.raises(InvalidFlags, match=f"a throttle share is between 0 and 1, not {share:g}"):
        throttled(share)


def flag(**changes: object) -> dict[str, object]:
    return {"flags": {"credit-model": {**definition(throttled(0.5))["flags"]["credit-model"], **changes}}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON: Expecting property name"),
        (json.dumps({"flags": {}}), "flags: Value error, no flag 'credit-model'"),
        (json.dumps(flag(defaultVariant="nope")), "flags.credit-model.defaultVariant: Input should be 'model' or"),
        (json.dumps(flag(variants={"model": "model"})), 'flags.credit-model: Value error, variants must be {"model"'),
        (json.dumps(flag(state="MAYBE")), "flags.credit-model.state: Input should be 'ENABLED' or 'DISABLED'"),
        (
            json.dumps(flag(targeting={"fractional": [{"var": "targetingKey"}, ["model", 30], ["fallback", 60]]})),
            'flags.credit-model: targeting must be {"fractional": [{"var": "targetingKey"}, ["model", P]',
        ),
        (
            json.dumps(flag(targeting={"if": [True, "model", "fallback"]})),
            'flags.credit-model: targeting must be {"fractional"',
        ),
    ],
)
def test_a_bad_flag_file_is_refused_naming_the_file_and_the_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "flags.json"
    path.write_text(body)
    with pytest.raises(InvalidFlags) as refused:
        read_switch(path)
    assert str(refused.value).startswith(f"{path}: ") and message in str(refused.value), str(refused.value)


def test_lab_feature_writes_the_flag_file_journals_the_move_and_refuses_a_bad_share(lab_env: dict[str, str]) -> None:
    one_line_error(lab("feature", "throttle", "1.5"), "a throttle share is between 0 and 1, not 1.5")
    assert lab("feature", "throttle", "0.3").returncode == 0  # no service answers: the file says what was in force
    flags = Path(lab_env["LAB_STATE_DIR"]) / "flags.json"
    assert read_switch(flags) == Switch(mode="throttle", share=0.3)
    shown = json.loads(lab("feature", "status", "--json").stdout)
    assert (shown["mode"], shown["share"], shown["source"], shown["from_service"]) == (
        "throttle",
        0.3,
        str(flags),
        False,
    )
    assert "model switch off: the fallback decides (was throttled)" in lab("feature", "disable").stdout
    assert lab("feature", "throttle", "1").returncode == 0 and lab("feature", "throttle", "0").returncode == 0
    moves = Journal(Path(lab_env["LAB_STATE_DIR"]) / "journal.db", source="test").events([LEARNER_ACTION])
    assert [(e.payload["action"], e.payload["from"], e.payload["to"]) for e in moves] == [
        ("feature.throttle", 1.0, 0.3),
        ("feature.disable", 0.3, 0.0),
        ("feature.enable", 0.0, 1.0),  # a throttle to every request is an enable, to none a disable
        ("feature.disable", 1.0, 0.0),
    ]
