"""The class hub's secrets, kept in its folder (secrets.json, mode 0600) across `lab hub up`s: each person's
password, the token `lab hub` calls the hub's API with, and each learner's console token (their agent's)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lab_runtime.hub.plan import HubPlan

FILE = "secrets.json"
FAILURES = "failures"  # in the hub's folder: <learner>.json, why their server last failed to start


class HubSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_token: str = ""
    passwords: dict[str, str] = {}
    console_tokens: dict[str, str] = {}  # learner -> their agent's token
    console_instructor: str = ""  # an instructor token of the console, for `lab hub status`

    @classmethod
    def read(cls, folder: Path) -> HubSecrets:
        path = folder / FILE
        return cls.model_validate_json(path.read_text()) if path.exists() else cls()

    def write(self, folder: Path) -> None:
        path = folder / FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=1))

    def completed(self, plan: HubPlan, issue: Callable[[str | None], str]) -> HubSecrets:
        """These secrets with whatever `plan` needs and they lack; `issue(learner or None)` makes a console token
        (None: an instructor's). Existing ones are kept, so a learner keeps their password and token."""
        passwords = dict(self.passwords)
        for name in (*plan.learners, plan.instructor):
            passwords.setdefault(name, secrets.token_urlsafe(9))
        tokens = {name: self.console_tokens.get(name) or issue(name) for name in plan.learners}
        return HubSecrets(
            api_token=self.api_token or secrets.token_hex(32),
            passwords=passwords,
            console_tokens={**self.console_tokens, **tokens},
            console_instructor=self.console_instructor or issue(None),
        )
