"""The console's sign-in through the class hub: configured from the environment JupyterHub gives its services."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from grader.console.hub_login import HubLogin
from grader.console.pages import login

HUB_ENV = {
    "JUPYTERHUB_API_URL": "http://lab-hub:8081/hub/api/",
    "JUPYTERHUB_API_TOKEN": "secret",
    "JUPYTERHUB_CLIENT_ID": "service-console",
    "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/console/oauth_callback",
    "JUPYTERHUB_BASE_URL": "/",
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
