"""Drill commands: `lab drill list|show|validate|run|status|abort|gameday` and `lab reset`."""

from __future__ import annotations
