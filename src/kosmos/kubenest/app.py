"""``kosmos virtual-cluster-operator``: the GlobalNode pool and the VirtualCluster controllers.

It runs on the shared component runtime (``kosmos.kube.component``): host client only (a
tenant's apiserver is reached with the credentials its VirtualCluster holds, not as a member),
leader-elected on its own Lease, health on ``--health-port``.

The VirtualCluster controllers (``kosmos.kubenest.controllers``) run tenant control planes
through a provider (``--provider``; ``local``: processes on this machine, from
``--binaries-dir``, state under ``--state-dir``; ``in-cluster``: pods in the host, in the
VirtualCluster's namespace, from ``--image-repository``, on nodes
``--control-plane-node-selector`` admits).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kosmos.kube import component
from kosmos.kubenest import controllers, globalnodes
from kosmos.kubenest.settings import (
    DEFAULT_ADVERTISE_ADDRESS,
    DEFAULT_BINARIES_DIR,
    DEFAULT_IMAGE_REPOSITORY,
    DEFAULT_PORT_RANGE,
    DEFAULT_STATE_DIR,
    PROVIDERS,
    Settings,
    parse_labels,
    parse_port_range,
)

COMPONENT = "virtual-cluster-operator"


def _port_range(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        return parse_port_range(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _address(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address") from None


def _labels(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    try:
        return parse_labels(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def settings_from(kwargs: dict[str, Any]) -> Settings:
    """The Settings of the parsed flags (paths with ``~`` expanded)."""
    return Settings(
        provider=str(kwargs["provider"]),
        state_dir=Path(kwargs["state_dir"]).expanduser(),
        binaries_dir=Path(kwargs["binaries_dir"]).expanduser(),
        port_range=kwargs["port_range"],
        advertise_address=str(kwargs["advertise_address"]),
        node_selector=tuple(kwargs.get("control_plane_node_selector") or ()),
        image_repository=str(kwargs.get("image_repository") or DEFAULT_IMAGE_REPOSITORY),
    )


def builder(settings: Settings) -> Callable[[component.Runtime], None]:
    """The component's ``build``: the GlobalNode controller, then the VirtualCluster ones
    (``controllers.build`` builds the provider ``settings.provider`` names)."""

    def build(runtime: component.Runtime) -> None:
        globalnodes.build(runtime)
        controllers.build(runtime, settings)

    return build


@click.command(COMPONENT)
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default=PROVIDERS[0],
    show_default=True,
    help="Who runs tenant control planes (local: processes on this machine; in-cluster: "
    "pods in the host cluster, in the VirtualCluster's namespace).",
)
@click.option(
    "--state-dir",
    default=str(DEFAULT_STATE_DIR),
    show_default=True,
    help="The local provider's per-tenant directories (certificates, etcd data, logs).",
)
@click.option(
    "--binaries-dir",
    default=str(DEFAULT_BINARIES_DIR),
    show_default=True,
    help="Where etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and "
    "coredns are.",
)
@click.option(
    "--port-range",
    default=f"{DEFAULT_PORT_RANGE[0]}-{DEFAULT_PORT_RANGE[1]}",
    show_default=True,
    callback=_port_range,
    help="Ports tenants' components may listen on (LOW-HIGH, inclusive).",
)
@click.option(
    "--advertise-address",
    default=DEFAULT_ADVERTISE_ADDRESS,
    show_default=True,
    callback=_address,
    help="The IP tenants' kubeconfigs and apiserver certificates name.",
)
@click.option(
    "--control-plane-node-selector",
    multiple=True,
    callback=_labels,
    metavar="KEY=VALUE",
    help="in-cluster: tenant control-plane pods only on nodes with this label (repeatable).",
)
@click.option(
    "--image-repository",
    default=DEFAULT_IMAGE_REPOSITORY,
    show_default=True,
    help="in-cluster: where etcd, kube-apiserver, kube-controller-manager, kube-scheduler "
    "and kwok images are (upstream's names and tags).",
)
@component.common_options(COMPONENT, member_qps=None)
def command(common: component.Common, **kwargs: Any) -> None:
    """Run the GlobalNode pool and the VirtualCluster controllers (tenant control planes on
    borrowed host nodes)."""
    settings = settings_from(kwargs)
    spec = component.Component(COMPONENT, lease=COMPONENT)
    run = component.run_component(spec, common, builder(settings))
    component.main(COMPONENT, common.verbose, run, log_format=common.log_format)
