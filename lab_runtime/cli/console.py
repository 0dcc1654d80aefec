"""`lab console serve|token|tokens|revoke|status`: the instructor console (grader.console), its tokens, and the
cohort as it sees it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lab_runtime.cli.common import JSON, app, friendly, grid, out, plain, print_json, settings
from lab_runtime.errors import ConsoleError, LabError

if TYPE_CHECKING:
    from grader.console.app import Skills
    from grader.console.store import SqliteStore
    from lab_runtime.journal import Event

console_app = typer.Typer(help="The instructor console: a class's sandboxes live in one page.", no_args_is_help=True)
app.add_typer(console_app, name="console")
STORE = typer.Option(
    None,
    "--store",
    help="the console's database (default: <state dir>/console/console.db; given, no sandbox is needed)",
)


def _store(path: Path | None) -> SqliteStore:
    from grader.console.store import SqliteStore

    return SqliteStore(path or settings().root / "console" / "console.db")


def _key(store_path: Path, key_file: Path | None) -> bytes:
    """The key the console signs exported bundles with: `key_file` (the instructor key), else its own, made once
    beside its store."""
    from grader.bundles import read_key

    if key_file is not None:
        return read_key(key_file)
    own = store_path.parent / "console.key"
    if not own.exists():
        fd = os.open(own, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    return read_key(own)


def _skills() -> Skills:
    """A learner's level per skill of the matrix shown so far, from their events: (skill, level name) pairs."""
    from grader.skills import from_journal, levels, load_matrix
    from lab_runtime.cli.skills import references

    refs = references()
    matrix = load_matrix(refs)

    def of(events: Sequence[Event], learner: str) -> tuple[tuple[str, str], ...]:
        found = levels(matrix, from_journal(events, learner), refs.drills)
        return tuple((s.skill, s.name) for s in found if s.level > 0)

    return of


@console_app.command("serve")
@friendly
def serve(
    port: int = typer.Option(8800, help="the port to listen on"),
    host: str = typer.Option("127.0.0.1", help="the address to listen on (0.0.0.0: every interface, for a class)"),
    store_path: Path = STORE,
    key_file: Path | None = typer.Option(
        None, "--key-file", help="the instructor key exported bundles are signed with (default: the console's own)"
    ),
    base_path: str = typer.Option(
        "", "--base-path", help="the path a proxy serves the console under, e.g. /services/console (the class hub)"
    ),
    hub_folder: Path | None = typer.Option(
        None, "--hub-folder", help="behind the class hub: its folder (why learners' servers failed to start)"
    ),
) -> None:
    """Serve the console: the cohort live, drills and game days for chosen learners, exports."""
    import socket

    import uvicorn

    from grader.console.app import create_app
    from grader.console.hub_login import HubLogin

    if base_path and not base_path.startswith("/"):
        raise ConsoleError(f"--base-path {base_path!r}: a path starting with /, e.g. /services/console")
    with socket.socket() as probe:  # where it will listen: a port taken, or not ours to take, is one line
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConsoleError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port") from None
    store = _store(store_path)
    app_ = create_app(store, _key(store.path, key_file), _skills(), hub_folder, HubLogin.from_environment())
    where = f"http://{host}:{port}{base_path}"
    plain(f"console on {where} (store {store.path}); sign in with `lab console token --instructor`")
    app_.root_path = base_path.rstrip("/")  # the proxy passes the whole path on: routes are matched below it
    uvicorn.run(app_, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


@console_app.command("token")
@friendly
def token(
    learner: str | None = typer.Argument(None, help="the learner the token is for"),
    instructor: bool = typer.Option(False, "--instructor", help="an instructor's token (the cohort, orders)"),
    store_path: Path = STORE,
) -> None:
    """Issue a token: a learner's (their sandbox's LAB_CONSOLE_TOKEN) or an instructor's. It is shown once."""
    from lab_runtime.settings import learner_refusal

    if instructor == (learner is not None):
        raise LabError("name the learner (`lab console token ada`) or pass --instructor, not both")
    if learner is not None and (refusal := learner_refusal(learner, "LEARNER")):
        raise LabError(refusal)
    store = _store(store_path)
    token_id, made = store.issue("instructor" if instructor else "learner", learner)
    plain(f"token {token_id} for {learner or 'an instructor'} (shown once; `lab console revoke {token_id}` ends it):")
    print(made)


@console_app.command("tokens")
@friendly
def tokens(store_path: Path = STORE, as_json: bool = JSON) -> None:
    """The tokens issued: id, role, learner, revoked or not (never the tokens themselves)."""
    from dataclasses import asdict

    found = _store(store_path).tokens()
    if as_json:
        print_json([asdict(t) for t in found])
        return
    table = grid("id", "role", "learner", "state")
    for t in found:
        table.add_row(t.token_id, t.role, t.learner or "-", "revoked" if t.revoked else "valid")
    out.print(table)


@console_app.command("revoke")
@friendly
def revoke(
    token_id: str = typer.Argument(..., help="the token's id (`lab console tokens`)"), store_path: Path = STORE
) -> None:
    """Revoke a token: its sandbox's agent and its pages are refused from now on (401)."""
    record = _store(store_path).revoke(token_id)
    plain(f"token {record.token_id} ({record.learner or 'instructor'}) revoked")


@console_app.command("status")
@friendly
def status(
    url: str = typer.Option(..., envvar="LAB_CONSOLE_URL", help="the console (default: LAB_CONSOLE_URL)"),
    token_: str = typer.Option(
        ..., "--token", envvar="LAB_CONSOLE_INSTRUCTOR_TOKEN", help="an instructor token (LAB_CONSOLE_INSTRUCTOR_TOKEN)"
    ),
    as_json: bool = JSON,
) -> None:
    """The cohort as the console shows it: each learner's sandbox, lab, drill under way and last order."""
    import httpx

    base, given = url, token_
    try:
        response = httpx.get(
            base.rstrip("/") + "/api/cohort", headers={"Authorization": f"Bearer {given}"}, timeout=10, trust_env=False
        )
    except httpx.HTTPError as exc:
        raise ConsoleError(
            f"the console at {base} does not answer ({exc!r}); is `lab console serve` running?"
        ) from None
    if response.status_code != 200:
        detail = response.json().get("detail") if response.headers.get("content-type") == "application/json" else ""
        raise ConsoleError(f"the console refused: {response.status_code} {detail}")
    body = response.json()
    if as_json:
        print_json(body)
        return
    table = grid("learner", "sandbox", "lab", "drill under way", "runs", "last order")
    for r in body["learners"]:
        active = r["active"]
        order = r["order"]
        table.add_row(
            r["learner"],
            r["health"]["status"],
            f"{r['lab']} ({r['steps']})" if r["lab"] else "-",
            f"{active['drill']} ({active['outcome']})" if active else "-",
            str(len(r["runs"])),
            f"{order['action']}: {order['state']}" if order else "-",
        )
    out.print(table)
