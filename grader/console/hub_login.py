"""Signing in to the console with the class hub's own login (JupyterHub's OAuth), when the console runs as one of
the hub's services: the hub's admins sign in as instructors, its other users as the learner of that name.

JupyterHub hands a service it runs its OAuth client and URLs in the environment (JUPYTERHUB_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx

from lab_runtime.errors import ConsoleError


@dataclass(frozen=True)
class HubLogin:
    api_url: str  # the hub's API, as the console reaches it
    token: str  # the console's own API token: its OAuth client's secret
    client_id: str
    callback: str  # where the hub sends the browser back with a code (the console's /oauth_callback)
    base_url: str  # the hub's public path prefix ("/")

    @classmethod
    def from_environment(cls) -> HubLogin | None:
        """The hub's login when the console runs as a hub service, else None."""
        names = ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_CLIENT_ID", "JUPYTERHUB_OAUTH_CALLBACK_URL")
        if not os.environ.get("JUPYTERHUB_SERVICE_NAME"):  # a learner's own server has the others too
            return None
        found = [os.environ.get(n, "") for n in names]
        if not all(found):
            return None
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        return cls(found[0].rstrip("/"), found[1], found[2], found[3], base if base.endswith("/") else base + "/")

    def authorize_url(self, state: str) -> str:
        """Where the browser signs in to the hub (a path on the hub's own origin)."""
        query = urlencode(
            {"client_id": self.client_id, "redirect_uri": self.callback, "response_type": "code", "state": state}
        )
        return f"{self.base_url}hub/api/oauth2/authorize?{query}"

    def user_for(self, code: str) -> tuple[str, bool]:
        """The hub user a code from the hub's sign-in stands for, and whether they are one of its admins."""
        try:
            with httpx.Client(base_url=self.api_url, timeout=10, trust_env=False) as hub:
                exchanged = hub.post(
                    "/oauth2/token",
                    data={
                        "client_id": self.client_id,
                        "client_secret": self.token,
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": self.callback,
                    },
                )
                if exchanged.status_code != 200:
                    raise ConsoleError(f"the hub refused the sign-in's code ({exchanged.status_code}): sign in again")
                access = exchanged.json()["access_token"]
                who = hub.get("/user", headers={"Authorization": f"token {access}"})
                who.raise_for_status()
                name = str(who.json()["name"])
                model = hub.get(f"/users/{quote(name)}", headers={"Authorization": f"token {self.token}"})
                model.raise_for_status()
                return name, bool(model.json().get("admin"))
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ConsoleError(f"the hub did not confirm the sign-in ({exc!r}): sign in again") from None
