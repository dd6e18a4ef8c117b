"""``kosmosctl uninstall``: its flags; each deleted object is printed as it goes.

The order and the refusals are :func:`kosmos.ops.uninstall.uninstall`'s.
"""

from __future__ import annotations

import click

from kosmos.cli.install import namespace_option, timeout_option
from kosmos.cli.invocation import CliContext, pass_cli
from kosmos.ops.uninstall import uninstall as uninstall_kosmos


@click.command()
@namespace_option
@click.option(
    "--force",
    is_flag=True,
    help="Also delete joined member Clusters, CRDs that still hold objects, and finalizers "
    "that keep Clusters from going away.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the CRDs and the namespace are gone.",
)
@timeout_option
@pass_cli
def uninstall(cli_ctx: CliContext, namespace: str, force: bool, wait: bool, timeout: float) -> None:
    """Remove Kosmos from the host cluster (idempotent).

    Refuses while member clusters are joined (unjoin them first), unless --force.
    """
    cli_ctx.run(
        uninstall_kosmos(
            cli_ctx, namespace, force=force, wait=wait, timeout=timeout, deleted=click.echo
        )
    )
