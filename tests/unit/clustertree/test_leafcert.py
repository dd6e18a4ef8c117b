"""Refusals of the leaf endpoint's certificate: counted, and an Event a minute per alert."""

from __future__ import annotations

import asyncio
from typing import Any

from kosmos.clustertree.leafcert import REASON, CertificateRefusals


class Nodes:
    def list(self) -> list[dict[str, Any]]:
        return [{"kind": "Node", "metadata": {"name": n}} for n in ("kosmos-a", "kosmos-b")]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, reason, message))


async def test_every_leaf_node_hears_of_a_refusal_once_a_minute():
    recorder = Recorder()
    refusals = CertificateRefusals(Nodes(), recorder)  # type: ignore[arg-type]
    refusals.refused("tlsv1_alert_unknown_ca")
    refusals.refused("tlsv1_alert_unknown_ca")  # within the quiet minute: counted only
    await asyncio.sleep(0.05)
    assert [(n, t, r) for n, t, r, _ in recorder.events] == [
        ("kosmos-a", "Warning", REASON),
        ("kosmos-b", "Warning", REASON),
    ]
    assert "tlsv1_alert_unknown_ca" in recorder.events[0][3]
    refusals.refused("sslv3_alert_bad_certificate")  # another cause is said at once
    await asyncio.sleep(0.05)
    assert len(recorder.events) == 4
