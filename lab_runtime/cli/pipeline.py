"""Traffic commands: `lab pipeline status|releases|deploy|rollback` and `lab load`."""

from __future__ import annotations

import typer

from lab_runtime.cli.common import app

pipeline_app = typer.Typer(help="The upstream pipeline that sends production traffic, and its releases.")
app.add_typer(pipeline_app, name="pipeline")
