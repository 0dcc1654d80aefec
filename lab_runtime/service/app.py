"""Assembles the model service: routes, the registry follower, the prediction logger, the shadow mirror, metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from lab_runtime.files.watched import WatchedFile
from lab_runtime.predlog import (
    DROPPED,
    FallbackRow,
    FeedbackRow,
    PredictionLogger,
    PredictionRow,
    RequestRow,
    Row,
    ShadowRow,
)
from lab_runtime.registry.rest import CHAMPION, Registry
from lab_runtime.registry.webhooks import Wakeup
from lab_runtime.service.admin import admin_token
from lab_runtime.service.batching import Batcher
from lab_runtime.service.docs import offline_docs
from lab_runtime.service.errorlog import ErrorLogMiddleware
from lab_runtime.service.faults import FaultTable, ServiceFault, check_fault_id
from lab_runtime.service.limits import MAX_BODY_BYTES, MAX_DEPTH, BodyLimits, BodyRefused
from lab_runtime.service.metrics import ServiceMetrics
from lab_runtime.service.models import LoadedModel, ModelFollower, load_version
from lab_runtime.service.policy import BUILTIN, Policy, load_policy
from lab_runtime.service.schema import (
    BatchIn,
    BatchOut,
    ErrorOut,
    FeedbackIn,
    FeedbackOut,
    HealthOut,
    InvalidOut,
    ModelOut,
    PolicyOut,
    PredictionOut,
    ReadyOut,
    RecordIn,
    error_detail,
    predict_body_schema,
)
from lab_runtime.service.shadow import Mirrored, ShadowMirror, mirrored
from lab_runtime.service.switch import FALLBACK, ModelSwitch
from lab_runtime.settings import Settings, load_settings

log = logging.getLogger("lab_runtime.service")
POLICY_POLL = 1.0  # seconds between two looks at the learner's policy file
REGISTRY_EVENTS = "/registry-events"  # where MLflow's webhook delivers alias and version-tag changes

LIMITS = (
    f"Request bodies are limited to {MAX_BODY_BYTES} bytes (1 MiB; larger ones are refused with 413 before they are "
    f"read) and to {MAX_DEPTH} levels of JSON nesting (deeper ones get 400)."
)
# The answers of a route that reads a JSON body, beside its success.
BODY_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": f"the body's JSON nests deeper than {MAX_DEPTH} levels"},
    413: {"model": ErrorOut, "description": f"the body is larger than {MAX_BODY_BYTES} bytes"},
    422: {"model": InvalidOut, "description": "the body is not valid JSON or does not fit the schema"},
}
FEEDBACK_ANSWERS = BODY_ANSWERS | {  # FastAPI parses /feedback's body: one it cannot decode is its 400
    400: {"model": ErrorOut, "description": f"the body's JSON nests deeper than {MAX_DEPTH} levels, or is not text"}
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _unprocessable(detail: list[dict[str, Any]]) -> Response:
    return _json({"detail": detail}, 422)


def _parse(body: bytes, max_batch: int) -> tuple[list[RecordIn], bool] | Response:
    """The records of a single or batch request, and whether it was a batch; or a 422 response."""
    try:
        raw = json.loads(body)
    except ValueError as exc:  # not JSON, not UTF-8, or an integer too long to convert
        return _unprocessable([{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}])
    is_batch = isinstance(raw, dict) and "records" in raw
    try:
        records = BatchIn.model_validate(raw).records if is_batch else [RecordIn.model_validate(raw)]
    except ValidationError as exc:
        return _unprocessable(error_detail(exc, ("body",)))
    if not records or len(records) > max_batch:
        msg = "a batch needs at least one record" if not records else f"a batch holds at most {max_batch} records"
        return _unprocessable([{"loc": ["body", "records"], "msg": msg, "type": "batch_size"}])
    return records, is_batch


def _reason(status: int) -> str:
    """The detail of an injected error: what a real failing server would say, nothing about a fault."""
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "internal server error"


def _fault_out(fault_id: str, fault: ServiceFault, expires_at: float, now: float) -> dict[str, Any]:
    return {"id": fault_id, **fault.model_dump(), "expires_at": expires_at, "expires_in": max(0.0, expires_at - now)}


def _admin_router(token: str, faults: FaultTable) -> APIRouter:
    """`/admin/faults`: the drills' fault table, behind `Authorization: Bearer <token>`, left out of /docs."""
    where = "the token is in <state dir>/admin.token, or LAB_ADMIN_TOKEN"

    def authorized(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            detail = f"admin endpoints need the header `Authorization: Bearer <token>`; {where}"
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(given.strip().encode(), token.encode()):
            detail = f"the admin token does not match; {where}"
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})

    router = APIRouter(prefix="/admin/faults", include_in_schema=False, dependencies=[Depends(authorized)])

    def bad_id(fault_id: str) -> Response | None:
        try:
            check_fault_id(fault_id)
        except ValueError as exc:
            return _unprocessable([{"loc": ["path", "fault_id"], "msg": str(exc), "type": "fault_id"}])
        return None

    @router.get("")
    def list_faults() -> dict[str, Any]:
        now = time.time()
        return {"faults": [_fault_out(i, f, exp, now) for i, (f, exp) in faults.active(now).items()]}

    @router.put("/{fault_id}")
    async def put_fault(fault_id: str, request: Request) -> Response:
        """Add or replace a fault; its expiry restarts at `ttl` from now."""
        if invalid := bad_id(fault_id):
            return invalid
        try:  # parsed here, not by FastAPI, so a bad token is refused before the body is even read
            fault = ServiceFault.model_validate_json(await request.body())
        except ValidationError as exc:
            return _unprocessable(error_detail(exc, ("body",)))
        now = time.time()
        return _json(_fault_out(fault_id, fault, faults.put(fault_id, fault, now), now))

    @router.delete("/{fault_id}")
    def delete_fault(fault_id: str) -> Response:
        if invalid := bad_id(fault_id):
            return invalid
        faults.active(time.time())  # an expired fault counts as absent
        if not faults.remove(fault_id):
            return _json({"detail": f"no active fault {fault_id!r}; GET /admin/faults lists the active ones"}, 404)
        return _json({"removed": fault_id})

    @router.delete("")
    def clear_faults() -> dict[str, int]:
        faults.active(time.time())
        return {"removed": faults.clear()}

    return router


