"""Chains the agent owns, replaced atomically with ``iptables-restore --noflush``.

The agent never edits rules one at a time: each owned chain (``KOSMOS-POSTROUTING`` in
``nat``, ...) is written whole in one restore transaction, which flushes and refills it, and
one jump from the built-in chain leads to it. Rules of anybody else are never touched.
``iptables-save`` prints rules in its canonical spelling, which can differ from how the plan
spells them; ``ChainSync`` remembers what each desired set read back as, so an unchanged
plan costs one ``iptables-save`` per family and no write.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterable

from kosmos.net.errors import CommandError
from kosmos.net.netns import Namespace
from kosmos.net.objects import Chain, Drop, Family

PREFIX = "KOSMOS-"
_SAVE = {4: "iptables-save", 6: "ip6tables-save"}
_RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
_IPTABLES = {4: "iptables", 6: "ip6tables"}
#: chains a node's own networking writes (kube-proxy, flannel, Calico, Cilium): the iptables
#: backend that holds them is the node's
NODE_CHAIN_MARKS = ("KUBE-", "FLANNEL-", "cali-", "CILIUM_")
BACKENDS = ("-legacy", "-nft")


def pick_backend(saved: dict[str, str]) -> str:
    """The iptables backend the node's own rules are in: ``-legacy``, ``-nft``, or ``""``
    (the image's default) when no backend holds more of them than the other.

    An agent container brings its own iptables, whose default backend need not be the
    node's: rules in the other one would be evaluated in another order than kube-proxy's and
    the CNI's, or by a kernel path nobody else looks at (the rule kube-proxy's images follow:
    the backend with more rules wins). ``saved`` maps a backend to its ``-save`` output.
    """
    counts = {
        backend: sum(
            1
            for line in text.splitlines()
            if line.startswith(("-A ", ":")) and any(mark in line for mark in NODE_CHAIN_MARKS)
        )
        for backend, text in saved.items()
    }
    ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)
    if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return ""
    return ranked[0][0]


def tool(kind: dict[int, str], family: Family, backend: str) -> str:
    """``iptables-nft-save`` from (``_SAVE``, 4, ``-nft``): Debian's names of each backend."""
    base = kind[family]
    if not backend:
        return base
    stem, dash, suffix = base.partition("-")
    return f"{stem}{backend}{dash}{suffix}"


def save_tool(family: Family, backend: str = "") -> str:
    """``iptables-save`` of ``family`` and ``backend`` (see :func:`tool`)."""
    return tool(_SAVE, family, backend)


def parse_save(
    text: str, prefix: str = PREFIX
) -> tuple[dict[tuple[str, str], list[str]], set[tuple[str, str, str]]]:
    """Owned chains' rules by (table, chain), and the jumps (table, parent, chain) to them."""
    chains: dict[tuple[str, str], list[str]] = {}
    jumps: set[tuple[str, str, str]] = set()
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":" + prefix):
            chains.setdefault((table, line[1:].split()[0]), [])
        elif line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            if chain.startswith(prefix):
                chains.setdefault((table, chain), []).append(rule)
            elif rule.startswith("-j " + prefix) and len(rule.split()) == 2:
                jumps.add((table, chain, rule.split()[1]))
    return chains, jumps


#: tables whose DROP/REJECT rules can keep a packet from its destination (nat only rewrites)
DROP_TABLES = ("raw", "mangle", "filter")
DROP_TARGETS = ("DROP", "REJECT")
_FIELDS = {
    "-s": "source",
    "--source": "source",
    "-d": "destination",
    "--destination": "destination",
    "-p": "protocol",
    "--protocol": "protocol",
    "--dport": "dport",
    "--destination-port": "dport",
    "--dports": "dport",
    "--destination-ports": "dport",
}


def parse_drops(text: str, family: Family, prefix: str = PREFIX, backend: str = "") -> list[Drop]:
    """DROP/REJECT rules of ``DROP_TABLES`` outside the chains named ``prefix...``, with the
    addresses, protocol and port they match (a ``!`` before an option is kept: ``!10.0.0.0/8``).

    Words are split as a shell would (``--comment "a b"`` is one word), which is how
    iptables-save quotes them.
    """
    found: list[Drop] = []
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        if table not in DROP_TABLES or not line.startswith("-A "):
            continue
        try:
            words = shlex.split(line)
        except ValueError:  # unbalanced quotes: not a rule this parser can read
            continue
        chain = words[1] if len(words) > 1 else ""
        if chain.startswith(prefix):
            continue
        fields = _match_fields(words[2:])
        if fields.get("target") not in DROP_TARGETS:
            continue
        rule = line[3:].partition(" ")[2]
        del fields["target"]
        found.append(Drop(family, table, chain, rule, backend=backend, **fields))
    return found


