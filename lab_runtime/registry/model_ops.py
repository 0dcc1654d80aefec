"""Model operations on the registry for the CLI, labs and drills: aliases, the canary weight, promotion behind
the validation gate, rollback, the canary's start, share, promotion and abort, the shadow's start and stop, and a
first `@champion` for a lab that starts from a served model. Each learner operation is
journaled as a `learner.action`, and each alias move is announced first (`registry.alias_requested`).

Writes go through `mlflow.MlflowClient` against `settings.mlflow_url`. Every MLflow failure becomes one
`RegistryError` line, and a dead or hung registry fails within seconds: MLflow's own retries are off.
`previous_holder` and `gate_refusal` are pure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab_runtime.errors import NotFound, RegistryError
from lab_runtime.events import (
    ALIAS_CHANGED,
    ALIAS_REQUESTED,
    CANARY_ABORT,
    CANARY_PROMOTE,
    CANARY_SET,
    CANARY_START,
    LEARNER_ACTION,
    PROMOTE,
    RETRAIN,
    ROLLBACK,
    SHADOW_START,
    SHADOW_STOP,
    AliasRequested,
    LearnerAction,
)
from lab_runtime.registry.rest import (
    CANARY_WEIGHT_TAG,
    CHALLENGER,
    CHAMPION,
    SHADOW_SHARE_TAG,
    STAGING,
    AliasChange,
    ModelState,
    Registry,
    fail_fast,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lab_runtime.journal import Journal
    from lab_runtime.modeling.model import Registered
    from lab_runtime.settings import Settings


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "timed out" in text or "Timeout" in text:
        return f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    return text.splitlines()[0][:160] if text else type(exc).__name__


@contextlib.contextmanager
def mlflow_client(settings: Settings, what: str) -> Iterator[MlflowClient]:
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


def state(settings: Settings) -> ModelState | None:
    """The registered model's aliases and tags (the canary weight), or None when it is not registered yet."""
    from mlflow.exceptions import RestException

    with mlflow_client(settings, f"read the aliases of {settings.model_name!r}") as client:
        try:
            model = client.get_registered_model(settings.model_name)
        except RestException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return ModelState(model.name, dict(model.aliases), dict(model.tags))


def aliases(settings: Settings) -> dict[str, str]:
    """The registered model's aliases {alias: version}; empty when the model is not registered yet."""
    current = state(settings)
    return dict(current.aliases) if current else {}


def _require_version(client: MlflowClient, name: str, version: str) -> str:
    """The registry's own spelling of `version` (MLflow takes "03" for 3), or a RegistryError listing the versions."""
    from mlflow.exceptions import RestException

    try:
        return str(client.get_model_version(name, version.strip()).version)
    except RestException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        known = sorted((v.version for v in client.search_model_versions(f"name='{name}'")), key=int)
        listing = ", ".join(str(v) for v in known) or "none yet"
        raise RegistryError(f"model {name!r} has no version {version!r}; its versions: {listing}") from None


def _request(settings: Settings, journal: Journal | None, via: str, alias: str, version: str | None) -> None:
    """Journal which command is about to move `@alias`, so the registry watcher can say how the change was made."""
    if journal is not None:
        journal.append(
            ALIAS_REQUESTED, AliasRequested(model=settings.model_name, alias=alias, version=version, via=via)
        )


def resolve_version(settings: Settings, version: str) -> str:
    """`version` as the registry spells it; an unknown version is refused, naming the versions there are."""
    with mlflow_client(settings, f"find version {version} of {settings.model_name!r}") as client:
        return _require_version(client, settings.model_name, version)


def set_alias(settings: Settings, alias: str, version: str, *, journal: Journal | None = None, via: str = "") -> str:
    """Point `@alias` at `version` (nothing happens if it is there already); returns the version as registered.

    An unknown version is refused, naming the versions there are. With a `journal`, the change is announced
    first as made `via` that command (see `lab_runtime.registry.alias_history`).
    """
    name = settings.model_name
    with mlflow_client(settings, f"set @{alias} of {name!r} to version {version}") as client:
        version = _require_version(client, name, version)
        if client.get_registered_model(name).aliases.get(alias) != version:
            _request(settings, journal, via, alias, version)
            client.set_registered_model_alias(name, alias, version)
        return version


def delete_alias(settings: Settings, alias: str, *, journal: Journal | None = None, via: str = "") -> None:
    """Remove `@alias` (nothing happens if it is not set)."""
    name = settings.model_name
    with mlflow_client(settings, f"remove @{alias} of {name!r}") as client:
        if alias in client.get_registered_model(name).aliases:
            _request(settings, journal, via, alias, None)
            client.delete_registered_model_alias(name, alias)


