"""Per-pair tunnel keys, derived on the node from the master key in a host Secret.

The planner never reads keys; NodeConfigs only name the Secret. Both ends of a tunnel derive
the same pre-shared key from the master and the (sorted) pair of tunnel names, so one leaked
pair key does not open the other tunnels, and rotating the master re-keys all of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any


class KeyError_(Exception):  # noqa: N801 - not the builtin; a missing or empty tunnel key
    pass


def master(secret: Mapping[str, Any], field: str) -> bytes:
    data = (secret.get("data") or {}).get(field)
    if not data:
        name = secret.get("metadata", {}).get("name", "?")
        raise KeyError_(f"Secret {name} has no key {field!r}")
    value = base64.b64decode(data)
    if len(value) < 16:
        raise KeyError_("the tunnel master key must be at least 16 bytes")
    return value


def pair_key(master_key: bytes, a: str, b: str) -> bytes:
    """The 32-byte key both ``a`` and ``b`` derive for their tunnel."""
    first, second = sorted((a, b))
    message = f"kosmos-tunnel|{first}|{second}".encode()
    return hmac.new(master_key, message, hashlib.sha256).digest()
