"""Registry writes for the CLI, labs and drills (aliases, the canary weight), and the champion rollback they share.

Writes go through `mlflow.MlflowClient` against `settings.mlflow_url`. Every MLflow failure becomes one
`RegistryError` line, and a dead or hung registry fails within seconds: MLflow's own retries are off.
`previous_holder` is pure: it folds the journal's alias history, with no I/O.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab_runtime.errors import NotFound, RegistryError
from lab_runtime.registry import CANARY_WEIGHT_TAG, CHALLENGER, CHAMPION, AliasChange

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lab_runtime.journal import Journal
    from lab_runtime.settings import Settings

# One attempt with a short timeout, unless the user set these: MLflow's defaults (7 retries with
# back-off, a 120 s timeout) make a stopped registry hang a command for minutes.
FAIL_FAST_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
ROLLBACK = "model.rollback"
CANARY_ABORT = "canary.abort"


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """MLflow calls inside fail after one attempt of at most 5 s (variables already set are kept)."""
    added = {k: v for k, v in FAIL_FAST_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "timed out" in text or "Timeout" in text:
        return f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    return text.splitlines()[0][:160] if text else type(exc).__name__


@contextlib.contextmanager
def _mlflow(settings: Settings, what: str) -> Iterator[MlflowClient]:
    """A client for `settings.mlflow_url`; any failure of `what` becomes one RegistryError line."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException, RestException

    with fail_fast():
        try:
            yield MlflowClient(settings.mlflow_url, registry_uri=settings.mlflow_url)
        except RestException as exc:
            message = str(exc.json.get("message", exc)).splitlines()[0][:200]
            raise RegistryError(f"MLflow refused to {what}: {message}") from None
        except (MlflowException, OSError) as exc:
            raise RegistryError(
                f"MLflow at {settings.mlflow_url} failed to {what} ({_reason(exc)}); is it up? see `lab status`"
            ) from None


def aliases(settings: Settings) -> dict[str, str]:
    """The registered model's aliases {alias: version}; empty when the model is not registered yet."""
    from mlflow.exceptions import RestException

    with _mlflow(settings, f"read the aliases of {settings.model_name!r}") as client:
        try:
            model = client.get_registered_model(settings.model_name)
        except RestException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return dict(model.aliases)


def _require_version(client: MlflowClient, name: str, version: str) -> None:
    from mlflow.exceptions import RestException

    try:
        client.get_model_version(name, version)
    except RestException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        known = sorted((v.version for v in client.search_model_versions(f"name='{name}'")), key=int)
        listing = ", ".join(str(v) for v in known) or "none yet"
        raise RegistryError(f"model {name!r} has no version {version!r}; its versions: {listing}") from None


def set_alias(settings: Settings, alias: str, version: str) -> None:
    """Point `@alias` at `version`; an unknown version is refused (naming the versions there are)."""
    name = settings.model_name
    with _mlflow(settings, f"set @{alias} of {name!r} to version {version}") as client:
        _require_version(client, name, version)
        client.set_registered_model_alias(name, alias, version)


def delete_alias(settings: Settings, alias: str) -> None:
    """Remove `@alias` (nothing happens if it is not set)."""
    name = settings.model_name
    with _mlflow(settings, f"remove @{alias} of {name!r}") as client:
        if alias in client.get_registered_model(name).aliases:
            client.delete_registered_model_alias(name, alias)


def set_canary_weight(settings: Settings, weight: float) -> None:
    """The share of traffic (0 to 1) the service routes to `@challenger`."""
    if not 0.0 <= weight <= 1.0:
        raise RegistryError(f"a canary weight is a share between 0 and 1, not {weight:g}")
    name = settings.model_name
    with _mlflow(settings, f"set the canary weight of {name!r} to {weight:g}") as client:
        client.set_registered_model_tag(name, CANARY_WEIGHT_TAG, f"{weight:g}")


def _change(item: AliasChange | Mapping[str, Any]) -> AliasChange:
    if isinstance(item, AliasChange):
        return item
    return AliasChange(item.get("model", ""), item["alias"], item.get("before"), item.get("after"))


def _older(a: str, b: str | None) -> bool:
    try:
        return b is not None and int(a) < int(b)
    except ValueError:
        return False


def previous_holder(
    changes: Iterable[AliasChange | Mapping[str, Any]], alias: str, current: str | None, *, model: str | None = None
) -> str | None:
    """The version that held `alias` before `current`, skipping versions the alias was rolled back from.

    `changes` are alias changes in journal order (`AliasChange`s or `registry.alias_changed` payloads).
    A move is a rollback when it returns to the version this fold gives as previous, or to an older
    version that held the alias before; its `before` is then skipped until it is promoted again. So a
    second rollback in a row goes further back instead of bringing back the version just left.
    `current` is the registry's word: a move the journal has not caught up with yet is folded in too.
    """
    holders: list[str] = []  # every tenure, oldest first
    rolled_back: set[str] = set()
    holder: str | None = None

    def previous(now: str | None) -> str | None:
        return next((v for v in reversed(holders) if v != now and v not in rolled_back), None)

    def move(before: str | None, after: str | None) -> None:
        if after is not None:
            if before is not None and (after == previous(before) or (after in holders and _older(after, before))):
                rolled_back.add(before)
            else:
                rolled_back.discard(after)
            holders.append(after)

    for change in map(_change, changes):
        if change.alias != alias or (model is not None and change.model != model):
            continue
        move(holder, change.after)
        holder = change.after
    if current != holder:
        move(holder, current)
    return previous(current)


@dataclass(frozen=True)
class Rollback:
    before: str | None  # the champion rolled back from (None: there was none)
    after: str  # the champion now
    changed: bool  # False when `after` was @champion already


def rollback_champion(settings: Settings, journal: Journal, to: str | None = None) -> Rollback:
    """`@champion` back to its previous holder (from the journal's alias history) or to `to`; journaled."""
    from lab_runtime.journal import ALIAS_CHANGED, LEARNER_ACTION

    champion = aliases(settings).get(CHAMPION)
    if to is None:
        history = [e.payload for e in journal.events([ALIAS_CHANGED])]
        to = previous_holder(history, CHAMPION, champion, model=settings.model_name)
        if to is None:
            others = {
                p.get("after") for p in history if p.get("alias") == CHAMPION and p.get("model") == settings.model_name
            }
            others -= {None, champion}
            if others:
                held = "every earlier one was rolled back from"
            else:
                held = f"the journal records no version but {champion} in it" if champion else "it was never set"
            raise NotFound(
                f"no earlier @champion to roll back to: {held}; pick one with `lab model rollback --to VERSION`"
            )
    if to == champion:
        return Rollback(champion, to, changed=False)
    set_alias(settings, CHAMPION, to)
    journal.append(LEARNER_ACTION, {"action": ROLLBACK, "from": champion, "to": to})
    return Rollback(champion, to, changed=True)


def abort_canary(settings: Settings, journal: Journal) -> str:
    """Canary share to zero, then `@challenger` removed; journaled. Returns the version that was challenger."""
    from lab_runtime.journal import LEARNER_ACTION

    challenger = aliases(settings).get(CHALLENGER)
    if challenger is None:
        raise NotFound("there is no @challenger, so no canary to abort; nothing changed")
    set_canary_weight(settings, 0.0)  # first, so no request is routed to a challenger on its way out
    delete_alias(settings, CHALLENGER)
    journal.append(LEARNER_ACTION, {"action": CANARY_ABORT, "version": challenger})
    return challenger
