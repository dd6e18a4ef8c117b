"""How the Dataplane adds a route: onlink on its own VXLAN devices, checked over the NIC,
and what a refused gateway reads like (a stub stands in for netlink)."""

from __future__ import annotations

import errno

import pytest

from kosmos.net.errors import KernelError
from kosmos.net.objects import Route
from kosmos.net.sync import Dataplane

NIC = Route("10.52.0.0/16", "192.168.10.12", "eth0")
OVERLAY = Route("10.52.0.0/16", "210.168.1.2", "vx-local")


class Refusing:
    """``add_route`` records its calls, and fails with ``code`` if one is given."""

    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[Route, bool]] = []

    async def add_route(self, route: Route, *, onlink: bool) -> None:
        self.calls.append((route, onlink))
        if self.code:
            what = f"route {route.dst} via {route.gateway}"
            raise KernelError(f"{what}: ({self.code}, ...)", item=what, errno=self.code)


def plane(netlink: Refusing) -> Dataplane:
    dataplane = Dataplane("kt-unit-none")  # nothing is opened until used
    dataplane.netlink = netlink  # type: ignore[assignment]
    return dataplane


async def test_only_routes_over_owned_devices_are_onlink():
    netlink = Refusing()
    for route in (OVERLAY, NIC):
        await plane(netlink)._add_route(route)
    assert netlink.calls == [(OVERLAY, True), (NIC, False)]


@pytest.mark.parametrize("code", [errno.ENETUNREACH, errno.EHOSTUNREACH])
async def test_a_gateway_off_the_nic_subnet_says_what_direct_routing_needs(code):
    with pytest.raises(KernelError) as caught:
        await plane(Refusing(code))._add_route(NIC)
    assert caught.value.item == "route 10.52.0.0/16 via 192.168.10.12"
    assert caught.value.errno == code
    assert caught.value.message.endswith(
        "the gateway is not on a subnet of eth0: direct routing needs the nodes on one L2 segment"
    )


@pytest.mark.parametrize(
    ("route", "code"),
    [(NIC, errno.EINVAL), (OVERLAY, errno.ENETUNREACH)],  # another refusal; no subnet check
)
async def test_other_refusals_keep_the_kernels_message_alone(route, code):
    with pytest.raises(KernelError) as caught:
        await plane(Refusing(code))._add_route(route)
    assert "subnet" not in caught.value.message