def _share(weight: float, *, allow_zero: bool = True, what: str = "a canary weight") -> float:
    low_ok = weight >= 0.0 if allow_zero else weight > 0.0
    if not (low_ok and weight <= 1.0):  # NaN fails too
        bound = "between 0 and 1" if allow_zero else "above 0 and at most 1"
        raise RegistryError(f"{what} is a share {bound}, not {weight:g}; nothing changed")
    return weight


def set_canary_weight(settings: Settings, weight: float) -> None:
    """The share of traffic (0 to 1) the service routes to `@challenger`."""
    _share(weight)
    name = settings.model_name
    with mlflow_client(settings, f"set the canary weight of {name!r} to {weight:g}") as client:
        client.set_registered_model_tag(name, CANARY_WEIGHT_TAG, f"{weight:g}")
        _push(client, name, CHALLENGER, CANARY_WEIGHT_TAG, f"{weight:g}")


def _push(client: MlflowClient, name: str, alias: str, tag: str, value: str) -> None:
    """Set `tag` on the version `alias` names too, if one does: a version's tag sends MLflow's webhook (a
    registered model's does not), so the model service hears of the change at once, not at its slow poll."""
    from mlflow.exceptions import RestException

    try:
        version = client.get_model_version_by_alias(name, alias).version
    except RestException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):  # no such alias: none serves
            return
        raise
    client.set_model_version_tag(name, version, tag, value)


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
    champion = aliases(settings).get(CHAMPION)
    if to is not None:
        to = resolve_version(settings, to)
    else:
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
    began = journal.began_now()
    set_alias(settings, CHAMPION, to, journal=journal, via="lab model rollback")
    journal.append(LEARNER_ACTION, LearnerAction({"action": ROLLBACK, "from": champion, "to": to}), began=began)
    return Rollback(champion, to, changed=True)


GATE_METRIC = "accuracy"


def gate_refusal(candidate: Mapping[str, float], champion: Mapping[str, float], max_drop: float) -> str | None:
    """Why the candidate fails the validation gate (worse than the champion on the holdout), or None when it passes."""
    drop = champion[GATE_METRIC] - candidate[GATE_METRIC]
    if drop <= max_drop:
        return None
    return (
        f"{GATE_METRIC} {candidate[GATE_METRIC]:.4f} against the champion's {champion[GATE_METRIC]:.4f} on the holdout "
        f"(a drop of {drop:.4f}, at most {max_drop:g} allowed)"
    )


def _gate(settings: Settings, version: str, champion: str) -> dict[str, dict[str, float]]:
    """Holdout metrics of the candidate and the champion; any failure to load or score them is one RegistryError."""
    from lab_runtime.modeling.model import holdout_metrics

    with mlflow_client(settings, f"load versions {version} and {champion} for the validation gate"):
        try:
            return holdout_metrics(settings, [version, champion])
        except (RegistryError, OSError):
            raise
        except Exception as exc:  # a version that does not load or score (sklearn, skops): refused, not a traceback
            raise RegistryError(
                f"the validation gate could not score versions {version} and {champion} on the holdout "
                f"({type(exc).__name__}: {str(exc)[:160]}); nothing changed"
            ) from None


@dataclass(frozen=True)
class Promotion:
    version: str
    alias: str
    before: str | None  # the version that held the alias (None: nobody)
    forced: bool
    gate: dict[str, dict[str, float]]  # holdout metrics per version the gate compared (empty: no gate ran)

    @property
    def changed(self) -> bool:
        return self.before != self.version


def promote(
    settings: Settings,
    journal: Journal,
    version: str,
    alias: str = CHAMPION,
    *,
    force: bool = False,
    max_drop: float,
    on_gate: Callable[[str, str], None] | None = None,
) -> Promotion:
    """Point `@alias` at `version`, behind the validation gate unless `force`; journaled when the alias moved.

    The gate scores the candidate and the current `@champion` on the same seeded holdout and refuses a candidate
    whose accuracy is more than `max_drop` below the champion's. A refusal raises RegistryError and changes nothing.
    `on_gate(candidate, champion)` is called as the gate starts scoring (it takes a few seconds).
    """
    if alias == CHALLENGER:
        raise RegistryError(
            "@challenger is the canary's alias: `lab canary start VERSION --weight 0.1` gives it a share of traffic"
        )
    version = resolve_version(settings, version)
    current = aliases(settings)
    champion, before = current.get(CHAMPION), current.get(alias)
    gate: dict[str, dict[str, float]] = {}
    if before != version and not force and champion is not None and champion != version:
        if on_gate is not None:
            on_gate(version, champion)
        gate = _gate(settings, version, champion)
        refusal = gate_refusal(gate[version], gate[champion], max_drop)
        if refusal:
            raise RegistryError(
                f"version {version} failed the validation gate: {refusal}; nothing changed "
                "(`--force` promotes it anyway, and the journal records that you did)"
            )
    done = Promotion(version, alias, before, force, gate)
    if done.changed:
        began = journal.began_now()
        set_alias(settings, alias, version, journal=journal, via="lab model promote")
        journal.append(
            LEARNER_ACTION,
            LearnerAction(
                {"action": PROMOTE, "version": version, "alias": alias, "from": before, "forced": force, "gate": gate}
            ),
            began=began,
        )
    return done