def _match_fields(words: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    negate = False
    for i, word in enumerate(words):
        if word == "!":
            negate = True
            continue
        following = words[i + 1] if i + 1 < len(words) else ""
        if word in {"-j", "--jump"}:
            fields["target"] = following
        elif word in _FIELDS and following:
            value = _address(following) if _FIELDS[word] in {"source", "destination"} else following
            fields[_FIELDS[word]] = ("!" if negate else "") + value
        negate = False
    return fields


def _address(text: str) -> str:
    """A CIDR in its normal spelling (a bare address gets its host prefix length)."""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def normalise_rule(rule: str) -> str:
    """A rule as iptables-save spells it, as far as addresses go: ``-d 10.96.0.10`` is saved
    as ``-d 10.96.0.10/32``, and IPv6 in compressed form. Compares a plan with a read-back."""
    try:
        words = shlex.split(rule)
    except ValueError:
        return rule
    out = []
    for i, word in enumerate(words):
        before = words[i - 1] if i else ""
        out.append(
            _address(word) if before in {"-s", "-d", "--to", "--source", "--destination"} else word
        )
    return shlex.join(out)


def restore_text(chains: Iterable[Chain], removed: Iterable[tuple[str, str]] = ()) -> str:
    """One restore transaction per table: refill ``chains``, empty the ``removed`` ones."""
    by_table: dict[str, list[str]] = {}
    for chain in chains:
        lines = by_table.setdefault(chain.table, [])
        lines.append(f":{chain.name} - [0:0]")
        lines.extend(f"-A {chain.name} {rule}" for rule in chain.rules)
    for table, name in removed:
        by_table.setdefault(table, []).append(f":{name} - [0:0]")
    out: list[str] = []
    for table, lines in sorted(by_table.items()):
        out += [f"*{table}", *lines, "COMMIT"]
    return "\n".join(out) + "\n"


class ChainSync:
    """Converge the owned chains of one family in one namespace."""

    def __init__(self, netns: Namespace, family: Family, prefix: str = PREFIX) -> None:
        self.netns = netns
        self.family = family
        self.prefix = prefix
        self._readback: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._backend: str | None = None

    async def backend(self) -> str:
        """The node's iptables backend (:func:`pick_backend`), found once."""
        if self._backend is None:
            saved = {}
            for backend in BACKENDS:
                try:
                    saved[backend] = await self.netns.run(tool(_SAVE, self.family, backend))
                except (OSError, CommandError):  # this backend's tools are not installed
                    continue
            self._backend = pick_backend(saved)
        return self._backend

    async def _tool(self, kind: dict[int, str]) -> str:
        return tool(kind, self.family, await self.backend())

    async def current(self) -> tuple[dict[tuple[str, str], list[str]], set[tuple[str, str, str]]]:
        return parse_save(await self.netns.run(await self._tool(_SAVE)), self.prefix)

    async def sync(self, desired: Iterable[Chain]) -> bool:
        """Make the owned chains exactly ``desired`` (others owned: emptied, unlinked).

        Returns whether anything was written.
        """
        wanted = {(c.table, c.name): c for c in desired if c.family == self.family}
        chains, jumps = await self.current()
        stale = [
            wanted[key]
            for key in wanted
            if not self._matches(key, wanted[key].rules, chains.get(key))
        ]
        extra = [key for key in chains if key not in wanted and chains[key]]
        written = False
        if stale or extra:
            await self.netns.run(
                await self._tool(_RESTORE), "--noflush", stdin=restore_text(stale, extra)
            )
            written = True
            after, jumps = await self.current()
            for chain in stale:
                key = (chain.table, chain.name)
                self._readback[key] = (chain.rules, tuple(after.get(key, ())))
        for chain in wanted.values():
            if (chain.table, chain.parent, chain.name) not in jumps:
                await self._jump(chain.table, chain.parent, chain.name, add=True)
                written = True
        for table, parent, name in jumps:
            if (table, name) not in wanted:
                await self._jump(table, parent, name, add=False)
                written = True
        return written

    def _matches(
        self, key: tuple[str, str], rules: tuple[str, ...], actual: list[str] | None
    ) -> bool:
        if actual is None:
            return False
        if tuple(actual) == rules:
            return True
        remembered = self._readback.get(key)
        return remembered is not None and remembered == (rules, tuple(actual))

    async def _jump(self, table: str, parent: str, name: str, *, add: bool) -> None:
        cmd = await self._tool(_IPTABLES)
        if add:
            await self.netns.run(cmd, "-w", "-t", table, "-I", parent, "1", "-j", name)
        else:
            await self.netns.run(cmd, "-w", "-t", table, "-D", parent, "-j", name, check=False)

    async def remove_all(self) -> None:
        """Unlink and delete every owned chain of this family."""
        chains, jumps = await self.current()
        for table, parent, name in jumps:
            await self._jump(table, parent, name, add=False)
        cmd = await self._tool(_IPTABLES)
        for table, name in chains:
            await self.netns.run(cmd, "-w", "-t", table, "-F", name, check=False)
            await self.netns.run(cmd, "-w", "-t", table, "-X", name, check=False)
        self._readback.clear()
