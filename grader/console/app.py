"""The console's web application: the agents' API (signed batches of journal events, order polls and answers), the
instructor's API and pages (the cohort, orders, exports), a learner's own page, and `/live`, the server-sent
events that keep a page current.

Who calls is known from a bearer token (or, on the pages, the cookie the sign-in sets): agents and learners see
and write only their own learner's data; the cohort, orders and exports are the instructor's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from grader import report, xapi
from grader.cohort import cohort
from grader.console import pages
from grader.console.roster import ROW_KINDS, Row, for_learner, health, row
from grader.console.store import CursorMismatch, Identity, Store
from grader.results import Bundle, build_bundle, sign
from lab_runtime.console.wire import (
    EVENTS_PATH,
    ORDER_WAIT,
    ORDERS_PATH,
    SIGNATURE_HEADER,
    Batch,
    Order,
    OrderResult,
    signed,
)
from lab_runtime.errors import LabError, NotFound
from lab_runtime.journal import Event

COOKIE = "lab_console"
MAX_BODY = 4 * 2**20  # bytes in one agent request at most
LIVE_TICK = 0.1  # seconds between a live page's looks at the store
LIVE_REFRESH = 5.0  # seconds after which a live page is sent again unchanged (ages and health move on)
Skills = Callable[[Sequence[Event], str], tuple[tuple[str, str], ...]]


class Console:
    """The console's reading of its store: each learner's row (rebuilt only when their sandbox sent events),
    the fragment a live page shows, and the cohort's bundles."""

    def __init__(self, store: Store, key: bytes, skills: Skills | None = None) -> None:
        self.store = store
        self.key = key
        self.skills = skills
        self._events: dict[str, list[Event]] = {}
        self._rows: dict[str, tuple[int, Row]] = {}
        self._fragments: dict[tuple[int, int, str], str] = {}

    def rows(self, only: str | None = None) -> list[Row]:
        now = time.time()
        sandboxes = {s.learner: s for s in self.store.sandboxes()}
        latest: dict[str, dict[str, Any]] = {}
        for o in reversed(self.store.orders()):
            latest[o.learner] = {"action": o.order.action, "state": o.state, "message": o.message}
        found = []
        for learner in [only] if only else self.store.learners():
            sb = sandboxes.get(learner)
            cursor = sb.cursor if sb else 0
            cached = self._rows.get(learner)
            if cached is None or cached[0] != cursor:
                held = self._events.setdefault(learner, [])
                held += self.store.events(learner, ROW_KINDS, after=held[-1].id if held else 0)
                state = sb.state if sb else None
                built = row(
                    learner, held, state.services if state else None, state.runtime if state else None,
                    sb.seen if sb else None, cursor, sb.last_ts if sb else None, now, self.skills,
                )  # fmt: skip
                self._rows[learner] = cached = (cursor, built)
            services = sb.state.services if sb and sb.state else None
            fresh = replace(cached[1], health=health(services, sb.seen if sb else None, now))
            found.append(replace(fresh, order=latest.get(learner)))
        return found

    def fragment(self, who: Identity) -> str:
        """The live part of `who`'s page (cached while the store and the clock's 5-second tick stand still)."""
        key = (self.store.version, int(time.time() / LIVE_REFRESH), who.learner or "*")
        if key not in self._fragments:
            if len(self._fragments) > 100:
                self._fragments.clear()
            instructor = who.role == "instructor"
            rows = self.rows() if instructor else [for_learner(r) for r in self.rows(who.learner)]
            orders, drills = (self.store.orders(), self.drills()) if instructor else ([], [])
            self._fragments[key] = pages.fragment(rows, orders, instructor, drills)
        return self._fragments[key]

    def drills(self) -> list[dict[str, Any]]:
        """The drills the sandboxes have, by id (the order form's choices)."""
        found: dict[str, dict[str, Any]] = {}
        for sb in self.store.sandboxes():
            for d in sb.state.drills if sb.state else []:
                found.setdefault(str(d.get("id")), d)
        return [found[k] for k in sorted(found)]

    def bundles(self) -> list[Bundle]:
        """Each learner's signed bundle, built from the journal their sandbox shipped."""
        now = time.time()
        return [
            Bundle.model_validate(sign(build_bundle(self.store.events(learner), learner, now), self.key))
            for learner in self.store.learners()
        ]


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def create_app(store: Store, key: bytes, skills: Skills | None = None) -> FastAPI:
    console = Console(store, key, skills)
    app = FastAPI(title="Instructor console", docs_url=None, redoc_url=None)
    app.state.console = console

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse({"detail": f"{where}: {first['msg']}"}, status_code=422)

    @app.exception_handler(LabError)
    async def _refused(request: Request, exc: LabError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404 if isinstance(exc, NotFound) else 400)

    def identify(request: Request, role: str | None = None) -> Identity:
        token = _token(request)
        if not token:
            raise HTTPException(401, "no token: send `Authorization: Bearer TOKEN` (`lab console token`)")
        who = store.identify(token)
        if who is None:
            raise HTTPException(401, "the token is unknown or revoked; ask the instructor for a new one")
        if role is not None and who.role != role:
            raise HTTPException(403, f"this needs an {role} token; yours is a {who.role}'s")
        return who

    async def agent(request: Request) -> tuple[Identity, bytes]:
        who = identify(request, "learner")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"a request of {len(body):,} bytes; at most {MAX_BODY:,}")
        token = _token(request) or ""
        if not signed(token, request.headers.get(SIGNATURE_HEADER), request.method, request.url.path, body):
            raise HTTPException(401, f"the {SIGNATURE_HEADER} header does not sign this request with its token")
        return who, body

    @app.post(EVENTS_PATH)
    async def events_in(request: Request) -> JSONResponse:
        who, body = await agent(request)
        assert who.learner is not None
        try:
            batch = Batch.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise HTTPException(422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        named = {e.learner for e in batch.events if e.learner is not None}
        if batch.state is not None:
            named.add(batch.state.learner)
        if others := sorted(named - {who.learner}):
            raise HTTPException(
                403,
                f"this token is {who.learner}'s, the sandbox journals as {', '.join(others)}: start it with "
                f"LAB_LEARNER={who.learner}",
            )
        try:
            cursor = await run_in_threadpool(store.take_batch, who.learner, batch.after, batch.events, batch.state)
        except CursorMismatch as exc:
            return JSONResponse({"detail": str(exc), "cursor": exc.cursor}, status_code=409)
        return JSONResponse({"cursor": cursor})

    @app.get(ORDERS_PATH)
    async def orders_out(request: Request, after: int = 0, wait: float = 0.0) -> JSONResponse:
        who, _ = await agent(request)
        assert who.learner is not None
        until = time.monotonic() + min(max(wait, 0.0), ORDER_WAIT)
        seen = -1
        while True:
            if store.version != seen:
                seen = store.version
                found = await run_in_threadpool(store.orders_for, who.learner, after)
                if found or time.monotonic() >= until:
                    return JSONResponse({"orders": [o.model_dump() for o in found]})
            if time.monotonic() >= until or await request.is_disconnected():
                return JSONResponse({"orders": []})
            await asyncio.sleep(0.2)

    @app.post(ORDERS_PATH + "/{order_id}")
    async def order_answered(request: Request, order_id: int) -> JSONResponse:
        who, body = await agent(request)
        assert who.learner is not None
        try:
            result = OrderResult.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors()[0]["msg"]) from None
        await run_in_threadpool(store.answer, who.learner, order_id, result)
        return JSONResponse({"order": order_id, "state": result.state})

    @app.get("/api/cohort")
    def api_cohort(request: Request) -> JSONResponse:
        identify(request, "instructor")
        return JSONResponse(
            {
                "learners": [r.as_dict() for r in console.rows()],
                "orders": [
                    {
                        "id": o.order.id,
                        "learner": o.learner,
                        "order": pages.describe(o),
                        "state": o.state,
                        "message": o.message,
                    }
                    for o in store.orders()
                ],
            }
        )

    @app.get("/api/me")
    def api_me(request: Request) -> JSONResponse:
        who = identify(request, "learner")
        assert who.learner is not None
        return JSONResponse(for_learner(console.rows(who.learner)[0]).as_dict())

    @app.post("/api/orders")
    async def api_orders(request: Request) -> JSONResponse:
        identify(request, "instructor")
        try:
            body = json.loads(await request.body())
            order = Order.model_validate(body.get("order"))
            learners = [str(x) for x in body.get("learners", [])]
        except (ValueError, AttributeError, ValidationError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise HTTPException(422, f"an order is {{learners: [...], order: {{action, ...}}}}: {detail}") from None
        return JSONResponse({"orders": place(learners, order)})

    def place(learners: list[str], order: Order) -> list[int]:
        known = set(store.learners())
        if not learners:
            raise HTTPException(422, "no learner ticked: choose who gets the order")
        if unknown := sorted(set(learners) - known):
            raise HTTPException(422, f"unknown learner(s): {', '.join(unknown)}")
        if order.seed is None and order.action != "abort":  # one seed for all: the same drill at the same moment
            order = order.model_copy(update={"seed": secrets.randbelow(1_000_000)})
        return store.place(learners, order)

    @app.get("/", response_class=HTMLResponse, response_model=None)
    def home(request: Request) -> Response:
        token = _token(request)
        who = store.identify(token) if token else None
        if who is None:
            return RedirectResponse("/login", status_code=303)
        live = console.fragment(who)
        if who.role == "instructor":
            return HTMLResponse(pages.instructor(live, request.query_params.get("notice")))
        return HTMLResponse(pages.learner(who.learner or "", live))

    @app.get("/login", response_class=HTMLResponse)
    def login_page() -> str:
        return pages.login()

    @app.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        token = (parse_qs((await request.body()).decode(errors="replace")).get("token") or [""])[0].strip()
        if not token or store.identify(token) is None:
            return HTMLResponse(pages.login("That token is unknown or revoked."), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.post("/orders", response_model=None)
    async def page_order(request: Request) -> Response:
        identify(request, "instructor")
        form = parse_qs((await request.body()).decode(errors="replace"))

        def one(name: str) -> str | None:
            return (form.get(name) or [""])[0].strip() or None

        try:
            action = one("action") or "drill"
            span = (one("between_min") or "0s", one("between_max") or "0s")
            seed = one("seed")
            order = Order.model_validate(
                {
                    "action": action,
                    "drill": one("drill") if action == "drill" else None,
                    "drills": [d.strip() for d in (one("drills") or "").split(",") if d.strip()],
                    "seed": int(seed) if seed else None,
                    "blind": one("blind") == "1",
                    "between": span if action == "gameday" or one("between_max") else None,
                }
            )
            ids = place(form.get("learner", []), order)
            notice = f"order sent to {len(ids)} sandbox(es)"
        except (ValidationError, ValueError) as exc:
            notice = "the order was not sent: " + (
                exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else f"the seed is a whole number ({exc})"
            )
        except HTTPException as exc:
            notice = f"the order was not sent: {exc.detail}"
        from urllib.parse import quote

        return RedirectResponse(f"/?notice={quote(notice)}", status_code=303)

    @app.get("/live")
    async def live(request: Request) -> StreamingResponse:
        who = identify(request)

        async def stream() -> AsyncIterator[str]:
            sent: tuple[int, int] | None = None
            while not await request.is_disconnected():
                mark = (store.version, int(time.time() / LIVE_REFRESH))
                if mark != sent:
                    html = await run_in_threadpool(console.fragment, who)
                    yield (
                        f"event: cohort\nid: {mark[0]}\n" + "".join(f"data: {ln}\n" for ln in html.splitlines()) + "\n"
                    )
                    sent = mark
                await asyncio.sleep(LIVE_TICK)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/export/report.html", response_class=HTMLResponse)
    def export_html(request: Request) -> str:
        identify(request, "instructor")
        return report.to_html(cohort("console", console.bundles()))

    @app.get("/export/report.json")
    def export_json(request: Request) -> JSONResponse:
        identify(request, "instructor")
        return JSONResponse(report.as_dict(cohort("console", console.bundles())))

    @app.get("/export/xapi.json")
    def export_xapi(request: Request) -> JSONResponse:
        identify(request, "instructor")
        return JSONResponse(xapi.statements(console.bundles()))

    @app.get("/export/bundles.json")
    def export_bundles(request: Request) -> JSONResponse:
        identify(request, "instructor")
        return JSONResponse([b.model_dump(mode="json") for b in console.bundles()])

    return app
