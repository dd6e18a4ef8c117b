"""``kosmosctl netdoctor init``: write config.json with the defaults."""

from __future__ import annotations

import click

from kosmos.cli.invocation import CliContext, pass_cli
from kosmos.cli.netdoctor.check import config_option
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import config as settings

DEFAULT_KUBECONFIG = "~/.kube/config"


@click.command("init")
@config_option
@click.option("--force", is_flag=True, help="Replace an existing file.")
@pass_cli
def init(cli_ctx: CliContext, config_path: str, force: bool) -> None:
    """Write the check's settings (netctl's config.json keys) with their defaults.

    srcKubeConfig is the kubeconfig kosmosctl runs with (--kubeconfig, $KUBECONFIG or
    ~/.kube/config). Optional keys: dstKubeConfig and dstImageRepository (check between two
    clusters), autoClean (remove the floaters after the check), targetDNSServer (an IP, or a
    kube-system Service; default coredns, which also finds kube-dns) and targetHostToLookup
    (for protocol dns). mode: pod, node, node-to-pod, pod-to-node; protocol: tcp, udp, dns,
    icmp.
    """
    config = settings.initial(cli_ctx.kubeconfig or DEFAULT_KUBECONFIG)
    try:
        settings.write(config, config_path, force=force)
    except OperationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {config_path}", err=True)
