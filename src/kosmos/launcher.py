"""``kosmos <component>``: one launcher for every long-running Kosmos component.

Components register here as they are built (cluster-manager, network-manager, agent,
scheduler-extender, webhook, ...); each is imported only when it is launched.
"""

from __future__ import annotations

import importlib

import click

#: component name -> "module:function" that runs it until shutdown.
COMPONENTS: dict[str, str] = {}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kosmos", prog_name="kosmos")
def cli() -> None:
    """Run a Kosmos component."""


@cli.command(name="components")
def list_components() -> None:
    """List the components this build can launch."""
    for name, target in sorted(COMPONENTS.items()):
        click.echo(f"{name}\t{target}")


def _launch(target: str) -> None:
    module, _, function = target.partition(":")
    getattr(importlib.import_module(module), function)()


def main() -> None:
    for name, target in COMPONENTS.items():
        cli.add_command(click.Command(name, callback=lambda t=target: _launch(t)))
    cli(prog_name="kosmos")
