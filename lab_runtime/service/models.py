"""Loading registered models and following the registry's aliases without a restart.

`ModelFollower` polls the registry; when `@champion` or `@challenger` moves it loads the new version
in its own thread and swaps it in atomically, so the old version serves until the new one is ready. While the
shadow share is above 0 it loads `@staging` the same way, as the shadow the service mirrors requests to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from lab_runtime.errors import LabError
from lab_runtime.modeling.scorer import LinearScorer, linear_scorer
from lab_runtime.registry.rest import CHALLENGER, CHAMPION, STAGING, Registry
from lab_runtime.registry.webhooks import Wakeup
from lab_runtime.service.routing import variant_for
from lab_runtime.service.schema import SchemaError, columns_from_signature, record_model

log = logging.getLogger(__name__)
RETRY_FAILED_LOAD_AFTER = 10.0  # seconds before a version that failed to load is tried again


@dataclass(frozen=True)
class LoadedModel:
    """One model version ready to score, with the request schema from its signature."""

    version: str
    estimator: Any
    columns: list[tuple[str, str, bool]]
    record_model: type[BaseModel]
    closed_form: LinearScorer | None = None  # the credit pipeline's, which scores without pandas or validation

    def score(self, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted class and probability of the positive class for validated feature dicts."""
        if self.closed_form is not None:
            return self.closed_form.score(records)
        frame = pd.DataFrame(
            {
                name: [
                    float(r[name]) if kind in ("double", "float") and r[name] is not None else r[name] for r in records
                ]
                for name, kind, _ in self.columns
            }
        )
        if hasattr(self.estimator, "predict_proba"):
            proba = self.estimator.predict_proba(frame)
            classes = np.asarray(self.estimator.classes_)
            return classes[proba.argmax(axis=1)].astype(int), proba[:, -1]
        out = np.asarray(self.estimator.predict(frame), dtype=float).reshape(-1)
        return (out >= 0.5).astype(int), out


def load_version(tracking_url: str, name: str, version: str) -> LoadedModel:
    """Download and load `name` version `version` from the registry (sklearn flavor, else pyfunc)."""
    import mlflow
    from mlflow.models import Model

    mlflow.set_tracking_uri(tracking_url)
    mlflow.set_registry_uri(tracking_url)  # else MLflow 3 resolves models:/ against a local sqlite file
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}")
    meta = Model.load(path)
    columns = columns_from_signature(meta.signature.inputs.to_dict() if meta.signature else None)
    if "sklearn" in meta.flavors:
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(path)
    else:
        estimator = mlflow.pyfunc.load_model(path)
    return LoadedModel(version, estimator, columns, record_model(columns), linear_scorer(estimator))


@dataclass(frozen=True)
class Serving:
    """What answers requests right now. Replaced whole, never mutated, so readers need no lock."""

    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None
    weight: float = 0.0
    staging: LoadedModel | None = None  # the shadow: answers a `shadow_share` of the champion's records, unseen
    shadow_share: float = 0.0

    def describe(self) -> str:
        """What serves, in a log line: `champion version 3, challenger version 5 at 10%, shadow version 6 at 50%`."""
        if self.champion is None:
            return "no model"
        said = f"{CHAMPION} version {self.champion.version}"
        if self.challenger is not None:
            said += f", {CHALLENGER} version {self.challenger.version} at {self.weight:.0%}"
        if self.staging is not None:
            said += f", shadow version {self.staging.version} at {self.shadow_share:.0%}"
        return said

    def pick(self, request_id: str) -> tuple[str, LoadedModel]:
        if self.challenger is not None and variant_for(request_id, self.weight) == CHALLENGER:
            return CHALLENGER, self.challenger
        assert self.champion is not None
        return CHAMPION, self.champion


@dataclass
class FollowerStatus:
    registry_reachable: bool = False
    registered: bool = False
    aliases: dict[str, str] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)  # version -> reason
    last_poll: float = 0.0


