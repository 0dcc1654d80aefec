"""One HTTP client, shared per process, for the sandbox's own services on 127.0.0.1.

`httpx.get` builds a client, and with it an SSL context, on every call: tens of milliseconds, far more on a busy
machine, and a probe or a status check makes several. Proxies from the environment are ignored: these services
are always local.
"""

from __future__ import annotations

import atexit
import threading

import httpx

_lock = threading.Lock()
_client: httpx.Client | None = None


def client() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(trust_env=False)
            atexit.register(_client.close)
        return _client


def get(url: str, timeout: float) -> httpx.Response:
    """GET `url` through the shared client (raises httpx.HTTPError as httpx.get does)."""
    return client().get(url, timeout=timeout)
