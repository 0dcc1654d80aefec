"""The admin token that guards the model service's fault endpoints (only drills and `lab reset` hold it)."""

from __future__ import annotations

import secrets

from lab_runtime.files.secret import secret_file
from lab_runtime.settings import Settings


def admin_token(settings: Settings) -> str:
    """`LAB_ADMIN_TOKEN`, or the token in `<state>/admin.token`, made (mode 0600) by whoever needs it first."""
    if settings.admin_token:
        return settings.admin_token
    return secret_file(settings.admin_token_path, lambda: secrets.token_urlsafe(24))