class ModelFollower:
    """Keeps `serving` in step with the registry's champion, challenger and (while shadowing) staging aliases."""

    def __init__(
        self,
        registry: Registry,
        model_name: str,
        poll_interval: float,
        loader: Callable[[str], LoadedModel],
        wakeup: Wakeup | None = None,
        pushed_poll_interval: float | None = None,
    ) -> None:
        self.registry = registry
        self.model_name = model_name
        self.poll_interval = poll_interval
        self.loader = loader
        self.wakeup = wakeup  # MLflow's webhook wakes the loop; while it is subscribed, polls are slow
        self.pushed_poll_interval = pushed_poll_interval or poll_interval
        self.serving = Serving()
        self.status = FollowerStatus()
        self._loaded: dict[str, LoadedModel] = {}
        self._failed_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.wakeup:
            self.wakeup.wake()
        self._thread.join(timeout=5)

    def _pause(self) -> None:
        """Until the next read: a webhook delivery, else the poll interval (the slow one while subscribed)."""
        if self.wakeup is None:
            self._stop.wait(self.poll_interval)
            return
        if not self.status.registry_reachable:
            self.wakeup.lost()
        else:
            self.wakeup.subscribe(self.registry)  # after a read that worked: a hung MLflow costs one timeout
        self.wakeup.wait(self.pushed_poll_interval if self.wakeup.pushed else self.poll_interval)

    def _run(self) -> None:
        import mlflow.sklearn  # noqa: F401  -- warm the import here, not when the first model arrives

        said: str | None = None  # the last failure logged: a failure repeated every poll is logged once
        while not self._stop.is_set():
            try:
                self.poll_once()
                said = None
            except Exception as exc:  # the follower must outlive any one bad poll
                if f"{exc!r}" != said:
                    log.error("registry poll failed: %r (logged once until it changes)", exc)
                said = f"{exc!r}"
            self._pause()

    def _get(self, version: str | None) -> LoadedModel | None:
        if version is None:
            return None
        if version in self._loaded:
            return self._loaded[version]
        if time.monotonic() - self._failed_at.get(version, -RETRY_FAILED_LOAD_AFTER) < RETRY_FAILED_LOAD_AFTER:
            return None
        try:
            model = self.loader(version)
        except Exception as exc:  # mlflow raises many types; the follower must survive them all
            self._failed_at[version] = time.monotonic()
            reason = str(exc) if isinstance(exc, SchemaError) else f"{type(exc).__name__}: {exc}"
            self.status.load_errors[version] = reason
            log.warning("cannot load %s version %s: %s", self.model_name, version, reason)
            return None
        self.status.load_errors.pop(version, None)
        self._loaded[version] = model
        return model

    def poll_once(self) -> None:
        """Read the registry once and swap in whatever the aliases now name."""
        try:
            state = self.registry.model(self.model_name)
        except LabError as exc:
            if self.status.last_poll and self.status.registry_reachable:  # lost after it answered: said once
                log.warning("the registry stopped answering (%s); serving what is loaded", exc)
            self.status.registry_reachable = False  # keep serving what is loaded
            return
        if self.status.last_poll and not self.status.registry_reachable:
            log.warning("the registry answers again")
        self.status.registry_reachable = True
        self.status.last_poll = time.time()
        self.status.registered = state is not None
        aliases = state.aliases if state else {}
        self.status.aliases = dict(aliases)
        champion = self._get(aliases.get(CHAMPION)) or self.serving.champion
        challenger = self._get(aliases.get(CHALLENGER))
        weight = state.canary_weight if state and challenger else 0.0
        share = state.shadow_share if state else 0.0
        wanted = aliases.get(STAGING) if share > 0 else None  # loaded only while shadowing
        staging = self._loaded.get(wanted) if wanted else None
        self._swap(Serving(champion, challenger, weight, staging, share if staging else 0.0))
        if wanted and staging is None:  # loading it takes seconds: the champion's and challenger's moves serve first
            staging = self._get(wanted)
            if staging is not None:
                self._swap(Serving(champion, challenger, weight, staging, share))
        keep = {m.version for m in (champion, challenger, staging) if m}
        self._loaded = {v: m for v, m in self._loaded.items() if v in keep}

    def _swap(self, serving: Serving) -> None:
        if serving.describe() != self.serving.describe():
            log.info("now serving %s (was %s)", serving.describe(), self.serving.describe())
        self.serving = serving

    def not_ready_reason(self) -> str | None:
        """Why there is no champion to serve, or None when there is one."""
        if self.serving.champion is not None:
            return None
        if not self.status.registry_reachable:
            return "the MLflow registry is unreachable and no model is loaded yet"
        if not self.status.registered:
            return f"no model named {self.model_name!r} is registered yet"
        version = self.status.aliases.get(CHAMPION)
        if version is None:
            return f"model {self.model_name!r} has no '@{CHAMPION}' alias yet; set one to serve it"
        error = self.status.load_errors.get(version)
        return f"version {version} (@{CHAMPION}) cannot be served: {error}" if error else f"loading version {version}"
