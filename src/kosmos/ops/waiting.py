"""Waiting for a controller to report on a Cluster (``join --wait``).

A join waits only for controllers that run (their leader-election Lease is fresh): with no
cluster-manager or network-manager running there is nobody to set the condition, and the
join says so instead of timing out.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from kosmos.api import names
from kosmos.api.objects import condition_of, parse_time
from kosmos.api.resources import CLUSTERS, LEASES
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.ops.errors import OperationError
from kosmos.ops.progress import Progress


async def controller_running(host: Client, lease_name: str) -> bool:
    try:
        lease = await host.get(LEASES, lease_name, names.SYSTEM_NAMESPACE)
    except NotFound:
        return False
    spec = lease.get("spec", {})
    renewed = spec.get("renewTime")
    if not spec.get("holderIdentity") or not renewed:
        return False
    age = datetime.now(UTC) - parse_time(renewed)
    return age.total_seconds() < 2 * float(spec.get("leaseDurationSeconds") or 15)


async def wait_condition(
    host: Client,
    name: str,
    seconds: int,
    progress: Progress,
    *,
    controller: str,
    condition: str,
    report_false: bool = False,
) -> None:
    """Wait until ``controller`` (if one runs) sets ``condition`` True on the Cluster.

    With ``report_false`` a False condition ends the wait too: the join has happened and the
    condition's message (e.g. "Calico is not installed") is what the user needs next.
    """
    if seconds <= 0:
        return
    if not await controller_running(host, controller):
        progress(f"{name}: no {controller} is running; {condition} once one runs")
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition_of(await host.get(CLUSTERS, name), condition) or {}
        if found.get("status") == "True":
            progress(f"{name}: {condition}")
            return
        if report_false and found.get("status") == "False":
            progress(f"{name}: {condition} is False: {found.get('message', '')}")
            return
        progress(f"{name}: waiting for {condition}")
        await asyncio.sleep(2)
    raise OperationError(
        f"cluster {name} joined but not {condition} after {seconds}s: "
        "see `kosmosctl get clusters` and the Cluster's conditions"
    )
