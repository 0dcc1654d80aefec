"""The class hub's REST API as `lab hub` uses it: users and their servers, and each learner's sandbox read through
the hub's proxy (their server's /lab-sandbox/status), all with the `lab-cli` service's token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from lab_runtime.errors import HubError


class HubApi:
    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {token}"}, timeout=timeout, trust_env=False
        )

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HubError(f"the hub at {self.url} does not answer ({exc!r}); is it up (`lab hub status`)?") from None

    def answers(self) -> bool:
        try:
            return self.client.get("/hub/api/").status_code == 200
        except httpx.HTTPError:
            return False

    def user(self, name: str) -> dict[str, Any] | None:
        """The hub's model of `name` (its servers among it), None when the hub does not know them."""
        response = self._call("GET", f"/hub/api/users/{quote(name)}")
        if response.status_code == 404:
            return None
        self._check(response, f"reading {name}")
        body: dict[str, Any] = response.json()
        return body

    def start(self, name: str) -> None:
        """Ask for `name`'s server; 400 is the hub saying it is already running or starting."""
        response = self._call("POST", f"/hub/api/users/{quote(name)}/server")
        if response.status_code != 400:
            self._check(response, f"starting {name}'s server")

    def stop(self, name: str) -> None:
        response = self._call("DELETE", f"/hub/api/users/{quote(name)}/server")
        self._check(response, f"stopping {name}'s server")

    def sandbox(self, name: str) -> dict[str, Any] | None:
        """The learner's sandbox as their server sees it (`lab status --json`), None when it does not answer."""
        try:
            response = self.client.get(f"/user/{quote(name)}/lab-sandbox/status", timeout=5)
        except httpx.HTTPError:
            return None
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith("application"):
            return None
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def _check(response: httpx.Response, doing: str) -> None:
        if response.status_code >= 300:
            try:
                said = response.json().get("message", "")
            except ValueError:
                said = response.text[:200]
            raise HubError(f"the hub refused {doing}: {response.status_code} {said}")
