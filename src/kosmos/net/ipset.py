"""IP sets the agent owns (name prefix ``kosmos-``), swapped in atomically with ``ipset restore``.

A changed set is built under a temporary name and swapped with the live one, so rules that
match it never see a half-filled set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from kosmos.net.netns import Namespace
from kosmos.net.objects import IPSet

PREFIX = "kosmos-"


def parse_save(text: str, prefix: str = PREFIX) -> dict[str, IPSet]:
    """Owned sets from ``ipset save`` output."""
    heads: dict[str, tuple[str, int]] = {}
    entries: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "create" and words[1].startswith(prefix):
            family = 6 if "inet6" in words else 4
            heads[words[1]] = (words[2], family)
            entries.setdefault(words[1], set())
        elif len(words) >= 3 and words[0] == "add" and words[1] in heads:
            entries[words[1]].add(_entry(words[2]))
    return {
        name: IPSet(name, kind, 6 if family == 6 else 4, frozenset(entries[name]))
        for name, (kind, family) in heads.items()
    }


def _entry(text: str) -> str:
    """An entry as the desired state spells it: ``ipset save`` prints a host prefix without
    its length (``10.0.0.5`` for 10.0.0.5/32), which would never equal the wanted set."""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def restore_text(sets: Iterable[IPSet]) -> str:
    lines: list[str] = []
    for s in sets:
        family = "inet6" if s.family == 6 else "inet"
        temp = f"{s.name[:24]}-tmp"
        lines.append(f"create {s.name} {s.type} family {family} -exist")
        lines.append(f"create {temp} {s.type} family {family} -exist")
        lines.append(f"flush {temp}")
        lines.extend(f"add {temp} {entry}" for entry in sorted(s.entries))
        lines.append(f"swap {temp} {s.name}")
        lines.append(f"destroy {temp}")
    return "\n".join(lines) + "\n"


class IPSetSync:
    def __init__(self, netns: Namespace, prefix: str = PREFIX) -> None:
        self.netns = netns
        self.prefix = prefix

    async def current(self) -> dict[str, IPSet]:
        return parse_save(await self.netns.run("ipset", "save"), self.prefix)

    async def sync(self, desired: Iterable[IPSet]) -> bool:
        """Create or refill the wanted sets (before rules that match them are written)."""
        actual = await self.current()
        stale = [s for s in desired if actual.get(s.name) != s]
        if stale:
            await self.netns.run("ipset", "restore", stdin=restore_text(stale))
        return bool(stale)

    async def prune(self, desired: Iterable[IPSet]) -> bool:
        """Destroy owned sets no longer wanted (after the rules that matched them are gone)."""
        extra = (await self.current()).keys() - {s.name for s in desired}
        for name in sorted(extra):
            await self.netns.run("ipset", "destroy", name, check=False)
        return bool(extra)
