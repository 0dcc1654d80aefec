"""The registry watcher: journals every alias change (`registry.alias_changed`), whoever made it.

MLflow keeps no history of which version held an alias; this process polls every registered model
and records each difference, so changes made in the MLflow UI or by a plain `MlflowClient` are kept.
Each change says how it was made: by the lab command that requested it, or outside the lab's commands
(see `lab_runtime.registry.alias_history`).
"""

from __future__ import annotations

import logging
import time

from lab_runtime.errors import LabError
from lab_runtime.events import ALIAS_CHANGED, ALIAS_REQUESTED
from lab_runtime.journal import Event, Journal
from lab_runtime.registry.alias_history import REQUEST_LIFETIME, attribute, change_payload
from lab_runtime.registry.rest import Registry, alias_changes
from lab_runtime.settings import Settings, load_settings

log = logging.getLogger("lab_runtime.registry.watcher")


def known_aliases(events: list[Event]) -> dict[str, dict[str, str]]:
    """The alias map {model: {alias: version}} that a sequence of alias-change events leads to."""
    state: dict[str, dict[str, str]] = {}
    for event in events:
        aliases = state.setdefault(event.payload["model"], {})
        if event.payload.get("after") is None:
            aliases.pop(event.payload["alias"], None)
        else:
            aliases[event.payload["alias"]] = event.payload["after"]
    return state


class RegistryWatcher:
    def __init__(self, settings: Settings) -> None:
        self.registry = Registry(settings.mlflow_url)
        self.journal = Journal(settings.journal_path, source="registry-watcher", learner=settings.learner)
        self.heartbeat = settings.run_dir / "registry-watcher.heartbeat"
        # Start from what the journal knows, so changes made while the watcher was down are recorded too.
        self.known = known_aliases(self.journal.events([ALIAS_CHANGED]))
        self.used_requests: set[int] = set()

    def poll_once(self) -> int:
        """Journal the alias changes since the last poll; returns how many there were."""
        snapshot = {m.name: m.aliases for m in self.registry.all_models()}
        changes = alias_changes(self.known, snapshot)
        if changes:
            now = time.time()
            requests = self.journal.events([ALIAS_REQUESTED], since=now - REQUEST_LIFETIME)
            for change in changes:
                request = attribute(change, requests, self.used_requests, now)
                self.journal.append(ALIAS_CHANGED, change_payload(change, request))
        self.known = snapshot
        return len(changes)

    def run(self, interval: float) -> None:
        while True:
            try:
                self.poll_once()
            except LabError as exc:  # MLflow down or late: keep watching
                log.warning("%s", exc)
            self.heartbeat.touch()
            time.sleep(interval)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings()
    settings.ensure_dirs()
    RegistryWatcher(settings).run(settings.poll_interval)


if __name__ == "__main__":
    main()
