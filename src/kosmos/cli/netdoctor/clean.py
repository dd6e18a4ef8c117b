"""``kosmosctl netdoctor clean``: remove everything netdoctor created, in both clusters."""

from __future__ import annotations

import click

from kosmos.cli.invocation import CliContext, pass_cli
from kosmos.cli.netdoctor.check import CliReporter, config_option, load
from kosmos.ops.netdoctor import check as checking


@click.command("clean")
@config_option
@pass_cli
def clean(cli_ctx: CliContext, config_path: str) -> None:
    """Delete the floater DaemonSets and their ServiceAccount (idempotent), and wait.

    The namespace goes too when netdoctor created it; an existing one (kosmos-system of an
    installed Kosmos) stays.
    """
    config = load(config_path)
    cli_ctx.run(checking.clean(config, CliReporter(), default_kubeconfig=cli_ctx.kubeconfig))
