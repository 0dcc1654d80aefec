"""What `lab drill run --detach` and `lab drill gameday` refuse before anything starts: a drill the sandbox's
runtime cannot run is one line naming the runtime it needs."""

from __future__ import annotations

import pytest

from drills.spec import find_drill
from tests.cli import lab, one_line_error


@pytest.mark.usefixtures("lab_env")
def test_a_compose_only_drill_is_refused_on_the_local_runtime_before_a_runner_starts() -> None:
    one_line_error(lab("drill", "run", "incident-service-starved", "--detach"), "needs the compose runtime")
    refused = lab("drill", "gameday", "--drills", "incident-error-burst,incident-service-starved", "--between", "0s",
                  "1s", "--detach")  # fmt: skip
    one_line_error(refused, "drill incident-service-starved needs the compose runtime")
    assert "incident-error-burst" not in refused.stderr


def test_the_refusal_says_what_runs_the_drill() -> None:
    starved = find_drill("incident-service-starved")
    assert starved.runtime_refusal("compose") is None
    assert starved.runtime_refusal("local") == (
        "drill incident-service-starved needs the compose runtime (its faults act on containers); the sandbox runs "
        "on local: `lab down`, then `lab up --runtime compose`"
    )
    assert find_drill("incident-error-burst").runtime_refusal("local") is None
