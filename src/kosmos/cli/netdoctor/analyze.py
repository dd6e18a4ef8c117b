"""``kosmosctl netdoctor analyze``: each linked node's kernel against its NodeConfig.

The work is in :mod:`kosmos.ops.netdoctor.analyze`; this prints it.
"""

from __future__ import annotations

import json

import click

from kosmos.cli.invocation import CliContext, output_flag, pass_cli
from kosmos.cli.output import table
from kosmos.ops.netdoctor.analyze import Analysis, NodeResult
from kosmos.ops.netdoctor.analyze import analyze as run_analysis
from kosmos.ops.progress import Progress

HEADERS = ("CLUSTER", "NODE", "KIND", "STATE", "ENTRY", "BREAKS")
#: exit code when the analysis ran and a node is not in sync (or could not be read)
NOT_IN_SYNC = 3


def _breaks(breaks: tuple[str, ...], traffic: tuple[str, ...]) -> str:
    if not breaks:
        return "-"
    return ", ".join(breaks) + (f" ({'+'.join(traffic)})" if traffic else "")


def rows(result: Analysis) -> list[tuple[str, ...]]:
    """One row per finding; one per node that is in sync, skipped or unreachable."""
    out: list[tuple[str, ...]] = []
    for node in result.nodes:
        out += _node_rows(node)
    return out


def _node_rows(node: NodeResult) -> list[tuple[str, ...]]:
    if not node.findings:
        return [(node.cluster, node.node, "-", node.status, node.note or "-", "-")]
    return [
        (node.cluster, node.node, f.kind, f.state, f.entry, _breaks(f.breaks, f.traffic))
        for f in node.findings
    ]


@click.command("analyze")
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    metavar="NAME",
    help="Analyze only this linked Cluster (repeatable; default: every linked Cluster).",
)
@output_flag("table", "json")
@pass_cli
def analyze(cli_ctx: CliContext, *, clusters: tuple[str, ...], output: str) -> None:
    """Compare every linked node's kernel with its NodeConfig and name the node pairs each
    difference breaks.

    Runs `kosmos agent-state` in each node's ClusterLink agent pod (the host's own nodes
    and every member's, through the kubeconfig the member joined with) and reports missing,
    unexpected or different devices, routes, FDB and neighbour entries, ip rules, chains,
    sets and forwarding sysctls, plus DROP/REJECT rules of others that match a peer's
    addresses. BREAKS lists the peers (cluster/node; cluster/* for its services) whose
    traffic with the node the entry breaks: pod (through the tunnel) or node.

    Exit codes: 0 every node is in sync (kwok nodes are skipped); 3 a node has findings or
    could not be read; 1 an error (no linked Cluster, unknown --cluster, host unreachable).
    """
    progress = Progress()

    async def run() -> Analysis:
        return await run_analysis(await cli_ctx.client(), clusters, progress=progress)

    result = cli_ctx.run(run())
    if output == "json":
        doc = {"inSync": result.in_sync, "nodes": [n.to_json() for n in result.nodes]}
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(table(HEADERS, rows(result)))
    if not result.in_sync:
        raise SystemExit(NOT_IN_SYNC)
