"""GET from the sandbox's own services on 127.0.0.1, with the standard library only.

The CLI, lab checks, drills' probes and the monitor's health check read small JSON answers from local services.
`http.client` does that without importing an HTTP library or building an SSL context (tens of milliseconds of a
`lab` command's CPU). Proxies from the environment are never consulted: these services are always local.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class LoopbackError(OSError):
    """The service did not answer: refused, reset, timed out, or not HTTP."""


class LoopbackTimeout(LoopbackError):
    """No answer within the timeout."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise LoopbackError(f"answered {self.status_code}: {self.text[:200]}")


def get(url: str, timeout: float) -> Answer:
    """GET `url` (http only); LoopbackError, or LoopbackTimeout, when it does not answer."""
    return request("GET", url, timeout)


def post(url: str, timeout: float) -> Answer:
    """POST to `url` with no body; as `get`."""
    return request("POST", url, timeout)


def request(method: str, url: str, timeout: float) -> Answer:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LoopbackError(f"not a local http URL: {url}")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request(method, path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        return Answer(response.status, response.read())
    except TimeoutError as exc:  # socket.timeout is TimeoutError
        raise LoopbackTimeout(f"{url}: no answer within {timeout:g}s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise LoopbackError(f"{url}: {exc or type(exc).__name__}") from exc
    finally:
        connection.close()
