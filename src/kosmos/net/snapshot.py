"""Everything of one node's kernel that ClusterLink depends on, read once, as one document.

What the agent owns (its devices, routes in its table, FDB and neighbour entries, rules,
chains, sets and the sysctls it sets), the underlay devices its VXLAN devices bind to, and
the DROP/REJECT rules of everybody else -- read from *both* iptables backends, since a rule
in either one drops the packet whatever backend the node's own tools use. A part that cannot
be read (a tool missing, the namespace gone) is named in ``errors`` and the rest is still
read: an analysis of a partial picture says more than none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kosmos.net import codec, sysctl
from kosmos.net.errors import CommandError, DeviceMissing, NetError
from kosmos.net.ipset import IPSetSync
from kosmos.net.iptables import BACKENDS, ChainSync, parse_drops, save_tool
from kosmos.net.netlink import LinkInfo
from kosmos.net.netns import Namespace
from kosmos.net.objects import Chain, Drop, Family
from kosmos.net.state import NodeState
from kosmos.net.sync import Dataplane

#: the document's shape; bumped when a field changes meaning
VERSION = 1
FORWARDING = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")


@dataclass
class Snapshot:
    state: NodeState
    binds: dict[str, LinkInfo | None] = field(default_factory=dict)  # None: no such device
    drops: list[Drop] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "state": codec.encode_state(self.state),
            "binds": {n: codec.encode(i) if i else None for n, i in sorted(self.binds.items())},
            "drops": [codec.encode(d) for d in sorted(self.drops)],
            "errors": list(self.errors),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        """Raises ``codec.DecodeError`` for a document of another shape or version."""
        if not isinstance(data, Mapping) or data.get("version") != VERSION:
            got = data.get("version") if isinstance(data, Mapping) else type(data).__name__
            raise codec.DecodeError(f"not an agent-state document of version {VERSION} ({got})")
        binds = data.get("binds") or {}
        return cls(
            state=codec.decode_state(data.get("state") or {}),
            binds={n: codec.decode(LinkInfo, i) if i else None for n, i in binds.items()},
            drops=[codec.decode(Drop, d) for d in data.get("drops") or []],
            errors=[str(e) for e in data.get("errors") or []],
        )


async def _chains(netns: Namespace, family: Family) -> list[Chain]:
    """The owned chains of one family, each with the built-in chain that jumps to it ("" when
    nothing does: the chain is there but no packet reaches it)."""
    rules, jumps = await ChainSync(netns, family).current()
    parents = {(table, name): parent for table, parent, name in sorted(jumps)}
    return [
        Chain(family, table, name, parents.get((table, name), ""), tuple(body))
        for (table, name), body in rules.items()
    ]


async def _drops(netns: Namespace, family: Family) -> list[Drop]:
    found: list[Drop] = []
    read_any = False
    for backend in (*BACKENDS, ""):
        if read_any and not backend:
            break  # the default tool is one of the two backends already read
        try:
            text = await netns.run(save_tool(family, backend))
        except (OSError, CommandError):
            continue
        read_any = True
        found += parse_drops(text, family, backend=backend)
    if not read_any:
        name = save_tool(family)
        raise CommandError(f"no {name} (-legacy, -nft or default) could be run", item=name)
    return found


async def take(
    netns: str | None = None, bind_devs: Iterable[str] = (), *, dataplane: Dataplane | None = None
) -> Snapshot:
    """Read the node's state now (``netns``: a named namespace, as the agent's ``--netns``)."""
    plane = dataplane or Dataplane(netns)
    snap = Snapshot(NodeState())
    try:
        await _read(plane, list(bind_devs), snap)
    finally:
        if dataplane is None:
            await plane.close()
    return snap


async def _read(plane: Dataplane, bind_devs: list[str], snap: Snapshot) -> None:
    async def part(what: str, read: Any) -> Any:
        try:
            return await read
        except (NetError, OSError) as exc:
            snap.errors.append(f"{what}: {exc}")
            return None

    state = await part("devices, routes, FDB, neighbours, rules", plane.read()) or NodeState()
    chains: list[Chain] = []
    for family in (4, 6):
        chains += await part(f"iptables (IPv{family})", _chains(plane.namespace, family)) or []
        snap.drops += await part(f"DROP rules (IPv{family})", _drops(plane.namespace, family)) or []
    ipsets = await part("ipsets", IPSetSync(plane.namespace).current()) or {}
    for name in bind_devs:
        try:
            snap.binds[name] = await plane.netlink.link_info(name)
        except DeviceMissing:
            snap.binds[name] = None
        except NetError as exc:
            snap.errors.append(f"device {name}: {exc}")
    # a dotted name (eth0.100) has no such key; desired.sysctls leaves them out as well
    devices = sorted(d for d in {*state.device_names, *bind_devs} if "." not in d)
    keys = [*FORWARDING, *(_rp_filter(d) for d in devices)]
    values = await part("sysctl", sysctl.read(plane.namespace, keys)) or {}
    snap.state = replace(
        state,
        chains=frozenset(chains),
        ipsets=frozenset(ipsets.values()),
        sysctls=tuple(sorted(values.items())),
    )


def _rp_filter(device: str) -> str:
    return f"net.ipv4.conf.{device}.rp_filter"
