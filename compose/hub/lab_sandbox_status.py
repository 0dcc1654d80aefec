"""A Jupyter server extension: GET <server>/lab-sandbox/status is `lab status --json` of the sandbox in this
learner's container, behind the server's own authentication (the hub's status reads it through the proxy)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web


def _services() -> list[dict[str, Any]]:
    from lab_runtime.backends import get_backend
    from lab_runtime.settings import Settings

    return [asdict(r) for r in get_backend(Settings()).status()]


class SandboxStatus(APIHandler):
    @web.authenticated
    async def get(self) -> None:
        rows = await asyncio.get_running_loop().run_in_executor(None, _services)  # probes block: off the loop
        self.finish(json.dumps({"healthy": bool(rows) and all(r["healthy"] for r in rows), "services": rows}))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "lab_sandbox_status"}]


def _load_jupyter_server_extension(server_app) -> None:  # type: ignore[no-untyped-def]
    route = url_path_join(server_app.web_app.settings["base_url"], "lab-sandbox", "status")
    server_app.web_app.add_handlers(".*$", [(route, SandboxStatus)])
