"""Say so on the leaf nodes when a client refuses the kubelet endpoint's certificate.

A kube-apiserver run with ``--kubelet-certificate-authority`` verifies the certificates of
kubelet endpoints; the default one here is self-signed, so it would refuse it and every
``kubectl logs/exec/port-forward`` and metrics scrape through a leaf node would fail with an
x509 error that only the user sees. The handshake is the only place we can notice it
(``kosmos.kube.tls.observe_refusals``): each refusal is counted, and a Warning Event names
the cause and the fix on every leaf node (they share the certificate), at most once a minute.
"""

from __future__ import annotations

import asyncio
import time

from kosmos.clustertree.metrics import kubelet_certificate_refusals
from kosmos.kube.events import EventRecorder
from kosmos.kube.store import Store

REASON = "KubeletCertificateRefused"
#: seconds between two rounds of Events (the count of each Event grows with every round)
QUIET_SECONDS = 60.0


def message(alert: str) -> str:
    return (
        f"a client refused this leaf node's kubelet serving certificate ({alert}): the host "
        "apiserver cannot reach logs, exec, port-forward or metrics through it unless it trusts "
        "the certificate: give the cluster-manager one signed by the CA of the apiserver's "
        "--kubelet-certificate-authority (--cert-dir with tls.crt and tls.key)"
    )


class CertificateRefusals:
    """The ``refused`` callback of ``observe_refusals`` for the leaf nodes' endpoint."""

    def __init__(
        self, leaf_nodes: Store, recorder: EventRecorder, quiet: float = QUIET_SECONDS
    ) -> None:
        self._nodes = leaf_nodes
        self._recorder = recorder
        self._quiet = quiet
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def refused(self, alert: str) -> None:
        """Called inside the handshake (synchronous, in the event loop): count, then record
        the Events in a task of their own."""
        kubelet_certificate_refusals.labels(alert).inc()
        now = time.monotonic()
        if now - self._last.get(alert, -self._quiet) < self._quiet:
            return
        self._last[alert] = now
        task = asyncio.get_running_loop().create_task(self._record(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, alert: str) -> None:
        for node in self._nodes.list():
            await self._recorder.record(node, "Warning", REASON, message(alert))
