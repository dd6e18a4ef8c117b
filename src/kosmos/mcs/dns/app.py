"""``kosmos mcs-dns``: the zone writer next to CoreDNS in the ``kosmos-coredns`` pod.

It reads only its own cluster (the ServiceImports and MCS EndpointSlices the MCS controller
writes there) and writes ``--zone-file`` on the emptyDir CoreDNS's ``file`` plugin reads. No
Lease: every replica of kosmos-coredns writes its own pod's zone from the same objects.
"""

from __future__ import annotations

from pathlib import Path

import click

from kosmos.api import names
from kosmos.kube import component
from kosmos.mcs.dns.writer import DEBOUNCE, ZoneWriter

NAME = "mcs-dns"
#: CoreDNS in the same pod serves health on 8080 and readiness on 8181
HEALTH_PORT = 8095


def build(runtime: component.Runtime, zone_file: Path, zone: str, debounce: float) -> None:
    ZoneWriter.on_manager(
        runtime.manager, component.HOST, zone_file, zone_name=zone, debounce=debounce
    )


@click.command(NAME)
@click.option(
    "--zone-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The zone file CoreDNS's file plugin serves (written atomically).",
)
@click.option("--zone", default=names.MCS_ZONE, show_default=True, help="The clusterset zone.")
@click.option(
    "--debounce",
    default=DEBOUNCE,
    show_default=True,
    help="Seconds to gather changes into one zone write.",
)
@component.common_options(None, health_port=HEALTH_PORT, member_qps=None)
def command(common: component.Common, zone_file: str, zone: str, debounce: float) -> None:
    """Write the clusterset.local zone from this cluster's ServiceImports and slices."""
    spec = component.Component(NAME)
    component.main(
        NAME,
        common.verbose,
        component.run_component(
            spec, common, lambda rt: build(rt, Path(zone_file), zone, debounce)
        ),
        log_format=common.log_format,
    )
