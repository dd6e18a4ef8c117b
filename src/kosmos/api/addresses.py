"""Host and port in one string, as URLs and dialers want them (pure)."""

from __future__ import annotations


def join_host_port(host: str, port: int | str) -> str:
    """Go's ``net.JoinHostPort``: an IPv6 address is bracketed (``[fd00::1]:443``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
