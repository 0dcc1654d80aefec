"""The canary split: which variant answers a request. Sticky: the same request id, the same variant."""

from __future__ import annotations

import hashlib


def bucket(request_id: str) -> float:
    """A stable, uniform number in [0, 1) for a request id."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def variant_for(request_id: str, weight: float) -> str:
    """'challenger' for a `weight` share of request ids, 'champion' for the rest."""
    return "challenger" if bucket(request_id) < weight else "champion"