def _said_policy(policy: WatchedFile[Policy]) -> None:
    if policy.problem:
        log.warning("%s", policy.problem)
    else:
        log.info("output policy in force: %s", policy.source)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app; the registry follower and the prediction logger live as long as it does."""
    cfg = settings or load_settings()
    registry = Registry(cfg.mlflow_url)
    wakeup = Wakeup("lab-model-service", f"{cfg.service_url}{REGISTRY_EVENTS}")
    follower = ModelFollower(
        registry,
        cfg.model_name,
        cfg.poll_interval,
        partial(load_version, cfg.mlflow_url, cfg.model_name),
        wakeup if cfg.registry_webhooks else None,
        cfg.pushed_poll_interval,
    )
    holder: dict[str, PredictionLogger] = {}
    metrics = ServiceMetrics(
        lambda: holder["log"].depth() if "log" in holder else 0, shadow_depth=lambda: mirror.depth()
    )
    batcher = Batcher()
    faults = FaultTable()
    rng = random.Random()  # the faults' share draws; not seeded: drills are blind, not replayed
    policy = WatchedFile(cfg.policy_path, load_policy, BUILTIN)
    if policy.problem:
        log.warning("%s", policy.problem)

    def log_rows(rows: Sequence[Row]) -> None:
        holder["log"].log(rows)

    mirror = ShadowMirror(log_rows, lambda: policy.value, lambda: follower.serving.staging, metrics)
    switch = ModelSwitch(cfg.flags_path, cfg.handed_flags_path, log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder["log"] = PredictionLogger(
            cfg.prediction_log_path,
            cfg.log_queue_size,
            on_drop=metrics.log_dropped.inc,
            retention=cfg.prediction_retention,
        )
        follower.start()
        stop_policy = policy.follow(POLICY_POLL, _said_policy)
        switch.start()
        yield
        mirror.stop()
        switch.stop()
        stop_policy()
        batcher.close()
        follower.stop()
        holder["log"].close()
        registry.close()

    app = FastAPI(
        title="Credit-risk model service", description=LIMITS, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    offline_docs(app)
    app.add_middleware(ErrorLogMiddleware, logger=log)
    app.add_middleware(BodyLimits)
    app.state.follower = follower
    app.state.faults = faults
    app.include_router(_admin_router(admin_token(cfg), faults))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return _unprocessable([{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()])

    @app.get("/health", response_model=HealthOut)
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", responses={200: {"model": ReadyOut}, 503: {"model": ReadyOut, "description": "not ready"}})
    def ready() -> Response:
        """Readiness: a champion is loaded and can answer /predict."""
        reason = follower.not_ready_reason()
        if reason:
            return _json({"ready": False, "reason": reason}, 503)
        return _json({"ready": True})

    @app.post(REGISTRY_EVENTS, status_code=204, include_in_schema=False)
    async def registry_event(request: Request) -> Response:
        """MLflow's webhook: a signed delivery wakes the registry follower; anything else is refused."""
        taken = wakeup.receive(dict(request.headers.items()), await request.body())
        return Response(status_code=204 if taken else 401)

    @app.get("/model", response_model=ModelOut)
    def model() -> dict[str, Any]:
        """Which versions serve, the canary weight, the shadow, and what the registry said last."""
        serving, status = follower.serving, follower.status
        return {
            "model_name": cfg.model_name,
            "champion": serving.champion.version if serving.champion else None,
            "challenger": serving.challenger.version if serving.challenger else None,
            "canary_weight": serving.weight,
            "registry_aliases": status.aliases,
            "registry_reachable": status.registry_reachable,
            "load_errors": status.load_errors,
            "features": [{"name": n, "type": t, "required": r} for n, t, r in serving.champion.columns]
            if serving.champion
            else [],
            "switch": switch.status(),
            "webhook": {
                "subscribed": wakeup.subscribed,
                "pushed": wakeup.pushed,
                "pushes": wakeup.pushes,
                "refused": wakeup.refused,
            }
            if follower.wakeup
            else None,
            "shadow": {
                "staging": serving.staging.version if serving.staging else None,
                "share": serving.shadow_share,
                "queue_depth": mirror.depth(),
                "queue_size": mirror.maxsize,
                "queued": mirror.queued,
                "dropped": mirror.dropped,
            },
        }

    @app.get("/policy", response_model=PolicyOut)
    def output_policy() -> dict[str, Any]:
        """The output policy in force: decision thresholds and the decisions never to serve, the file they come
        from, and why the learner's file was refused (if it was: the last good policy stays in force)."""
        reading = policy.reading  # one snapshot: the source, its problem and its policy belong together
        return {"source": str(reading.source), "problem": reading.problem, **reading.value.model_dump()}

    @app.post(
        "/predict",
        response_model=PredictionOut | BatchOut,
        responses={
            **BODY_ANSWERS,
            500: {"model": ErrorOut, "description": "the model failed to score valid records"},
            503: {"model": ErrorOut, "description": "no champion is loaded yet (see /ready)"},
            "5XX": {"model": ErrorOut, "description": "the service is failing"},
        },
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {}}}},
    )
    async def predict(request: Request) -> Response:
        """Score one record `{"request_id", "features": {...}}` or a batch `{"records": [...]}` (one prediction
        each, in order). Request bodies are limited in size and nesting: see the API's description."""
        started = time.perf_counter()

        def refused(response: Response, records: int = 1, variant: str = "none", version: str = "none") -> Response:
            """Count and log a request answered without a prediction (`variant` "none": refused before routing)."""
            metrics.requests.labels(str(response.status_code), variant, version).inc()
            elapsed_ms = (time.perf_counter() - started) * 1000
            holder["log"].log([RequestRow(time.time(), response.status_code, variant, records, elapsed_ms, version)])
            return response

        serving = follower.serving
        if serving.champion is None:
            return refused(_json({"detail": follower.not_ready_reason()}, 503))
        try:
            body = await request.body()
        except BodyRefused as exc:
            return refused(_json({"detail": exc.detail}, exc.status_code))
        parsed = _parse(body, cfg.max_batch)
        if isinstance(parsed, Response):
            return refused(parsed)
        records, is_batch = parsed
        request.state.request_id = records[0].request_id  # named in the log line of a 5xx answer
        groups: dict[str, tuple[LoadedModel, list[int]]] = {}
        fallback: list[int] = []  # the records the model switch sends to the fallback rules
        ids, features, errors = [], [], []
        first: tuple[str, str] = ("none", "none")
        for i, rec in enumerate(records):
            rid = rec.request_id or uuid.uuid4().hex
            to_fallback = switch.route(rid) == FALLBACK
            variant, model = (FALLBACK, serving.champion) if to_fallback else serving.pick(rid)
            if i == 0:
                first = (variant, FALLBACK if to_fallback else model.version)
            try:  # the fallback reads the same inputs: the champion's signature checks them
                features.append(model.record_model.model_validate(rec.features).model_dump())
            except ValidationError as exc:
                prefix = ("body", "records", i, "features") if is_batch else ("body", "features")
                errors += error_detail(exc, prefix)
                continue
            ids.append(rid)
            if to_fallback:
                fallback.append(len(ids) - 1)
            else:
                groups.setdefault(variant, (model, []))[1].append(len(ids) - 1)
        if errors:
            return refused(_unprocessable(errors), len(records))
        # Drill faults hit valid requests only, once per request, by the variant of its first record. The delay
        # comes before scoring so it shows in the logged and measured latency, like a real slow dependency.
        fault = faults.decide(first[0], time.time(), rng)
        if fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        if fault.status is not None:
            return refused(_json({"detail": _reason(fault.status)}, fault.status), len(records), *first)
        out: list[dict[str, Any]] = [{} for _ in ids]
        rules = policy.value
        broken: list[list[str]] = [[] for _ in ids]
        lost = dict.fromkeys(fault.degraded, 0)  # an overloaded lookup's missing values, taken for zero
        scored = [{**f, **lost} for f in features] if lost else features
        for variant, (model, index) in groups.items():
            try:
                predictions, probabilities = await batcher.score(model, [scored[i] for i in index])
            except Exception as exc:  # the model failed on valid input: a counted 500 (logged by ErrorLogMiddleware)
                detail = f"model version {model.version} failed to score: {type(exc).__name__}: {exc}"
                return refused(_json({"detail": detail}, 500), len(records), variant, model.version)
            for i, pred, proba in zip(index, predictions.tolist(), probabilities.tolist(), strict=True):
                decision = rules.decide(proba)
                broken[i] = rules.violations(decision, features[i])
                out[i] = {
                    "request_id": ids[i],
                    "prediction": pred,
                    "probability": proba,
                    "decision": decision,
                    "decided_by": "model",
                    "model_version": model.version,
                    "variant": variant,
                }
        for i in fallback:
            decision = rules.fallback.decide(features[i])
            out[i] = {
                "request_id": ids[i],
                "prediction": int(decision == "decline"),
                "probability": None,
                "decision": decision,
                "decided_by": FALLBACK,
                "model_version": None,
                "variant": FALLBACK,
            }
        elapsed = time.perf_counter() - started
        now = time.time()
        holder["log"].log(
            [
                PredictionRow(
                    now,
                    o["request_id"],
                    o["model_version"],
                    o["variant"],
                    o["prediction"],
                    o["probability"],
                    elapsed * 1000,
                    f,
                    o["decision"],
                    tuple(b),
                )
                for o, f, b in zip(out, features, broken, strict=True)
                if o["decided_by"] == "model"
            ]
            + [FallbackRow(now, ids[i], out[i]["decision"], features[i]) for i in fallback]
            + [
                RequestRow(now, 200, variant, len(index), elapsed * 1000, model.version)
                for variant, (model, index) in groups.items()
            ]
            + ([RequestRow(now, 200, FALLBACK, len(fallback), elapsed * 1000, FALLBACK)] if fallback else [])
        )
        if fallback:
            metrics.requests.labels("200", FALLBACK, FALLBACK).inc()
            metrics.latency.labels(FALLBACK).observe(elapsed)
            for i in fallback:
                metrics.decisions.labels(out[i]["decision"], FALLBACK, FALLBACK).inc()
        for variant, (model, index) in groups.items():
            metrics.requests.labels("200", variant, model.version).inc()
            metrics.records.labels(variant, model.version).inc(len(index))
            metrics.latency.labels(variant).observe(elapsed)
            for i in index:
                metrics.score.labels(variant).observe(out[i]["probability"])
                metrics.decisions.labels(out[i]["decision"], variant, model.version).inc()
                for rule in broken[i]:
                    metrics.violations.labels(rule, variant, model.version).inc()
        staging = serving.staging  # the shadow gets its share of the champion's records; nobody waits for it
        if staging is not None and CHAMPION in groups:
            for i in groups[CHAMPION][1]:
                if mirrored(ids[i], serving.shadow_share):
                    o = out[i]
                    row = ShadowRow(now, ids[i], staging.version, DROPPED, o["model_version"], o["prediction"],
                                    o["probability"], o["decision"], elapsed * 1000, tuple(broken[i]))  # fmt: skip
                    mirror.offer(Mirrored(staging, records[i].features, lost, row))
        return _json({"predictions": out} if is_batch else out[0])

    @app.post("/feedback", status_code=202, response_model=FeedbackOut, responses=FEEDBACK_ANSWERS)
    async def feedback(body: FeedbackIn) -> dict[str, str]:
        """Record the delayed ground-truth label (the integer 0 or 1) of a request. Request bodies are limited in
        size and nesting: see the API's description."""
        holder["log"].log([FeedbackRow(time.time(), body.request_id, body.label)])
        return {"status": "accepted"}

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        """Prometheus metrics, in its text format."""
        serving = follower.serving
        for variant, loaded in (("champion", serving.champion), ("challenger", serving.challenger)):
            metrics.model_version.labels(variant).set(float(loaded.version) if loaded else 0)
        metrics.canary_weight.set(serving.weight)
        metrics.shadow_share.set(serving.shadow_share)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, with /predict's body schema taken from the serving champion."""
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        champion = follower.serving.champion
        features = champion.record_model.model_json_schema() if champion else None
        body = schema["paths"]["/predict"]["post"]["requestBody"]
        body["content"]["application/json"]["schema"] = predict_body_schema(features, cfg.max_batch)
        body["description"] = f"One record, or a batch of 1 to {cfg.max_batch} records. {LIMITS}"
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