def _challenger(settings: Settings, what: str, expected: str | None = None) -> str:
    """The version @challenger names; refused when there is none, or when it is not `expected`."""
    version = aliases(settings).get(CHALLENGER)
    if version is None:
        raise NotFound(
            f"there is no @challenger, so no canary to {what}; nothing changed (`lab canary start VERSION` starts one)"
        )
    if expected is not None and version != expected:
        raise RegistryError(
            f"@challenger is version {version} now, not version {expected}: someone changed the canary, so this will "
            f"not {what} it; nothing changed (see `lab model history --alias challenger`)"
        )
    return version


def start_canary(
    settings: Settings,
    journal: Journal,
    version: str,
    weight: float,
    *,
    via: str = "lab canary start",
    gate: Callable[[str], None] | None = None,
    forced: bool = False,
) -> str:
    """`@challenger` on `version` with a `weight` share of the traffic; refused while another canary runs.

    Returns the version as registered. If the alias cannot be set, the share is put back as it was. `gate(version)`
    raises when the evidence the canary needs is missing (`registry.promotion`); `forced` journals that it was skipped.
    """
    _share(weight, allow_zero=False)
    version = resolve_version(settings, version)
    current = state(settings) or ModelState(settings.model_name)
    if current.aliases.get(CHALLENGER) is not None:
        raise RegistryError(
            f"a canary of version {current.aliases[CHALLENGER]} is running; change its share with `lab canary set`, "
            "or end it with `lab canary promote` or `lab canary abort` first"
        )
    if current.aliases.get(CHAMPION) == version:
        raise RegistryError(f"version {version} is @champion already; a canary needs another version")
    if gate is not None:
        gate(version)  # the evidence the canary needs (raises when it is missing)
    # The share first: the service routes to a challenger only once the alias exists, so it starts at `weight`.
    began = journal.began_now()
    set_canary_weight(settings, weight)
    try:
        set_alias(settings, CHALLENGER, version, journal=journal, via=via)
    except RegistryError:
        with contextlib.suppress(RegistryError):
            set_canary_weight(settings, current.canary_weight)
        raise
    action = LearnerAction(action=CANARY_START, version=version, weight=weight, via=via)
    if forced:
        action["forced"] = True
    journal.append(LEARNER_ACTION, action, began=began)
    return version


def set_canary(settings: Settings, journal: Journal, weight: float, *, via: str = "lab canary set") -> float:
    """The running canary's share of traffic; returns the share it had."""
    _share(weight)
    version = _challenger(settings, "re-weight")
    current = state(settings)
    before = current.canary_weight if current else 0.0
    began = journal.began_now()
    set_canary_weight(settings, weight)
    action = LearnerAction({"action": CANARY_SET, "version": version, "from": before, "to": weight, "via": via})
    journal.append(LEARNER_ACTION, action, began=began)
    return before


def promote_canary(
    settings: Settings,
    journal: Journal,
    *,
    expected: str | None = None,
    via: str = "lab canary promote",
    gate: Callable[[], None] | None = None,
    forced: bool = False,
) -> tuple[str, str | None]:
    """The challenger (if `expected` is given: only that version) becomes `@champion`; then its share goes to zero
    and `@challenger` is removed. Returns (the promoted version, the champion it replaced). Both aliases name the
    promoted version for a moment, so every request is served by it throughout. `gate()` raises when the evidence
    production needs is missing; `forced` journals that it was skipped. A `@staging` on the promoted version is
    done: its shadow stops and the alias is removed, so the slot is free for the next candidate."""
    version = _challenger(settings, "promote", expected)
    if gate is not None:
        gate()  # the evidence production needs (raises when it is missing)
    current = state(settings) or ModelState(settings.model_name)
    before = current.aliases.get(CHAMPION)
    began = journal.began_now()
    set_alias(settings, CHAMPION, version, journal=journal, via=via)
    set_canary_weight(settings, 0.0)
    delete_alias(settings, CHALLENGER, journal=journal, via=via)
    if current.aliases.get(STAGING) == version:
        if current.shadow_share > 0:
            _set_shadow_share(settings, 0.0)
        delete_alias(settings, STAGING, journal=journal, via=via)
    action = LearnerAction({"action": CANARY_PROMOTE, "version": version, "from": before, "via": via})
    if forced:
        action["forced"] = True
    journal.append(LEARNER_ACTION, action, began=began)
    return version, before


