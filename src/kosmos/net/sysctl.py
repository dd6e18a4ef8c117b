"""Kernel parameters the dataplane depends on (forwarding, rp_filter), kept as wanted."""

from __future__ import annotations

from collections.abc import Mapping

from kosmos.net.netns import Namespace


def device_of(key: str) -> str | None:
    """The device a per-device key is about (``net.ipv4.conf.<dev>.rp_filter``), else None."""
    parts = key.split(".")
    if len(parts) == 5 and parts[2] == "conf" and parts[3] not in {"all", "default"}:
        return parts[3]
    return None


async def read(netns: Namespace, keys: list[str]) -> dict[str, str]:
    if not keys:
        return {}
    out = await netns.run("sysctl", "-e", *keys, check=False)
    values: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.strip()] = value.strip()
    return values


async def ensure(netns: Namespace, wanted: Mapping[str, str]) -> list[str]:
    """Write the parameters that differ; return which ones were written."""
    current = await read(netns, sorted(wanted))
    stale = [f"{k}={v}" for k, v in sorted(wanted.items()) if current.get(k) != v]
    if stale:
        await netns.run("sysctl", "-q", "-w", *stale)
    return [s.split("=")[0] for s in stale]
