"""``kosmos helm-hook <event>``: what ``kosmosctl install``/``uninstall`` do beyond applying
objects, run by the Helm chart's hook Jobs (charts/kosmos/templates/hooks.yaml).

Helm only creates and deletes the objects its templates hold. ``kosmosctl install`` also
points the cluster DNS at kosmos-coredns (clusterset.local), and ``uninstall`` deletes the root
Cluster while the controllers still run (its finalizers need them), removes the identities of
joined members' agents and forgets the host's MCS imports once the cluster-manager stopped.
The chart runs the same operations (:mod:`kosmos.ops.mcsdns`, :mod:`kosmos.ops.uninstall`)
in-cluster, as the hook's ServiceAccount:

- ``post-install`` (also post-upgrade): wire clusterset.local, or unwire it (``--no-mcs-dns``).
- ``pre-delete``: refuse while members or virtual clusters remain (the hook fails, so
  ``helm uninstall`` stops, naming them), else release the root Cluster and unwire the DNS.
- ``post-delete``: remove the host's MCS imports, derived Services and slices, and the Leases
  the components and agents held (Helm leaves the namespace, which would keep them).
"""

from __future__ import annotations

import asyncio
import os

import click

from kosmos.api import names
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError
from kosmos.ops import mcsdns, uninstall
from kosmos.ops.errors import OperationError
from kosmos.ops.progress import Progress

EVENTS = ("post-install", "pre-delete", "post-delete")


async def run(event: str, namespace: str, *, mcs_dns: bool, timeout: float) -> None:
    progress = Progress()
    client = Client(await kube_config.for_component("host", None, None))
    try:
        if event == "post-install":
            if mcs_dns:
                await mcsdns.wire(client, namespace, "host", progress)
            else:
                await mcsdns.unwire(client, "host", progress)
        elif event == "pre-delete":
            for line in await uninstall.release_host(client, timeout=timeout, progress=progress):
                progress(line)
        else:
            await uninstall.forget_mcs(client, namespace, timeout, progress)
            await uninstall.remove_leases(client, namespace, progress)
    finally:
        await client.close()


@click.command("helm-hook")
@click.argument("event", type=click.Choice(EVENTS))
@click.option(
    "--mcs-dns/--no-mcs-dns",
    default=True,
    show_default=True,
    help="post-install: kosmos-coredns is installed; wire clusterset.local (else unwire).",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=120, show_default=True)
def command(event: str, mcs_dns: bool, timeout: float) -> None:
    """Run the Helm chart's EVENT hook against the host (in-cluster)."""
    namespace = os.environ.get("POD_NAMESPACE", names.SYSTEM_NAMESPACE)
    try:
        asyncio.run(run(event, namespace, mcs_dns=mcs_dns, timeout=timeout))
    except (OperationError, KubeError) as exc:
        raise click.ClickException(f"helm-hook {event}: {exc}") from exc
