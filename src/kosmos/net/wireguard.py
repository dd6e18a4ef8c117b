"""WireGuard tunnels through one userspace ``wireguard-go`` device per node.

The kernel of the development machines has no WireGuard module, so the device is
``wireguard-go -f`` (foreground, under our supervision: daemonized copies leave zombies) in
the node's network namespace with a private ``/run`` (``kosmos.net.procns``); we configure it
by speaking the UAPI text protocol to its socket ``<run_dir>/run/wireguard/<dev>.sock`` (the
same protocol ``wg`` speaks), so no key ever appears on a command line.

One device carries every peer: peers are keyed by public key, AllowedIPs are the peer's
remote subnets, the endpoint is its reachable (elastic) address, and each peer gets a
preshared key derived from the pair's TunnelSpec psk (post-quantum hedge, and the same secret
source as IPsec). Remote subnets are routed through the device in table 220 at rule priority
220, like IPsec, so the VXLAN plan's table 200 stays the lead's.

The private key is derived from a seed the caller passes (so a node keeps its key across
restarts without storing it) or generated once and kept in ``run_dir/private.key``;
:meth:`WireGuard.public_key` is what the agent publishes for its peers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kosmos.api.addresses import join_host_port
from kosmos.net.procns import Daemon, address_in, addresses, daemon_home, ip, wait_ready
from kosmos.net.tunnels import (
    RULE_PRIORITY,
    TABLE,
    InvalidTunnel,
    TunnelError,
    TunnelSpec,
    TunnelState,
    check_unique,
)

log = logging.getLogger(__name__)

WIREGUARD_GO = Path("/usr/bin/wireguard-go")
DEFAULT_PORT = 51820
REJECT_AFTER = 180  # s: WireGuard drops a session this old, so older handshakes mean "down"
_KEY_LABEL = b"kosmos wireguard private key v1"
_PSK_LABEL = b"kosmos wireguard preshared key v1"


def private_key_from_seed(seed: bytes) -> bytes:
    """A clamped Curve25519 private key derived from ``seed`` (same seed, same key)."""
    return _clamp(hmac.new(seed, _KEY_LABEL, hashlib.sha256).digest())


def public_key_of(private_key: bytes) -> str:
    """The base64 public key (what ``wg pubkey`` prints) of a raw private key."""
    public = X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()
    return base64.b64encode(public).decode()


def preshared_key(psk: bytes) -> bytes:
    """The 32-byte WireGuard preshared key of a pair, from its TunnelSpec psk."""
    return hmac.new(psk, _PSK_LABEL, hashlib.sha256).digest()


def _clamp(key: bytes) -> bytes:
    raw = bytearray(key)
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return bytes(raw)


@dataclass(frozen=True)
class Peer:
    """One peer as the UAPI reports or should hold it (keys hex, as UAPI wants them)."""

    public_key: str
    endpoint: str
    allowed_ips: frozenset[str]
    preshared_key: str = ""
    keepalive: int = 0
    last_handshake: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0

    def same_config(self, other: Peer) -> bool:
        return (
            self.allowed_ips == other.allowed_ips
            and self.preshared_key == other.preshared_key
            and self.keepalive == other.keepalive
        )


def peer_for(spec: TunnelSpec, port: int, keepalive: int) -> Peer:
    """The desired peer of a spec; InvalidTunnel when its public key is missing or wrong."""
    if not spec.remote_public_key:
        raise InvalidTunnel(f"tunnel {spec.name}: the peer's WireGuard public key is not known")
    try:
        raw = base64.b64decode(spec.remote_public_key, validate=True)
    except binascii.Error as e:
        raise InvalidTunnel(f"tunnel {spec.name}: remote_public_key is not base64") from e
    if len(raw) != 32:
        raise InvalidTunnel(f"tunnel {spec.name}: remote_public_key is not 32 bytes")
    return Peer(
        public_key=raw.hex(),
        endpoint=join_host_port(spec.remote_address, port),
        allowed_ips=frozenset(spec.remote_subnets),
        preshared_key=preshared_key(spec.psk).hex(),
        keepalive=keepalive,
    )


def peer_lines(peer: Peer, *, endpoint: bool) -> list[str]:
    """UAPI ``set`` lines that make the device hold exactly ``peer``."""
    lines = [f"public_key={peer.public_key}", f"preshared_key={peer.preshared_key}"]
    if endpoint:
        lines.append(f"endpoint={peer.endpoint}")
    lines += [f"persistent_keepalive_interval={peer.keepalive}", "replace_allowed_ips=true"]
    return lines + [f"allowed_ip={net}" for net in sorted(peer.allowed_ips)]


def parse_peers(text: str) -> tuple[dict[str, str], dict[str, Peer]]:
    """A UAPI ``get`` answer: the device fields and the peers by public key (hex)."""
    device: dict[str, str] = {}
    peers: dict[str, Peer] = {}
    fields: dict[str, str] = {}
    nets: set[str] = set()

    def close() -> None:
        if "public_key" in fields:
            peers[fields["public_key"]] = Peer(
                public_key=fields["public_key"],
                endpoint=fields.get("endpoint", ""),
                allowed_ips=frozenset(nets),
                preshared_key=fields.get("preshared_key", "").replace("0" * 64, ""),
                keepalive=int(fields.get("persistent_keepalive_interval", "0")),
                last_handshake=int(fields.get("last_handshake_time_sec", "0")),
                rx_bytes=int(fields.get("rx_bytes", "0")),
                tx_bytes=int(fields.get("tx_bytes", "0")),
            )

    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "public_key":
            close()
            fields, nets = {}, set()
        if key == "allowed_ip":
            nets.add(value)
        elif "public_key" in fields or key == "public_key":
            fields[key] = value
        else:
            device[key] = value
    close()
    return device, peers


class WireGuard:
    """A TunnelBackend: one supervised wireguard-go device for this node."""

    def __init__(
        self,
        *,
        netns: str | None,
        run_dir: Path,
        seed: bytes | None = None,
        device: str = "kwg0",
        listen_port: int = DEFAULT_PORT,
        keepalive: int = 25,
        mtu: int = 1420,
        wireguard_go: Path = WIREGUARD_GO,
        start_timeout: float = 10.0,
    ) -> None:
        self.netns = netns
        self.run_dir = daemon_home(run_dir)
        self.device = device
        self.listen_port = listen_port
        self.keepalive = keepalive
        self.mtu = mtu
        self._seed = seed
        self._private: bytes | None = None
        self._binary = wireguard_go
        self._start_timeout = start_timeout
        self._daemon: Daemon | None = None
        self._names: dict[str, str] = {}  # peer public key (hex) -> tunnel name

    def __repr__(self) -> str:
        return f"WireGuard(netns={self.netns!r}, device={self.device!r})"

    @property
    def _log_file(self) -> Path:
        return self.run_dir / "wireguard-go.log"

    @property
    def _names_file(self) -> Path:
        """Tunnel names by peer key, so a restarted agent's status() can name its peers."""
        return self.run_dir / "peers.json"

    def _read_names(self) -> dict[str, str]:
        try:
            names: dict[str, str] = json.loads(self._names_file.read_text())
        except (OSError, ValueError):
            return {}
        return names

    @property
    def uapi_socket(self) -> Path:
        return self.run_dir / "run" / "wireguard" / f"{self.device}.sock"

    def public_key(self) -> str:
        """This node's public key (base64), for the agent to publish to its peers."""
        return public_key_of(self._private_key())

    async def start(self) -> None:
        if self._daemon is not None and self._daemon.alive():
            return
        pid_file = self.run_dir / "wireguard-go.pid"
        running = Daemon.adopt(pid_file, "wireguard-go")
        if running is not None and await self._answers():
            self._daemon, self._names = running, self._read_names()
            log.info("wireguard %s: adopted wireguard-go pid %d", self, running.pid)
            return
        if running is not None:
            await running.stop()
        self.uapi_socket.unlink(missing_ok=True)
        self._daemon = await Daemon.spawn(
            [str(self._binary), "-f", self.device],
            netns=self.netns,
            private_run=self.run_dir / "run",
            env={"LOG_LEVEL": "error"},
            log_file=self._log_file,
        )
        pid_file.write_text(f"{self._daemon.pid}\n")
        await wait_ready(self._daemon, self._answers, timeout=self._start_timeout)
        await ip(self.netns, "link", "set", self.device, "mtu", str(self.mtu), "up")
        await self._uapi(["set=1", *self._device_lines()])
        log.info("wireguard %s: started wireguard-go pid %d", self, self._daemon.pid)

    async def ensure(self, tunnels: Sequence[TunnelSpec]) -> list[TunnelState]:
        check_unique(tunnels)
        await self.start()
        wanted: dict[str, Peer] = {}
        problems: dict[str, str] = {}
        for spec in tunnels:
            try:
                wanted[spec.name] = peer_for(spec, self.listen_port, self.keepalive)
            except InvalidTunnel as e:
                problems[spec.name] = str(e)
        names = {peer.public_key: name for name, peer in wanted.items()}
        if names != self._names:
            self._names = names
            self._names_file.write_text(json.dumps(names, sort_keys=True))
        device, current = parse_peers(await self._uapi(["get=1"]))
        lines = [] if device.get("private_key") else self._device_lines()
        lines += self._peer_changes({p.public_key: p for p in wanted.values()}, current)
        if lines:
            await self._uapi(["set=1", *lines])
            log.info("wireguard %s: configured %d peer(s)", self, len(wanted))
        await self._ensure_routes([s for s in tunnels if s.name in wanted])
        states = {s.name: s for s in await self.status()}
        return [
            TunnelState(spec.name, False, problems[spec.name])
            if spec.name in problems
            else states.get(spec.name, TunnelState(spec.name, False, "peer not configured"))
            for spec in tunnels
        ]

    async def status(self) -> list[TunnelState]:
        if not await self._answers():  # no device (yet): no tunnels
            return []
        _, peers = parse_peers(await self._uapi(["get=1"]))
        now = time.time()
        states = []
        for key, name in sorted(self._names.items(), key=lambda item: item[1]):
            peer = peers.get(key)
            if peer is None:
                states.append(TunnelState(name, False, "peer not configured"))
                continue
            age = now - peer.last_handshake if peer.last_handshake else None
            up = age is not None and age < REJECT_AFTER
            said = f"handshake {age:.0f}s ago" if age is not None else "no handshake yet"
            detail = f"{said}; endpoint {peer.endpoint}; rx {peer.rx_bytes} tx {peer.tx_bytes}"
            states.append(TunnelState(name, up, detail))
        return states

    async def stop(self) -> None:
        daemon = self._daemon or Daemon.adopt(self.run_dir / "wireguard-go.pid", "wireguard-go")
        if daemon is not None:
            await daemon.stop()
        if await ip(self.netns, "link", "show", "dev", self.device, check=False):
            await ip(self.netns, "link", "del", self.device, check=False)  # it was killed
        try:
            await self._drop_rules_if_unused()
        except TunnelError as e:  # e.g. the namespace is gone, and its rules with it
            log.warning("wireguard %s: could not check rule %d: %s", self, RULE_PRIORITY, e)
        for stale in (self.uapi_socket, self.run_dir / "wireguard-go.pid", self._names_file):
            stale.unlink(missing_ok=True)
        self._daemon, self._names = None, {}
        log.info("wireguard %s: stopped", self)

    def _peer_changes(self, wanted: dict[str, Peer], current: dict[str, Peer]) -> list[str]:
        """UAPI lines for what differs; the endpoint only counts while no session is up.

        WireGuard learns a peer's endpoint from authenticated packets (roaming behind NAT);
        resetting it on every reconcile would fight that, so a live session keeps its own.
        """
        lines: list[str] = []
        for key in sorted(current.keys() - wanted.keys()):
            lines += [f"public_key={key}", "remove=true"]
        now = time.time()
        for key, peer in sorted(wanted.items()):
            have = current.get(key)
            live = have is not None and now - have.last_handshake < REJECT_AFTER
            moved = have is None or (have.endpoint != peer.endpoint and not live)
            if have is None or moved or not have.same_config(peer):
                lines += peer_lines(peer, endpoint=moved)
        return lines

    async def _ensure_routes(self, tunnels: Sequence[TunnelSpec]) -> None:
        """Remote subnets via the device in table 220 (src: my address in a local subnet)."""
        present = await addresses(self.netns)
        wanted: dict[str, str | None] = {}
        for spec in tunnels:
            for remote in map(ip_network, spec.remote_subnets):
                wanted[str(remote)] = address_in(spec.local_subnets, present, remote.version)
        have: dict[str, str | None] = {}
        for family in ("-4", "-6"):
            for route in await self._table(family):
                if route.get("dev") != self.device:
                    continue
                dst = str(ip_network(route["dst"]))  # a /32 or /128 is listed bare
                have[dst] = route.get("prefsrc")
                if dst not in wanted:
                    await ip(self.netns, family, "route", "del", dst, "table", str(TABLE))
        for subnet, src in sorted(wanted.items()):
            if subnet not in have or have[subnet] != src:
                args = ["route", "replace", subnet, "dev", self.device, "table", str(TABLE)]
                await ip(self.netns, *args, *(["src", src] if src else []))
        for family in sorted({"-6" if ":" in subnet else "-4" for subnet in wanted}):
            await self._ensure_rule(family)

    async def _ensure_rule(self, family: str) -> None:
        rules = json.loads(await ip(self.netns, "-j", family, "rule", "show") or "[]")
        if not any(r.get("priority") == RULE_PRIORITY for r in rules):
            await ip(
                self.netns,
                family,
                "rule",
                "add",
                "priority",
                str(RULE_PRIORITY),
                "lookup",
                str(TABLE),
            )

    async def _drop_rules_if_unused(self) -> None:
        """Remove the rule 220 once table 220 is empty (IPsec may share table and rule)."""
        for family in ("-4", "-6"):
            if await self._table(family):
                continue
            rules = json.loads(await ip(self.netns, "-j", family, "rule", "show") or "[]")
            if any(
                r.get("priority") == RULE_PRIORITY and r.get("table") == str(TABLE) for r in rules
            ):
                await ip(self.netns, family, "rule", "del", "priority", str(RULE_PRIORITY))

    async def _table(self, family: str) -> list[dict[str, str]]:
        """Routes of table 220 ("FIB table does not exist" until a route is put in it)."""
        try:
            out = await ip(self.netns, "-j", family, "route", "show", "table", str(TABLE))
        except TunnelError:
            return []
        routes: list[dict[str, str]] = json.loads(out or "[]")
        return routes

    def _device_lines(self) -> list[str]:
        return [
            f"private_key={self._private_key().hex()}",
            f"listen_port={self.listen_port}",
        ]

    def _private_key(self) -> bytes:
        if self._private is None:
            self._private = (
                private_key_from_seed(self._seed) if self._seed is not None else self._stored_key()
            )
        return self._private

    def _stored_key(self) -> bytes:
        path = self.run_dir / "private.key"
        if path.exists():
            return base64.b64decode(path.read_text().strip())
        key = _clamp(os.urandom(32))
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(key).decode() + "\n")
        return key

    async def _uapi(self, lines: Sequence[str]) -> str:
        """One UAPI exchange; the request holds keys, so errors never quote it."""
        request = list(lines)
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.uapi_socket))
        except OSError as e:
            raise TunnelError(f"wireguard {self}: cannot reach {self.uapi_socket}: {e}") from e
        try:
            writer.write(("\n".join(request) + "\n\n").encode())
            await writer.drain()
            answer = (await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)).decode()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
            raise TunnelError(f"wireguard {self}: UAPI {request[0]} failed: {e!r}") from e
        finally:
            writer.close()
        errno = next((line[6:] for line in answer.splitlines() if line.startswith("errno=")), "")
        if errno != "0":
            raise TunnelError(f"wireguard {self}: UAPI {request[0]} refused (errno {errno})")
        return answer

    async def _answers(self) -> bool:
        try:
            await self._uapi(["get=1"])
        except TunnelError:
            return False
        return True
