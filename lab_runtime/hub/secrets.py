"""The class hub's secrets, kept in its folder (secrets.json, mode 0600) across `lab hub up`s: each person's
password, the token `lab hub` calls the hub's API with, and each learner's console token (their agent's)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lab_runtime.files.atomic import write_atomic
from lab_runtime.hub.plan import HubPlan

FILE = "secrets.json"


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
        """Swapped in whole, readable by its owner only."""
        write_atomic(folder / FILE, self.model_dump_json(indent=1).encode(), mode=0o600)

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
