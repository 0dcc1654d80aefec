"""Model commands: `lab model ...` and `lab canary ...` (registry aliases, retraining)."""

from __future__ import annotations
