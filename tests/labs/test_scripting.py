"""The solutions' helpers: a read in this process fails as a `lab` process would, naming the command."""

from __future__ import annotations

import pytest

from lab_runtime.labs.scripting import observe


def test_a_failed_read_ends_the_script_naming_the_command_and_its_error(lab_env: dict[str, str]) -> None:
    with pytest.raises(SystemExit, match=r"^`lab check --json` failed: error: no lab started yet; run `lab start"):
        observe("check", "--json")
    unchecked = observe("check", "--json", check=False)
    assert unchecked.returncode == 1 and not unchecked.stdout
    assert "no lab started yet" in unchecked.stderr
