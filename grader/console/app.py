"""The console's web application: the agents' API (signed batches of journal events, order polls and answers), the
instructor's API and pages (the cohort, orders, exports), a learner's own page, and `/live`, the server-sent
events that keep a page current.

Who calls is known from a bearer token (or, on the pages, the cookie the sign-in sets): agents and learners see
and write only their own learner's data; the cohort, orders and exports are the instructor's.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader import report, xapi
from grader.cohort import cohort
from grader.console import pages
from grader.console.hub_login import HubLogin
from grader.console.roster import ROW_KINDS, Row, for_learner, health, row, unreadable
from grader.console.store import CursorMismatch, Identity, Store
from grader.results import Bundle, build_bundle, sign
from lab_runtime.console.wire import (
    EVENTS_PATH,
    MAX_ID,
    MAX_SKEW,
    ORDER_WAIT,
    ORDERS_PATH,
    SIGNATURE_HEADER,
    TIME_HEADER,
    TOKEN_HEADER,
    Batch,
    DrillChoice,
    Order,
    OrderResult,
    signed,
)
from lab_runtime.errors import LabError, NotFound
from lab_runtime.hub import failures
from lab_runtime.journal import Event

COOKIE = "lab_console"
STATE_COOKIE = "lab_console_oauth"  # the state of a sign-in through the class hub, until it comes back
MAX_BODY = 4 * 2**20  # bytes in one agent request at most
FORM_BODY = 65_536  # bytes in a form or an order at most
LIVE_TICK = 0.1  # seconds between a live page's looks at the store
LIVE_REFRESH = 5.0  # seconds after which a live page is sent again unchanged (ages and health move on)
Skills = Callable[[Sequence[Event], str], tuple[tuple[str, str], ...]]


class Console:
    """The console's reading of its store: each learner's row (rebuilt only when their sandbox sent events),
    the fragment a live page shows, and the cohort's bundles. Safe to call from several threads at once."""

    def __init__(self, store: Store, key: bytes, skills: Skills | None = None, hub_folder: Path | None = None) -> None:
        self.store = store
        self.key = key
        self.skills = skills
        self.hub_folder = hub_folder  # behind the class hub: its folder, with why learners' servers failed to start
        self._events: dict[str, list[Event]] = {}  # each learner's events a row shows, numbered by arrival
        self._rows: dict[str, Row] = {}
        self._fragments: dict[tuple[int, int, str], str] = {}
        self._lock = threading.Lock()

    def rows(self, only: str | None = None) -> list[Row]:
        with self._lock:
            return self._rows_now(only)

    def _rows_now(self, only: str | None) -> list[Row]:
        now = time.time()
        sandboxes = {s.learner: s for s in self.store.sandboxes()}
        latest: dict[str, dict[str, Any]] = {}
        for o in reversed(self.store.orders()):
            latest[o.learner] = {"action": o.order.action, "state": o.state, "message": o.message}
        found = []
        for learner in [only] if only else self.store.learners():
            sb = sandboxes.get(learner)
            state = sb.state if sb else None
            services, seen = (state.services if state else None), (sb.seen if sb else None)
            upto, held = sb.seq if sb else 0, self._events.get(learner, [])
            more = self.store.events_since(learner, ROW_KINDS, held[-1].id if held else 0, upto) if upto else []
            cached = self._rows.get(learner)
            if cached is None or more:  # rebuilt only when events it shows arrived (not probe results)
                held = self._events[learner] = held + more
                try:
                    built = row(learner, held, services, None, seen, 0, None, now, self.skills)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    built = unreadable(learner, exc, health(services, seen, now), 0)
                self._rows[learner] = cached = built
            found.append(
                replace(
                    cached,
                    health=health(services, seen, now, self._failure(learner)),
                    runtime=state.runtime if state else None,
                    cursor=sb.cursor if sb else 0,
                    last_event=sb.last_ts if sb else None,
                    order=latest.get(learner),
                )
            )
        return found

    def _failure(self, learner: str) -> tuple[str, float] | None:
        return failures.read(self.hub_folder, learner) if self.hub_folder else None

    def fragment(self, who: Identity) -> str:
        """The live part of `who`'s page (cached while the store and the clock's 5-second tick stand still)."""
        key = (self.store.version, int(time.time() / LIVE_REFRESH), who.learner or "*")
        with self._lock:
            if key in self._fragments:
                return self._fragments[key]
            if len(self._fragments) > 100:
                self._fragments.clear()
            instructor = who.role == "instructor"
            rows = self._rows_now(None) if instructor else [for_learner(r) for r in self._rows_now(who.learner)]
            orders, drills = (self.store.orders(), self.drills()) if instructor else ([], [])
            html = self._fragments[key] = pages.fragment(rows, orders, instructor, drills)
            return html

    def drills(self) -> list[DrillChoice]:
        """The drills the sandboxes have, by id (the order form's choices)."""
        found: dict[str, DrillChoice] = {}
        for sb in self.store.sandboxes():
            for d in sb.state.drills if sb.state else []:
                found.setdefault(d.id, d)
        return [found[k] for k in sorted(found)]

    def bundles(self) -> tuple[list[Bundle], list[str]]:
        """Each learner's signed bundle, built from the journal their sandbox shipped; and the learners whose
        events could not be graded (left out, named)."""
        now, found, unread = time.time(), [], []
        for learner in self.store.learners():
            try:
                events = self.store.events_since(learner, None, 0)  # numbered by arrival: journals in turn
                found.append(Bundle.model_validate(sign(build_bundle(events, learner, now), self.key)))
            except (KeyError, TypeError, ValueError, AttributeError):
                unread.append(learner)
        return found, unread


