"""The `lab` command: the one place that wires runtime, labs, drills and grader together.

Every `LabError` becomes one red line and exit code 1; commands that print a table also take `--json`.
Each module here adds its commands to the one Typer `app`.
"""

from __future__ import annotations

from lab_runtime import clock
from lab_runtime.cli import (  # noqa: F401  (each registers its commands)
    assess,
    capstone,
    common,
    console,
    drill,
    evaluation,
    feature,
    grade,
    hub,
    labs,
    model,
    monitor,
    pipeline,
    policy,
    results,
    review,
    sandbox,
    shadow,
    skills,
)
from lab_runtime.cli.common import app


def main() -> None:
    try:
        common.process_began = clock.process_started()  # the learner's command started when its process did
    except (OSError, ValueError, IndexError):  # no readable /proc: each command is dated when it starts running
        common.process_began = None
    app()


__all__ = ["app", "main"]
