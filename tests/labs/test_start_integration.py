"""`lab start` on real MLflow and model service: a lab that starts from a served model trains and promotes a first
@champion when there is none, says so, and leaves an existing one alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import lab, ok
from tests.lab_runtime.services import running_services

pytestmark = pytest.mark.integration


def test_a_lab_that_needs_a_champion_trains_one_once_then_serves_it(tmp_path: Path) -> None:
    with running_services(tmp_path / "state", "mlflow", "model-service") as settings:
        first = ok(lab("start", "lab-02"))
        assert f"this lab starts from a served model: training '{settings.model_name}'" in first
        assert "version 1 is @champion (accuracy 0." in first
        again = ok(lab("start", "lab-03"))
        assert "starts from a served model" not in again and "is @champion" not in again  # it serves already
        assert (Path(settings.workspace_dir) / "lab-03" / "canary.yaml").is_file()
