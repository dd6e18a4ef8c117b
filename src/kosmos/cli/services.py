"""``kosmosctl export svc`` and ``kosmosctl import svc``: the seed tutorial's manual steps.

``export svc`` creates the ServiceExport next to a host Service; ``import svc`` creates, in one
member, the ServiceImport built from that Service. The work is in :mod:`kosmos.ops.services`.
"""

from __future__ import annotations

import click

from kosmos.cli.invocation import CliContext, pass_cli
from kosmos.ops import services

_KINDS = ("svc", "service", "services")
namespace_option = click.option(
    "-n", "--namespace", default="default", show_default=True, help="Namespace of the Service."
)


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise click.UsageError(f"unknown kind {kind!r}: only services (svc) are exported/imported")


@click.command("export")
@click.argument("kind", metavar="svc")
@click.argument("name")
@namespace_option
@pass_cli
def export(cli_ctx: CliContext, *, kind: str, name: str, namespace: str) -> None:
    """Export a host Service to the clusterset (creates its ServiceExport in the host)."""
    _check_kind(kind)

    async def run() -> str:
        return await services.export_service(await cli_ctx.client(), name, namespace)

    click.echo(cli_ctx.run(run()))


@click.command("import")
@click.argument("kind", metavar="svc")
@click.argument("name")
@click.option(
    "--to-leafcluster", "cluster", required=True, help="The member cluster to import into."
)
@namespace_option
@pass_cli
def import_(cli_ctx: CliContext, *, kind: str, name: str, cluster: str, namespace: str) -> None:
    """Import an exported host Service into a member (creates its ServiceImport there, with
    the Service's type and ports)."""
    _check_kind(kind)

    async def run() -> str:
        return await services.import_service(await cli_ctx.client(), cluster, name, namespace)

    click.echo(cli_ctx.run(run()))
