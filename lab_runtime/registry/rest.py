"""Reading the MLflow model registry over its REST API (no `mlflow` import: fast and light).

Aliases and the canary weight are read in one call per poll: the registered model carries both.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab_runtime.errors import RegistryError, RuntimeNotReady

if TYPE_CHECKING:
    import httpx

CANARY_WEIGHT_TAG = "canary_weight"
SHADOW_SHARE_TAG = "shadow_share"  # the share of production requests mirrored to @staging (0: no shadow)
CHAMPION = "champion"
CHALLENGER = "challenger"
STAGING = "staging"  # the candidate on its way to production: evaluated, then shadowed, then a canary
# One attempt with a short timeout, unless the user set these: MLflow's defaults (7 retries with
# back-off, a 120 s timeout) make a stopped registry hang a command for minutes.
FAIL_FAST_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """`mlflow` calls inside fail after one attempt of at most 5 s (variables already set are kept)."""
    added = {k: v for k, v in FAIL_FAST_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@dataclass(frozen=True)
class ModelState:
    """What the registry says about one registered model at one moment."""

    name: str
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def canary_weight(self) -> float:
        """The tag as a share in [0, 1]; anything else (a typo in the UI, "nan") counts as no canary traffic."""
        return _share_tag(self.tags, CANARY_WEIGHT_TAG)

    @property
    def shadow_share(self) -> float:
        """The share of requests mirrored to `@staging`, read as the canary weight is."""
        return _share_tag(self.tags, SHADOW_SHARE_TAG)


def _share_tag(tags: dict[str, str], tag: str) -> float:
    """A tag as a share in [0, 1]; anything else (absent, a typo in the UI, "nan") is 0."""
    try:
        share = float(tags.get(tag, 0.0))
    except ValueError:
        return 0.0
    return min(max(share, 0.0), 1.0) if math.isfinite(share) else 0.0


@dataclass(frozen=True)
class AliasChange:
    model: str
    alias: str
    before: str | None
    after: str | None


def alias_changes(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[AliasChange]:
    """Every alias that differs between two snapshots {model: {alias: version}}, in a stable order."""
    changes = []
    for model in sorted(before.keys() | after.keys()):
        old, new = before.get(model, {}), after.get(model, {})
        for alias in sorted(old.keys() | new.keys()):
            if old.get(alias) != new.get(alias):
                changes.append(AliasChange(model, alias, old.get(alias), new.get(alias)))
    return changes


@dataclass(frozen=True)
class VersionInfo:
    """One registered version as `lab model list` shows it."""

    version: str
    created_at: float  # seconds since the epoch
    aliases: list[str]  # the aliases it holds, sorted
    metrics: dict[str, float]  # its training run's metrics
    run_id: str | None
    description: str


def version_info(record: dict[str, str], state: ModelState, metrics: dict[str, float]) -> VersionInfo:
    """Pure: a model-version record of MLflow's, with the aliases `state` gives it and its run's `metrics`."""
    return VersionInfo(
        version=record["version"],
        created_at=int(record.get("creation_timestamp", 0)) / 1000,
        aliases=sorted(a for a, v in state.aliases.items() if v == record["version"]),
        metrics=metrics,
        run_id=record.get("run_id"),
        description=record.get("description", ""),
    )


def _state(raw: dict) -> ModelState:  # type: ignore[type-arg]
    return ModelState(
        name=raw["name"],
        aliases={a["alias"]: a["version"] for a in raw.get("aliases", [])},
        tags={t["key"]: t["value"] for t in raw.get("tags", [])},
    )


class Registry:
    """A thin REST client for the registry reads the runtime needs."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        import httpx  # here: a lab command that never reads the registry does not load an HTTP library

        self.url = url
        # the sandbox's MLflow speaks plain http: no certificate store to load (tens of ms of every command)
        self._http = httpx.Client(base_url=url, timeout=timeout, verify=not url.startswith("http://"))
        self._unreachable = httpx.HTTPError

    def _get(self, path: str, params: dict[str, str | int]) -> httpx.Response:
        try:
            return self._http.get(path, params=params)
        except self._unreachable as exc:
            raise RuntimeNotReady(
                f"MLflow is unreachable at {self.url} ({type(exc).__name__}); start the sandbox with `lab up`"
            ) from exc

    def model(self, name: str) -> ModelState | None:
        """The registered model `name`, or None when it is not registered yet."""
        resp = self._get("/api/2.0/mlflow/registered-models/get", {"name": name})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise RegistryError(f"MLflow answered {resp.status_code} for model {name!r}: {resp.text[:200]}")
        return _state(resp.json()["registered_model"])

    def all_models(self) -> list[ModelState]:
        """Every registered model (aliases and tags included)."""
        models: list[ModelState] = []
        token = ""
        while True:
            params: dict[str, str | int] = {"max_results": 1000}
            if token:
                params["page_token"] = token
            resp = self._get("/api/2.0/mlflow/registered-models/search", params)
            if resp.status_code != 200:
                raise RegistryError(f"MLflow answered {resp.status_code} to a model search: {resp.text[:200]}")
            body = resp.json()
            models += [_state(m) for m in body.get("registered_models", [])]
            token = body.get("next_page_token", "")
            if not token:
                return models

    def _send(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body)
        except self._unreachable as exc:
            raise RuntimeNotReady(
                f"MLflow is unreachable at {self.url} ({type(exc).__name__}); start the sandbox with `lab up`"
            ) from exc

    def subscribe(self, name: str, url: str, secret: str, events: list[dict[str, str]]) -> str:
        """Point MLflow's webhook `name` at `url` with `secret` and `events` (created if there is none, active);
        its id."""
        resp = self._get("/api/2.0/mlflow/webhooks", {"max_results": 1000})
        if resp.status_code != 200:
            raise RegistryError(f"MLflow answered {resp.status_code} listing webhooks: {resp.text[:200]}")
        mine = [w for w in resp.json().get("webhooks", []) if w.get("name") == name]
        body = {"name": name, "url": url, "secret": secret, "events": events, "status": "ACTIVE"}
        if mine:
            resp = self._send("PATCH", f"/api/2.0/mlflow/webhooks/{mine[0]['webhook_id']}", body)
        else:
            resp = self._send("POST", "/api/2.0/mlflow/webhooks", body)
        if resp.status_code != 200:
            raise RegistryError(f"MLflow refused webhook {name!r} to {url}: {resp.status_code} {resp.text[:200]}")
        return str(resp.json()["webhook"]["webhook_id"])

    def test_webhook(self, webhook_id: str) -> None:
        """Ask MLflow to send webhook `webhook_id` a test delivery now."""
        resp = self._send("POST", f"/api/2.0/mlflow/webhooks/{webhook_id}/test", {})
        if resp.status_code != 200:
            raise RegistryError(f"MLflow could not test webhook {webhook_id}: {resp.status_code} {resp.text[:200]}")

    def experiment_runs(self, experiment: str) -> list[dict] | None:  # type: ignore[type-arg]
        """The runs of experiment `experiment` (newest first), or None when there is no such experiment."""
        resp = self._get("/api/2.0/mlflow/experiments/get-by-name", {"experiment_name": experiment})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise RegistryError(f"MLflow answered {resp.status_code} for experiment {experiment!r}: {resp.text[:200]}")
        exp_id = resp.json()["experiment"]["experiment_id"]
        runs = self._send("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "max_results": 1000})
        return list(runs.json().get("runs", []))

    def _run_data(self, run_id: str) -> dict[str, Any]:
        resp = self._get("/api/2.0/mlflow/runs/get", {"run_id": run_id})
        return dict(resp.json()["run"]["data"]) if resp.status_code == 200 else {}

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric a run logged."""
        return {m["key"]: float(m["value"]) for m in self._run_data(run_id).get("metrics", [])}

    def run_params(self, run_id: str) -> dict[str, str]:
        """The parameters a run logged."""
        return {p["key"]: str(p["value"]) for p in self._run_data(run_id).get("params", [])}

    def versions(self, name: str) -> list[dict[str, str]]:
        """Every version of model `name` (MLflow's model-version records), oldest first."""
        resp = self._get("/api/2.0/mlflow/model-versions/search", {"filter": f"name='{name}'", "max_results": 1000})
        if resp.status_code != 200:
            raise RegistryError(f"MLflow answered {resp.status_code} listing versions of {name!r}: {resp.text[:200]}")
        return sorted(resp.json().get("model_versions", []), key=lambda v: int(v["version"]))

    def close(self) -> None:
        self._http.close()


def list_versions(url: str, name: str) -> list[VersionInfo]:
    """Every version of model `name` in the registry at `url`, oldest first; none when it is not registered."""
    registry = Registry(url)
    try:
        state = registry.model(name)
        if state is None:
            return []
        return [
            version_info(r, state, registry.run_metrics(r["run_id"]) if r.get("run_id") else {})
            for r in registry.versions(name)
        ]
    finally:
        registry.close()
