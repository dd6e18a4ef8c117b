"""The ``kosmosctl`` command group; subcommands live in their own modules."""

from __future__ import annotations

import logging

import click

from kosmos.cli.completion import completion
from kosmos.cli.get import get
from kosmos.cli.install import install
from kosmos.cli.invocation import CliContext
from kosmos.cli.join import join, unjoin
from kosmos.cli.local import local
from kosmos.cli.migration import migration_group
from kosmos.cli.netdoctor import netdoctor
from kosmos.cli.services import export, import_
from kosmos.cli.uninstall import uninstall
from kosmos.cli.version import version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    type=click.Path(dir_okay=False),
    help="Kubeconfig of the host cluster [default: $KUBECONFIG or ~/.kube/config].",
)
@click.option("--context", "context_name", help="Context of that kubeconfig to use.")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.version_option(package_name="kosmos", prog_name="kosmosctl")
@click.pass_context
def cli(ctx: click.Context, kubeconfig: str | None, context_name: str | None, verbose: int) -> None:
    """Make many Kubernetes clusters behave like one."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = CliContext(kubeconfig=kubeconfig, context=context_name, verbose=verbose)


cli.add_command(local)
cli.add_command(join)
cli.add_command(unjoin)
cli.add_command(install)
cli.add_command(uninstall)
cli.add_command(get)
cli.add_command(export)
cli.add_command(import_)
cli.add_command(migration_group)
cli.add_command(netdoctor)
cli.add_command(version)
cli.add_command(completion)


def main() -> None:
    cli(prog_name="kosmosctl")