def abort_canary(
    settings: Settings, journal: Journal, *, expected: str | None = None, via: str = "lab canary abort"
) -> str:
    """Canary share to zero, then `@challenger` removed; journaled. Returns the version that was challenger."""
    challenger = _challenger(settings, "abort", expected)
    began = journal.began_now()
    set_canary_weight(settings, 0.0)  # first, so no request is routed to a challenger on its way out
    delete_alias(settings, CHALLENGER, journal=journal, via=via)
    journal.append(LEARNER_ACTION, LearnerAction(action=CANARY_ABORT, version=challenger, via=via), began=began)
    return challenger


def _set_shadow_share(settings: Settings, share: float) -> None:
    name = settings.model_name
    with mlflow_client(settings, f"set the shadow share of {name!r} to {share:g}") as client:
        client.set_registered_model_tag(name, SHADOW_SHARE_TAG, f"{share:g}")
        _push(client, name, STAGING, SHADOW_SHARE_TAG, f"{share:g}")


def start_shadow(settings: Settings, journal: Journal, version: str, share: float) -> tuple[str, float]:
    """Mirror a `share` of the champion's records to `version`, which must be `@staging`; journaled. Returns the
    version as registered and the share it had before (a running shadow is re-shared)."""
    _share(share, allow_zero=False, what="a shadow share")
    version = resolve_version(settings, version)
    current = state(settings) or ModelState(settings.model_name)
    staged = current.aliases.get(STAGING)
    if staged != version:
        where = f"@{STAGING} is version {staged}" if staged else f"there is no @{STAGING}"
        raise RegistryError(
            f"version {version} is not @{STAGING} ({where}); `lab model stage {version}` puts it there first"
        )
    began = journal.began_now()
    _set_shadow_share(settings, share)
    journal.append(LEARNER_ACTION, LearnerAction(action=SHADOW_START, version=version, share=share), began=began)
    return version, current.shadow_share


def stop_shadow(
    settings: Settings, journal: Journal, judged: Callable[[], tuple[str, list[str]]] | None = None
) -> tuple[str | None, float]:
    """The shadow's share to 0; journaled, with the verdict `judged()` gives the run (before it stops). Returns the
    `@staging` version it mirrored to and the share it had; refused when no shadow runs."""
    current = state(settings)
    before = current.shadow_share if current else 0.0
    if current is None or before == 0.0:
        raise NotFound(
            "no shadow is running, so none to stop; nothing changed (`lab shadow start VERSION --share 0.5` starts one)"
        )
    version = current.aliases.get(STAGING)
    began = journal.began_now()
    action = LearnerAction({"action": SHADOW_STOP, "from": before})
    if judged is not None:
        action["verdict"], reasons = judged()
        action["note"] = "; ".join(reasons)
    _set_shadow_share(settings, 0.0)
    if version is not None:
        action["version"] = version
    journal.append(LEARNER_ACTION, action, began=began)
    return version, before


def adopt_retrained(settings: Settings, journal: Journal, version: str, *, promote: bool) -> bool:
    """With `promote`, make a version `lab model retrain` just registered `@champion`; journaled as
    `learner.action` either way (the version exists whether or not it became champion). Whether it did."""
    promoted = False
    try:
        if promote:
            set_alias(settings, CHAMPION, version, journal=journal, via="lab model retrain")
            promoted = True
    finally:
        journal.append(LEARNER_ACTION, LearnerAction(action=RETRAIN, version=version, promoted=promoted))
    return promoted


def ensure_champion(settings: Settings, on_training: Callable[[], None]) -> Registered | None:
    """Train, register and promote a first version when the registry has no `@champion` yet (`on_training` is
    called before the training, which takes a while): the version registered, or None when there was a champion."""
    from lab_runtime.modeling.model import train_and_register

    registry = Registry(settings.mlflow_url)
    try:
        current = registry.model(settings.model_name)
    finally:
        registry.close()
    if current is not None and CHAMPION in current.aliases:
        return None
    on_training()
    return train_and_register(settings.mlflow_url, settings.model_name, alias=CHAMPION)
