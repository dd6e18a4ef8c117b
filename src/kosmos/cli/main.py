"""The ``kosmosctl`` command group; subcommands live in their own modules."""

from __future__ import annotations

import logging

import click

from kosmos.cli.local import local


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.version_option(package_name="kosmos", prog_name="kosmosctl")
def cli(verbose: int) -> None:
    """Make many Kubernetes clusters behave like one."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


cli.add_command(local)


def main() -> None:
    cli(prog_name="kosmosctl")