def _under(request: Request, path: str) -> str:
    """`path` of this console as the browser addresses it: under the path it is served at (behind the class hub,
    /services/console), if any."""
    return str(request.scope.get("root_path", "")).rstrip("/") + path


def _below(request: Request) -> str:
    """The request's path below the path the console is served at: what an agent signs, wherever it is mounted."""
    path, root = request.url.path, str(request.scope.get("root_path", "")).rstrip("/")
    return path[len(root) :] if root and path.startswith(root + "/") else path


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) past `limit` bytes before more is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"a body of {int(declared):,} bytes; at most {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"a body of more than {limit:,} bytes; at most {limit:,}")
    return bytes(body)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"


class OrdersIn(BaseModel):
    """`POST /api/orders`: one order for each learner named."""

    model_config = ConfigDict(extra="forbid")
    learners: list[str] = Field(max_length=1000)
    order: Order


def create_app(
    store: Store,
    key: bytes,
    skills: Skills | None = None,
    hub_folder: Path | None = None,
    hub: HubLogin | None = None,
) -> FastAPI:
    """The console's app; behind the class hub, `hub_folder`: the hub's folder (why learners' servers failed to
    start), and `hub`: its sign-in (OAuth), offered on the sign-in page."""
    console = Console(store, key, skills, hub_folder)
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

    def check(who: Identity | None, role: str | None) -> Identity:
        if who is None:
            raise HTTPException(401, "the token is unknown or revoked; ask the instructor for a new one")
        if role is not None and who.role != role:
            raise HTTPException(403, f"this needs an {role} token; yours is a {who.role}'s")
        return who

    def by_bearer(request: Request, role: str) -> Identity:
        """The API's caller, by its bearer token only (no cookie: another site's page cannot call the API)."""
        token = _bearer(request)
        if not token:
            raise HTTPException(401, "no token: send `Authorization: Bearer TOKEN` (`lab console token`)")
        return check(store.identify(token), role)

    def by_page(request: Request, role: str | None = None) -> Identity:
        """A page's caller, by the cookie the sign-in set (or a bearer token)."""
        token = _bearer(request) or request.cookies.get(COOKIE)
        if not token:
            raise HTTPException(401, "not signed in: open /login")
        return check(store.identify(token), role)

    def same_origin(request: Request) -> None:
        """A form posted from this console's own page: a browser says where a POST comes from. Compared by host
        and port, as the browser addressed the console (behind a proxy: the Host it passes on)."""
        origin = request.headers.get("origin")
        host = request.headers.get("x-forwarded-host") or request.headers.get("host")
        if origin is not None and urlsplit(origin).netloc != host:
            raise HTTPException(403, f"a form from {origin} cannot act on this console")

    async def agent(request: Request, limit: int = MAX_BODY) -> tuple[Identity, bytes]:
        """The agent behind a signed request, and its body."""
        body = await _body(request, limit)
        named = request.headers.get(TOKEN_HEADER)
        if not named:
            raise HTTPException(401, f"no {TOKEN_HEADER} header: agent requests name their token's id")
        who = check(await run_in_threadpool(store.identify_id, named), "learner")
        target = _below(request) + (f"?{request.url.query}" if request.url.query else "")
        given, at = request.headers.get(SIGNATURE_HEADER), request.headers.get(TIME_HEADER)
        if not signed(who.key, given, request.method, target, at, body, time.time()):
            raise HTTPException(
                401,
                f"the {SIGNATURE_HEADER} header does not sign this request with its token, or its {TIME_HEADER} is "
                f"more than {MAX_SKEW:.0f}s off the console's clock",
            )
        return who, body

    @app.post(EVENTS_PATH)
    async def events_in(request: Request) -> JSONResponse:
        who, body = await agent(request)
        assert who.learner is not None
        try:
            batch = await run_in_threadpool(Batch.model_validate_json, body)
        except ValidationError as exc:
            raise HTTPException(422, _first_error(exc)) from None
        # Events are filed under the token's learner whatever they name (a team's run names its members); the
        # sandbox itself must be that learner's.
        if batch.state is not None and batch.state.learner != who.learner:
            raise HTTPException(
                403,
                f"this token is {who.learner}'s, the sandbox journals as {batch.state.learner}: start it with "
                f"LAB_LEARNER={who.learner}",
            )
        try:
            cursor = await run_in_threadpool(store.take_batch, who.learner, batch)
        except CursorMismatch as exc:
            return JSONResponse({"detail": str(exc), "cursor": exc.cursor}, status_code=409)
        return JSONResponse({"cursor": cursor})

    @app.get(ORDERS_PATH)
    async def orders_out(
        request: Request,
        after: int = Query(0, ge=0, le=MAX_ID),
        wait: float = Query(0.0, ge=0.0, le=ORDER_WAIT, allow_inf_nan=False),
    ) -> JSONResponse:
        who, _ = await agent(request, 0)
        assert who.learner is not None
        until = time.monotonic() + wait
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
    async def order_answered(request: Request, order_id: int = PathParam(ge=1, le=MAX_ID)) -> JSONResponse:
        who, body = await agent(request, 16_384)
        assert who.learner is not None
        try:
            result = OrderResult.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, _first_error(exc)) from None
        await run_in_threadpool(store.answer, who.learner, order_id, result)
        return JSONResponse({"order": order_id, "state": result.state})

    @app.get("/api/cohort")
    def api_cohort(request: Request) -> JSONResponse:
        by_bearer(request, "instructor")
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
        who = by_bearer(request, "learner")
        assert who.learner is not None
        return JSONResponse(for_learner(console.rows(who.learner)[0]).as_dict())

    @app.post("/api/orders")
    async def api_orders(request: Request) -> JSONResponse:
        await run_in_threadpool(by_bearer, request, "instructor")
        try:
            wanted = OrdersIn.model_validate_json(await _body(request, FORM_BODY))
        except ValidationError as exc:
            detail = f"an order is {{learners: [...], order: {{action, ...}}}}: {_first_error(exc)}"
            raise HTTPException(422, detail) from None
        return JSONResponse({"orders": await run_in_threadpool(place, wanted.learners, wanted.order)})

    def place(learners: list[str], order: Order) -> list[int]:
        if not learners:
            raise HTTPException(422, "no learner ticked: choose who gets the order")
        if unknown := sorted(set(learners) - set(store.learners())):
            raise HTTPException(422, f"unknown learner(s): {', '.join(unknown)}")
        if order.seed is None and order.action != "abort":  # one seed for all: the same drill at the same moment
            order = order.model_copy(update={"seed": secrets.randbelow(1_000_000)})
        return store.place(learners, order)

    @app.get("/", response_class=HTMLResponse, response_model=None)
    def home(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        who = store.identify(token) if token else None
        if who is None:
            return RedirectResponse(_under(request, "/login"), status_code=303)
        live = console.fragment(who)
        if who.role == "instructor":
            return HTMLResponse(pages.instructor(live, request.query_params.get("notice")))
        return HTMLResponse(pages.learner(who.learner or "", live))

    @app.get("/login", response_class=HTMLResponse)
    def login_page() -> str:
        return pages.login(hub=hub is not None)

    @app.get("/oauth_login")
    def oauth_login(request: Request) -> Response:
        """Off to the class hub's sign-in, with a state this browser must bring back."""
        if hub is None:
            raise HTTPException(404, "this console is not behind a class hub: sign in with a token at /login")
        state = secrets.token_urlsafe(16)
        response = RedirectResponse(hub.authorize_url(state), status_code=303)
        response.set_cookie(STATE_COOKIE, state, httponly=True, samesite="lax", path=_under(request, "/"))
        return response

    @app.get("/oauth_callback", response_model=None)
    def oauth_callback(request: Request, code: str = "", state: str = "") -> Response:
        """Back from the hub's sign-in: its admins are signed in as instructors, its learners as themselves."""
        if hub is None:
            raise HTTPException(404, "this console is not behind a class hub: sign in with a token at /login")
        kept = request.cookies.get(STATE_COOKIE)
        if not code or not kept or not secrets.compare_digest(kept.encode(), state.encode()):
            return HTMLResponse(pages.login("That sign-in did not start here: sign in again.", hub=True), 400)
        try:
            name, admin = hub.user_for(code)
        except LabError as exc:
            return HTMLResponse(pages.login(str(exc), hub=True), 401)
        if not admin and name not in store.learners():
            return HTMLResponse(pages.login(f"{name} is neither an instructor nor a learner here.", hub=True), 403)
        _, token = store.issue("instructor" if admin else "learner", None if admin else name)
        response = RedirectResponse(_under(request, "/"), status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path=_under(request, "/"))
        response.delete_cookie(STATE_COOKIE, path=_under(request, "/"))
        return response

    @app.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        same_origin(request)
        form = parse_qs((await _body(request, FORM_BODY)).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or await run_in_threadpool(store.identify, token) is None:
            return HTMLResponse(pages.login("That token is unknown or revoked."), status_code=401)
        response = RedirectResponse(_under(request, "/"), status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=_under(request, "/"))
        return response

    @app.get("/logout")
    def logout(request: Request) -> Response:
        response = RedirectResponse(_under(request, "/login"), status_code=303)
        response.delete_cookie(COOKIE, path=_under(request, "/"))
        return response

    @app.post("/orders", response_model=None)
    async def page_order(request: Request) -> Response:
        same_origin(request)
        await run_in_threadpool(by_page, request, "instructor")
        form = parse_qs((await _body(request, FORM_BODY)).decode(errors="replace"))

        def one(name: str) -> str | None:
            return (form.get(name) or [""])[0].strip() or None

        action = one("action") or "drill"
        span = (one("between_min") or "0s", one("between_max") or "0s")
        try:
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
            ids = await run_in_threadpool(place, form.get("learner", []), order)
            notice = f"order sent to {len(ids)} sandbox(es)"
        except ValidationError as exc:
            notice = f"the order was not sent: {_first_error(exc)}"
        except ValueError as exc:
            notice = f"the order was not sent: the seed is a whole number ({exc})"
        except HTTPException as exc:
            notice = f"the order was not sent: {exc.detail}"
        return RedirectResponse(_under(request, f"/?notice={quote(notice)}"), status_code=303)

    @app.get("/live")
    async def live(request: Request) -> StreamingResponse:
        who = await run_in_threadpool(by_page, request)
        token = _bearer(request) or request.cookies.get(COOKIE) or ""

        async def stream() -> AsyncIterator[str]:
            sent: tuple[int, int] | None = None
            while not await request.is_disconnected():
                mark = (store.version, int(time.time() / LIVE_REFRESH))
                if mark != sent:
                    if await run_in_threadpool(store.identify, token) is None:
                        return  # revoked: the page gets nothing more
                    html = await run_in_threadpool(console.fragment, who)
                    yield (
                        f"event: cohort\nid: {mark[0]}\n" + "".join(f"data: {ln}\n" for ln in html.splitlines()) + "\n"
                    )
                    sent = mark
                await asyncio.sleep(LIVE_TICK)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    def exported(request: Request) -> list[Bundle]:
        by_page(request, "instructor")
        bundles, unread = console.bundles()
        if unread:
            raise HTTPException(422, f"the events of {', '.join(unread)} cannot be graded; see their rows")
        return bundles

    @app.get("/export/report.html", response_class=HTMLResponse)
    def export_html(request: Request) -> str:
        return report.to_html(cohort("console", exported(request)))

    @app.get("/export/report.json")
    def export_json(request: Request) -> JSONResponse:
        return JSONResponse(report.as_dict(cohort("console", exported(request))))

    @app.get("/export/xapi.json")
    def export_xapi(request: Request) -> JSONResponse:
        return JSONResponse(xapi.statements(exported(request)))

    @app.get("/export/bundles.json")
    def export_bundles(request: Request) -> JSONResponse:
        return JSONResponse([b.model_dump(mode="json") for b in exported(request)])

    return app
