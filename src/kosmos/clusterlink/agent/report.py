"""``kosmos agent-state``: print this node's ClusterLink kernel state as one JSON document.

Run by ``kosmosctl netdoctor analyze`` through ``kubectl exec``-style execs in an agent pod:
the pod is hostNetwork and privileged, so it sees and may read the node's kernel (netlink,
iptables-save, ipset) the way the agent does. It only reads -- nothing is changed -- and it
needs no apiserver: the comparison with the node's NodeConfig happens on the caller's side
(``kosmos.clusterlink.diagnose``). The document is ``kosmos.net.snapshot.Snapshot.to_json``.
"""

from __future__ import annotations

import asyncio
import json

import click

from kosmos.net import snapshot


@click.command("agent-state")
@click.option("--netns", default=None, help="Read this named network namespace (like the agent).")
@click.option(
    "--bind-dev",
    "bind_devs",
    multiple=True,
    help="An underlay device the VXLAN devices bind to (repeatable): its MTU and addresses.",
)
def command(netns: str | None, bind_devs: tuple[str, ...]) -> None:
    """Print the kernel state the ClusterLink agent owns, and foreign DROP rules, as JSON."""
    snap = asyncio.run(snapshot.take(netns, bind_devs))
    click.echo(json.dumps(snap.to_json(), indent=None, separators=(",", ":")))
