"""The two forms of the tests' `lab` command agree: exit code, one line of error on stderr, the width of tables; and
the in-process form's environment lasts only for its call."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli import lab, lab_process, ok, one_line_error

LONG = "the bureau now sends income in units of a thousand, and the age band in whole decades from this release on"


def test_both_forms_refuse_in_one_line_and_print_tables_at_the_same_width(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    release = tmp_path / "v2.yaml"
    release.write_text(f"version: v2\nnote: {LONG}\ntransforms:\n  - {{type: scale, feature: income, factor: 1000}}\n")
    ok(lab("pipeline", "ship", str(release)))
    for run in (lab, lab_process):
        one_line_error(run("pipeline", "deploy", "v9"), "no pipeline release 'v9'; releases are v1, v2")
    shown = ok(lab("pipeline", "releases"))
    assert LONG in shown and shown == ok(lab_process("pipeline", "releases"))


def test_the_in_process_form_sets_its_environment_for_the_call_only(lab_env: dict[str, str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    one_line_error(lab("logs", "monitor", env={"LAB_STATE_DIR": str(elsewhere)}), f"({elsewhere / 'logs'}")
    assert os.environ["LAB_STATE_DIR"] == lab_env["LAB_STATE_DIR"]
