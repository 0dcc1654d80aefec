"""The model service's fault endpoints from other processes (drills, `lab reset`), with the admin token."""

from __future__ import annotations

from typing import Any

import httpx

from lab_runtime.errors import FaultInjectionFailed, RuntimeNotReady
from lab_runtime.service.admin import admin_token
from lab_runtime.service.faults import ServiceFault
from lab_runtime.settings import Settings


class ServiceAdmin:
    """Puts, lists and removes faults in the running model service. A fault is active as soon as `put` returns."""

    def __init__(self, settings: Settings, timeout: float = 3.0, transport: httpx.BaseTransport | None = None) -> None:
        self._url = settings.service_url
        self._settings = settings
        self._timeout = timeout
        self._transport = transport

    def put(self, fault_id: str, fault: ServiceFault) -> float:
        """Add or replace the fault `fault_id`; returns when it expires (wall-clock seconds)."""
        body = self._call("PUT", f"/admin/faults/{fault_id}", json=fault.model_dump(mode="json"))
        return float(body["expires_at"])

    def delete(self, fault_id: str) -> bool:
        """Remove the fault `fault_id`; False when it was not active (never put, removed, or expired)."""
        return self._call("DELETE", f"/admin/faults/{fault_id}", missing_ok=True) is not None

    def list(self) -> dict[str, dict[str, Any]]:
        """The active faults by id: the fault's fields, `expires_at` and `expires_in` (seconds)."""
        body = self._call("GET", "/admin/faults")
        return {entry["id"]: entry for entry in body["faults"]}

    def clear(self) -> int:
        """Remove every fault; returns how many were active."""
        return int(self._call("DELETE", "/admin/faults")["removed"])

    def _call(self, method: str, path: str, json: Any = None, missing_ok: bool = False) -> Any:
        headers = {"Authorization": f"Bearer {admin_token(self._settings)}"}
        try:
            with httpx.Client(
                base_url=self._url, timeout=self._timeout, trust_env=False, transport=self._transport
            ) as client:
                answer = client.request(method, path, json=json, headers=headers)
        except httpx.TransportError as exc:
            raise RuntimeNotReady(
                f"the model service does not answer at {self._url} ({type(exc).__name__}); "
                "start the sandbox with `lab up`, or read `lab logs model-service`"
            ) from None
        if answer.status_code == 404 and missing_ok:
            return None
        if answer.status_code == 401:
            raise FaultInjectionFailed(
                f"{method} {path}: the model service refused the admin token (401): it does not match the service's; "
                f"both must read the same {self._settings.admin_token_path} or LAB_ADMIN_TOKEN "
                "(restart the sandbox after changing it)"
            )
        if not answer.is_success:
            raise FaultInjectionFailed(
                f"{method} {path}: the model service answered {answer.status_code}: {_detail(answer)}"
            )
        return answer.json()


def _detail(answer: httpx.Response) -> str:
    """The service's `detail`, a 422's errors as `field: message`, or the start of the body."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" if isinstance(e, dict) else str(e)
            for e in detail
        )[:500]
    return str(detail)[:500]
