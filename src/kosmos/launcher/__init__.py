"""``kosmos <component>``: one launcher for every long-running Kosmos component.

Every component registers here (cluster-manager, network-manager, agent, scheduler-extender,
mcs-dns, eps-probe, floater, virtual-cluster-operator, node-agent), and the one-shots
``agent-state`` and ``helm-hook`` (the Helm chart's hook Jobs); each is imported only when it
is launched.
"""

from __future__ import annotations

import importlib

import click

#: component name -> "module:attribute" of the click command that runs it until shutdown.
COMPONENTS: dict[str, str] = {
    "cluster-manager": "kosmos.launcher.clustermanager:command",
    "agent": "kosmos.clusterlink.agent.app:command",
    "network-manager": "kosmos.clusterlink.app:command",
    "scheduler-extender": "kosmos.scheduler.app:command",
    "mcs-dns": "kosmos.mcs.dns.app:command",
    "eps-probe": "kosmos.mcs.probe:command",
    "floater": "kosmos.floater.app:command",
    "virtual-cluster-operator": "kosmos.kubenest.app:command",
    "node-agent": "kosmos.launcher.nodeagent:command",
    "agent-state": "kosmos.clusterlink.agent.report:command",
    "helm-hook": "kosmos.launcher.helmhook:command",
}


class _Components(click.Group):
    """Imports a component's module only when that component is launched (or its help shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMPONENTS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMPONENTS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=_Components, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kosmos", prog_name="kosmos")
def cli() -> None:
    """Run a Kosmos component."""


@cli.command(name="components")
def list_components() -> None:
    """List the components this build can launch."""
    for name, target in sorted(COMPONENTS.items()):
        click.echo(f"{name}\t{target}")


def main() -> None:
    cli(prog_name="kosmos")


if __name__ == "__main__":
    main()
