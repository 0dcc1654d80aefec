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
from lab_runtime.registry.webhooks import Receiver, Wakeup
from lab_runtime.settings import Settings, load_settings

log = logging.getLogger("lab_runtime.registry.watcher")
HEARTBEAT_EVERY = 1.0  # seconds between two touches of the heartbeat file, whatever the registry does


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
        self.request_lifetime = REQUEST_LIFETIME + max(settings.poll_interval, settings.pushed_poll_interval)
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
            requests = self.journal.events([ALIAS_REQUESTED], since=now - self.request_lifetime)
            for change in changes:
                request = attribute(change, requests, self.used_requests, now, self.request_lifetime)
                self.journal.append(ALIAS_CHANGED, change_payload(change, request))
        self.known = snapshot
        return len(changes)

    def run(self, interval: float, wakeup: Wakeup | None = None, pushed_interval: float | None = None) -> None:
        """Read the registry every `interval` seconds; with `wakeup`, also at once when a webhook delivery comes,
        and only every `pushed_interval` seconds otherwise while its webhook is subscribed. The heartbeat is
        touched every HEARTBEAT_EVERY seconds whatever the registry does."""
        due = 0.0
        while True:
            if time.monotonic() >= due:
                self._read(wakeup)
                pushed = wakeup is not None and wakeup.pushed and pushed_interval is not None
                due = time.monotonic() + (pushed_interval if pushed and pushed_interval else interval)
            self.heartbeat.touch()
            pause = min(HEARTBEAT_EVERY, max(due - time.monotonic(), 0.0))
            if wakeup is None:
                time.sleep(pause)
            elif wakeup.wait(pause):
                due = 0.0

    def _read(self, wakeup: Wakeup | None) -> None:
        try:
            self.poll_once()
        except LabError as exc:  # MLflow down or late: keep watching
            log.warning("%s", exc)
            if wakeup is not None:
                wakeup.lost()
            return
        if wakeup is not None:
            wakeup.subscribe(self.registry)  # after a read that worked: a hung MLflow costs one timeout


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings()
    settings.ensure_dirs()
    watcher = RegistryWatcher(settings)
    if not settings.registry_webhooks:
        watcher.run(settings.poll_interval)
        return
    receiver = Receiver(settings.bind_host)  # a free port: MLflow is told it with the webhook
    wakeup = Wakeup("lab-registry-watcher", f"http://{settings.watcher_host}:{receiver.port}/")
    receiver.start(wakeup.receive)
    watcher.run(settings.poll_interval, wakeup, settings.pushed_poll_interval)


if __name__ == "__main__":
    main()
