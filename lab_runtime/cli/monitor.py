"""Monitoring commands: `lab monitor status|report|rules`, `lab alerts`, `lab declare`."""

from __future__ import annotations

import typer

from lab_runtime.cli.common import app

monitor_app = typer.Typer(help="The drift and quality monitor, its reports and its alert rules.")
app.add_typer(monitor_app, name="monitor")
