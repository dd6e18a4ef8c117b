"""pyroute2 adapter: links, addresses, routes, rules, FDB and neighbours of one namespace.

Everything returned is a ``kosmos.net.objects`` value; every failure is a ``KernelError``
(``DeviceMissing`` for absent devices) naming the object. Adding what exists and deleting
what is absent both succeed: callers converge, they do not assume.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from kosmos.net.errors import DeviceMissing, KernelError
from kosmos.net.netns import netlink_socket
from kosmos.net.objects import Family, Fdb, Neigh, Route, Rule, Vxlan

NUD_PERMANENT = 0x80
NUD_NOARP = 0x40
RTNH_F_ONLINK = 0x4
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_OK_ON_ADD = {errno.EEXIST}
_OK_ON_DELETE = {errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENODEV}


@dataclass(frozen=True)
class LinkInfo:
    """What a sync needs to know about an underlay device."""

    name: str
    index: int
    mtu: int
    up: bool
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]  # global-scope addresses only

    def address(self, family: Family) -> str | None:
        found = self.ipv4 if family == 4 else self.ipv6
        return found[0] if found else None


async def _messages(result: Any) -> list[Any]:
    """pyroute2 answers ``get`` with a list and ``dump`` with an async iterator: both lists here."""
    if isinstance(result, list | tuple):
        return list(result)
    return [msg async for msg in result]


def _mac(value: str | None) -> str:
    return (value or "").lower()


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


class Netlink:
    """One rtnetlink socket into a namespace (``None``: this process's namespace)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: AsyncIPRoute | None = None
        # One request at a time: concurrent requests on one pyroute2 socket can take each
        # other's answers and wait forever.
        self._lock = asyncio.Lock()

    async def _socket(self) -> AsyncIPRoute:
        if self._ipr is None:
            if self.netns:
                fd = await netlink_socket(self.netns)
                ipr = AsyncIPRoute(fileno=fd)
            else:
                ipr = AsyncIPRoute()
            await ipr.setup_endpoint()
            self._ipr = ipr
        return self._ipr

    async def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    @asynccontextmanager
    async def _request(self, what: str, ok: set[int] | None = None) -> AsyncIterator[None]:
        async with self._lock, self._translated(what, ok):
            yield

    @asynccontextmanager
    async def _translated(self, what: str, ok: set[int] | None) -> AsyncIterator[None]:
        try:
            yield
        except NetlinkError as exc:
            if ok and exc.code in ok:
                return
            if exc.code == errno.ENODEV:
                raise DeviceMissing(f"{what}: no such device", item=what) from exc
            raise KernelError(f"{what}: {exc}", item=what, errno=exc.code) from exc
        except OSError as exc:  # the namespace itself vanished, or netlink failed
            raise KernelError(f"{what}: {exc}", item=what, errno=exc.errno or 0) from exc

    # --- links -----------------------------------------------------------------------------

    async def links(self) -> dict[str, Any]:
        ipr = await self._socket()
        found: dict[str, Any] = {}
        async with self._request("list links"):
            async for msg in await ipr.link("dump"):
                found[msg.get("ifname")] = msg
        return found

    async def link_info(self, name: str) -> LinkInfo:
        """The underlay device ``name``, or ``DeviceMissing``."""
        ipr = await self._socket()
        async with self._request(f"device {name}"):
            indexes = await ipr.link_lookup(ifname=name)
        if not indexes:
            raise DeviceMissing(f"device {name} does not exist", item=name)
        index = indexes[0]
        async with self._request(f"device {name}"):
            link = (await _messages(await ipr.link("get", index=index)))[0]
            v4, v6 = [], []
            async for msg in await ipr.addr("dump", index=index):
                address = msg.get("IFA_ADDRESS")
                if msg["family"] == socket.AF_INET:
                    v4.append(address)
                elif msg["scope"] == 0 and not ipaddress.ip_address(address).is_link_local:
                    v6.append(address)
        up = link.get("operstate") in {"UP", "UNKNOWN"} and bool(link["flags"] & 1)
        return LinkInfo(name, index, int(link.get("mtu")), up, tuple(v4), tuple(v6))

    async def route_device(self, target: str) -> str:
        """The device the kernel would send a packet for ``target`` out of."""
        ipr = await self._socket()
        async with self._request(f"route to {target}"):
            answers = await _messages(await ipr.route("get", dst=target))
        names = await self._names()
        for msg in answers:
            if msg.get("RTA_OIF") in names:
                return names[msg.get("RTA_OIF")]
        raise DeviceMissing(f"no route to {target}: cannot autodetect the tunnel NIC", item=target)

    async def vxlans(self, names: Iterable[str]) -> dict[str, Vxlan]:
        """The VXLAN devices among ``names`` as they are now."""
        wanted = set(names)
        links = await self.links()
        by_index = {msg["index"]: name for name, msg in links.items()}
        found: dict[str, Vxlan] = {}
        for name, msg in links.items():
            if name not in wanted:
                continue
            data = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
            if data is None:  # a device by our name that is not VXLAN: treat as foreign
                continue
            found[name] = Vxlan(
                name=name,
                vni=int(data.get("IFLA_VXLAN_ID") or 0),
                port=int(data.get("IFLA_VXLAN_PORT") or 0),
                bind_dev=by_index.get(data.get("IFLA_VXLAN_LINK"), ""),
                local=_ip(data.get("IFLA_VXLAN_LOCAL") or data.get("IFLA_VXLAN_LOCAL6") or "::"),
                mac=_mac(msg.get("address")),
                address=await self._first_address(msg["index"]),
                mtu=int(msg.get("mtu")),
            )
        return found

    async def _first_address(self, index: int) -> str:
        ipr = await self._socket()
        async with self._request(f"addresses of link {index}"):
            async for msg in await ipr.addr("dump", index=index):
                if (
                    msg["scope"] == 0
                    and not ipaddress.ip_address(msg.get("IFA_ADDRESS")).is_link_local
                ):
                    return f"{_ip(msg.get('IFA_ADDRESS'))}/{msg['prefixlen']}"
        return ""

    async def add_vxlan(self, device: Vxlan, bind: LinkInfo) -> None:
        ipr = await self._socket()
        local = "vxlan_local6" if ":" in device.local else "vxlan_local"
        async with self._request(f"create {device.name}", _OK_ON_ADD):
            await ipr.link(
                "add",
                ifname=device.name,
                kind="vxlan",
                vxlan_id=device.vni,
                vxlan_port=device.port,
                vxlan_link=bind.index,
                vxlan_learning=0,
                # IPv4: no outer UDP checksum (flannel does the same): the inner
                # packet has its own, and a checksum-offloaded inner packet whose outer header
                # is NATed on the way (elastic IPs) arrives with a bad outer checksum otherwise
                vxlan_udp_csum=0 if ":" not in device.local else 1,
                address=device.mac,
                mtu=device.mtu,
                **{local: device.local},
            )
        await self.update_vxlan(device)

    async def update_vxlan(self, device: Vxlan, current: Vxlan | None = None) -> None:
        """Bring MAC, MTU and address to ``device`` in place, and the link up."""
        ipr = await self._socket()
        index = await self._index(device.name)
        async with self._request(f"configure {device.name}"):
            await ipr.link("set", index=index, address=device.mac, mtu=device.mtu, state="up")
        if current is not None and current.address and current.address != device.address:
            ip, prefix = current.address.split("/")
            async with self._request(f"address {current.address} of {device.name}", _OK_ON_DELETE):
                await ipr.addr("del", index=index, address=ip, prefixlen=int(prefix))
        if current is None or current.address != device.address:
            ip, prefix = device.address.split("/")
            async with self._request(f"address {device.address} of {device.name}", _OK_ON_ADD):
                await ipr.addr("add", index=index, address=ip, prefixlen=int(prefix))

    async def delete_link(self, name: str) -> None:
        ipr = await self._socket()
        index = await self._maybe_index(name)
        if index is None:
            return
        async with self._request(f"delete {name}", _OK_ON_DELETE):
            await ipr.link("del", index=index)

    async def _maybe_index(self, name: str) -> int | None:
        ipr = await self._socket()
        async with self._request(f"device {name}"):
            indexes = await ipr.link_lookup(ifname=name)
        return int(indexes[0]) if indexes else None

    async def _index(self, name: str) -> int:
        index = await self._maybe_index(name)
        if index is None:
            raise DeviceMissing(f"device {name} does not exist", item=name)
        return index

    async def _names(self) -> dict[int, str]:
        return {msg["index"]: name for name, msg in (await self.links()).items()}

    # --- routes and rules ------------------------------------------------------------------

    async def routes(self, table: int) -> set[Route]:
        """Every route of ``table``, whatever its device: the table is Kosmos's own, so what
        is in it is either wanted or stale (a route with no device, e.g. a blackhole, has
        ``dev`` "")."""
        ipr = await self._socket()
        names = await self._names()
        found: set[Route] = set()
        for family in (socket.AF_INET, socket.AF_INET6):
            async with self._request(f"list routes of table {table}"):
                async for msg in await ipr.route("dump", table=table, family=family):
                    if msg.get_attr("RTA_TABLE", msg["table"]) != table:
                        continue
                    dst = msg.get("RTA_DST") or ("::" if family == socket.AF_INET6 else "0.0.0.0")
                    cidr = str(ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False))
                    gateway = msg.get("RTA_GATEWAY")
                    dev = names.get(msg.get("RTA_OIF"), "")
                    found.add(Route(cidr, _ip(gateway) if gateway else "", dev, table))
        return found

    async def add_route(self, route: Route, *, onlink: bool) -> None:
        """Add or replace ``route``. ``onlink``: take the gateway as directly reachable on the
        device (a VXLAN peer's overlay address); without it the kernel refuses a gateway
        that is not on one of the device's subnets (ENETUNREACH, EHOSTUNREACH)."""
        ipr = await self._socket()
        index = await self._index(route.dev)
        async with self._request(f"route {route.dst} via {route.gateway}", _OK_ON_ADD):
            await ipr.route(
                "replace",
                dst=route.dst,
                gateway=route.gateway or None,
                oif=index,
                table=route.table,
                flags=RTNH_F_ONLINK if onlink and route.gateway else 0,
            )

    async def delete_route(self, route: Route) -> None:
        """Delete exactly ``route`` (its gateway and device too, so a wanted route to the same
        destination is never hit); a route with no device goes by destination alone."""
        ipr = await self._socket()
        index = await self._maybe_index(route.dev) if route.dev else 0
        if index is None:  # its device is gone, and the route with it
            return
        async with self._request(f"route {route.dst}", _OK_ON_DELETE):
            await ipr.route(
                "del",
                dst=route.dst,
                gateway=route.gateway or None,
                oif=index or None,
                table=route.table,
            )

    async def rules(self, table: int) -> set[Rule]:
        ipr = await self._socket()
        found: set[Rule] = set()
        for family, af in _AF.items():
            async with self._request("list rules"):
                async for msg in await ipr.rule("dump", family=af):
                    if msg.get_attr("FRA_TABLE", msg["table"]) == table:
                        found.add(Rule(family, table, int(msg.get("FRA_PRIORITY") or 0)))
        return found

    async def add_rule(self, rule: Rule) -> None:
        ipr = await self._socket()
        async with self._request(f"rule table {rule.table}", _OK_ON_ADD):
            await ipr.rule("add", table=rule.table, priority=rule.priority, family=_AF[rule.family])

    async def delete_rule(self, rule: Rule) -> None:
        ipr = await self._socket()
        async with self._request(f"rule table {rule.table}", _OK_ON_DELETE):
            await ipr.rule("del", table=rule.table, priority=rule.priority, family=_AF[rule.family])

    # --- FDB and neighbours ----------------------------------------------------------------

    async def fdbs(self, devices: Iterable[str]) -> set[Fdb]:
        ipr = await self._socket()
        found: set[Fdb] = set()
        for name in set(devices):
            try:
                index = await self._index(name)
            except DeviceMissing:
                continue
            async with self._request(f"list fdb of {name}"):
                async for msg in await ipr.fdb("dump", ifindex=index):
                    dst = msg.get("NDA_DST")
                    if dst and msg["state"] & NUD_PERMANENT:
                        found.add(Fdb(_mac(msg.get("NDA_LLADDR")), _ip(dst), name))
        return found

    async def add_fdb(self, entry: Fdb) -> None:
        ipr = await self._socket()
        index = await self._index(entry.dev)
        async with self._request(f"fdb {entry.mac} -> {entry.dst}", _OK_ON_ADD):
            await ipr.fdb("append", ifindex=index, lladdr=entry.mac, dst=entry.dst)

    async def delete_fdb(self, entry: Fdb) -> None:
        ipr = await self._socket()
        index = await self._maybe_index(entry.dev)
        if index is None:
            return
        async with self._request(f"fdb {entry.mac} -> {entry.dst}", _OK_ON_DELETE):
            await ipr.fdb("del", ifindex=index, lladdr=entry.mac, dst=entry.dst)

    async def neighbours(self, devices: Iterable[str]) -> set[Neigh]:
        ipr = await self._socket()
        found: set[Neigh] = set()
        for name in set(devices):
            try:
                index = await self._index(name)
            except DeviceMissing:
                continue
            for af in _AF.values():
                async with self._request(f"list neighbours of {name}"):
                    async for msg in await ipr.neigh("dump", ifindex=index, family=af):
                        if msg["state"] & NUD_PERMANENT and msg.get("NDA_DST"):
                            ip = _ip(msg.get("NDA_DST"))
                            found.add(Neigh(ip, _mac(msg.get("NDA_LLADDR")), name))
        return found

    async def add_neighbour(self, entry: Neigh) -> None:
        ipr = await self._socket()
        index = await self._index(entry.dev)
        async with self._request(f"neighbour {entry.ip}", _OK_ON_ADD):
            await ipr.neigh(
                "replace",
                dst=entry.ip,
                lladdr=entry.mac,
                ifindex=index,
                state=NUD_PERMANENT,
                family=_AF[entry.family],
            )

    async def delete_neighbour(self, entry: Neigh) -> None:
        ipr = await self._socket()
        index = await self._maybe_index(entry.dev)
        if index is None:
            return
        async with self._request(f"neighbour {entry.ip}", _OK_ON_DELETE):
            await ipr.neigh("del", dst=entry.ip, ifindex=index, family=_AF[entry.family])
