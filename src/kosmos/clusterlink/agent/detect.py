"""Which NIC carries this node's tunnels, and its addresses (for the node's ClusterNode).

Order: the Cluster's ``nicNodeNames`` entry that lists this node (exact name match: a
substring match would give node ``a`` the entry of ``node-a``), else
``defaultNICName``; ``*`` means autodetect: the device the kernel routes
``autodetectionMethod: can-reach=<ip>`` through (default: the default route's device).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kosmos.net.netlink import LinkInfo, Netlink

DEFAULT_TARGET = {4: "8.8.8.8", 6: "2001:4860:4860::8888"}


def nic_choice(options: Mapping[str, Any], node: str) -> tuple[str, str]:
    """(device name or '*', can-reach target or '')."""
    for entry in options.get("nicNodeNames") or []:
        if node in (entry.get("nodeName") or []):
            return entry["interfaceName"], ""
    method = options.get("autodetectionMethod") or ""
    target = method.split("=", 1)[1] if method.startswith("can-reach=") else ""
    return options.get("defaultNICName") or "*", target


async def detect(netlink: Netlink, options: Mapping[str, Any], node: str) -> LinkInfo:
    """The tunnel NIC and its addresses; ``DeviceMissing`` if the named NIC is absent."""
    name, target = nic_choice(options, node)
    if name == "*":
        name = await netlink.route_device(target or DEFAULT_TARGET[4])
    return await netlink.link_info(name)
