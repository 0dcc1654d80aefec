"""The console's sign-in through the class hub: configured from the environment JupyterHub gives its services."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn

from grader.console.app import create_app
from grader.console.hub_login import HubLogin
from grader.console.pages import login
from grader.console.store import SqliteStore
from lab_runtime.errors import ConsoleError
from tests.conftest import free_port
from tests.sandbox import wait_for

HUB_ENV = {
    "JUPYTERHUB_API_URL": "http://lab-hub:8081/hub/api/",
    "JUPYTERHUB_API_TOKEN": "secret",
    "JUPYTERHUB_CLIENT_ID": "service-console",
    "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/console/oauth_callback",
    "JUPYTERHUB_BASE_URL": "/",
    "JUPYTERHUB_SERVICE_NAME": "console",
}


def test_no_hub_in_the_environment_means_tokens_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    assert HubLogin.from_environment() is None
    assert "oauth_login" not in login()


def test_the_hub_sign_in_sends_the_browser_to_the_hubs_authorize_page(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in HUB_ENV.items():
        monkeypatch.setenv(name, value)
    hub = HubLogin.from_environment()
    assert hub is not None and hub.api_url == "http://lab-hub:8081/hub/api"
    url = urlsplit(hub.authorize_url("s1"))
    assert url.path == "/hub/api/oauth2/authorize"
    assert parse_qs(url.query) == {
        "client_id": ["service-console"],
        "redirect_uri": ["/services/console/oauth_callback"],
        "response_type": ["code"],
        "state": ["s1"],
    }
    assert "href='oauth_login'" in login(hub=True)


class _Hub(HubLogin):
    """The hub's side of the code exchange, as the console sees it: a code stands for a user (the exchange itself
    runs against the real hub in tests/hub/test_hub.py)."""

    def user_for(self, code: str) -> tuple[str, bool]:
        if code == "refused":
            raise ConsoleError("the hub refused the sign-in's code (400): sign in again")
        return {"c-admin": ("instructor", True), "c-ada": ("ada", False), "c-eve": ("eve", False)}[code]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    """The console's app served by uvicorn in this process (the hub stubbed), under the hub's path."""
    store = SqliteStore(tmp_path / "console.db")
    store.issue("learner", "ada")
    hub = _Hub("http://hub/hub/api", "secret", "service-console", "/services/console/oauth_callback", "/")
    app = create_app(store, b"k" * 32, hub=hub)
    app.root_path = "/services/console"
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the console started")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as test_client:
        yield test_client
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


def _signed_in(client: httpx.Client, code: str) -> Any:
    started = client.get("/services/console/oauth_login", follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"].startswith("/hub/api/oauth2/authorize?")
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    return client.get(f"/services/console/oauth_callback?code={code}&state={state}", follow_redirects=False)


def test_the_hubs_admin_signs_in_as_an_instructor_and_a_learner_as_themselves(client: httpx.Client) -> None:
    back = _signed_in(client, "c-admin")
    assert back.status_code == 303 and back.headers["location"] == "/services/console/"
    assert "Instructor console" in client.get("/services/console/").text
    assert client.get("/services/console/export/report.json").status_code == 200  # an instructor's page
    client.cookies.clear()
    assert _signed_in(client, "c-ada").status_code == 303
    assert "ada's sandbox" in client.get("/services/console/").text
    assert client.get("/services/console/export/report.json").status_code == 403  # not a learner's


def test_a_sign_in_that_did_not_start_here_or_that_the_hub_refuses_signs_no_one_in(client: httpx.Client) -> None:
    forged = client.get("/services/console/oauth_callback?code=c-admin&state=guessed", follow_redirects=False)
    assert forged.status_code == 400 and "did not start here" in forged.text
    odd = client.get("/services/console/oauth_callback?code=c-admin&state=\u00e9t\u00e9", follow_redirects=False)
    assert odd.status_code == 400  # not a 500
    refused = _signed_in(client, "refused")
    assert refused.status_code == 401 and "the hub refused the sign-in" in refused.text
    stranger = _signed_in(client, "c-eve")
    assert stranger.status_code == 403 and "eve is neither an instructor nor a learner here" in stranger.text
    assert client.get("/services/console/", follow_redirects=False).headers["location"] == "/services/console/login"


def test_an_agent_signs_the_path_below_where_the_console_is_served(tmp_path: Path) -> None:
    from grader.console.app import _below

    request = type("R", (), {"url": urlsplit("http://h/services/console/api/agent/events"), "scope": {}})()
    request.scope = {"root_path": "/services/console"}
    assert _below(request) == "/api/agent/events"  # type: ignore[arg-type]
    request.scope = {"root_path": ""}
    assert _below(request) == "/services/console/api/agent/events"  # type: ignore[arg-type]
