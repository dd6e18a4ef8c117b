"""IPsec tunnels negotiated by a real IKEv2 daemon (strongSwan's charon) driven over vici.

Static xfrm states would need no daemon but give no rekeying and no dead peer detection,
so one private charon per node negotiates IKEv2 (PSK auth) with tunnel-mode
CHILD SAs whose traffic selectors are the pod subnets, NAT-T when the ends sit behind 1:1
NAT, DPD and rekeying. ``backend="kernel"`` installs xfrm states (production nodes);
``backend="libipsec"`` does ESP in userspace over the TUN ``ipsec0`` for kernels without ESP
(the development machines). charon routes the remote subnets in table 220 (rule priority 220).

Each charon has its own strongswan.conf, vici socket, log and ``/run`` under ``run_dir``
(``kosmos.net.procns``). vici goes through strongSwan's own ``vici`` package in a worker
thread: its encoder is upstream's, the calls are few (an idle reconcile makes three), and a
connection per call survives daemon restarts. The pure half (:func:`strongswan_conf`,
:func:`vici_messages`) is table-tested in ``tests/unit/net/test_ipsec_config.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import vici

from kosmos.net.procns import Daemon, address_in, addresses, daemon_home, ip, wait_ready
from kosmos.net.tunnels import (
    RULE_PRIORITY,
    TABLE,
    TunnelError,
    TunnelSpec,
    TunnelState,
    check_unique,
)

log = logging.getLogger(__name__)

Backend = Literal["kernel", "libipsec"]
#: what the agent is told: a backend, or ``auto`` (the kernel's if it holds our ESP SAs)
BackendChoice = Literal["auto", "kernel", "libipsec"]
CHARON = Path("/usr/lib/ipsec/charon")
# AES-GCM and ECDH P-256 through the openssl plugin; libipsec does AES-GCM too (measured).
DEFAULT_IKE_PROPOSAL = "aes256gcm16-prfsha256-ecp256"
DEFAULT_ESP_PROPOSAL = "aes256gcm16-ecp256"
# kdf: IKEv2's prf+ with OpenSSL 3 (without it: "KDF_PRF with PRF_HMAC_SHA2_256 not supported").
PLUGINS = ("random", "nonce", "openssl", "kdf", "kernel-netlink", "socket-default", "vici")
SOCKET_PATH_MAX = 107
Message = dict[str, Any]


#: the ESP state :func:`kernel_has_esp` adds and deletes: documentation addresses (RFC 5737),
#: which no tunnel uses, so it can collide with no SA of charon's
_PROBE_SA = ("src", "198.51.100.1", "dst", "198.51.100.2", "proto", "esp", "spi", "0x4b05")
#: AES-GCM-256 with a 128-bit ICV, the cipher of DEFAULT_ESP_PROPOSAL: 32 key + 4 salt bytes
_PROBE_AEAD = ("aead", "rfc4106(gcm(aes))", "0x" + "00" * 36, "128")


async def kernel_has_esp(netns: str | None) -> bool:
    """Whether this kernel can hold the ESP SAs our proposal needs (xfrm with AES-GCM).

    A kernel without ESP lets IKE come up and then fails every CHILD SA ("unable to add SAD
    entry"), so the agent asks first: it adds one state no policy points at and deletes it.
    Loading the ``esp4``/GCM modules on demand is the kernel's job; where that is refused
    (no module, no ``modprobe``) the answer is no. A probe state an interrupted agent left
    behind is deleted first: "File exists" must not read as "no ESP".
    """
    await ip(netns, "xfrm", "state", "delete", *_PROBE_SA, check=False)
    try:
        await ip(netns, "xfrm", "state", "add", *_PROBE_SA, "mode", "tunnel", *_PROBE_AEAD)
    except TunnelError as exc:
        log.info("the kernel holds no ESP SA with AES-GCM: %s", exc)
        return False
    await ip(netns, "xfrm", "state", "delete", *_PROBE_SA, check=False)
    return True


async def choose_backend(choice: BackendChoice, netns: str | None) -> Backend:
    """``auto``: the kernel's xfrm where the kernel has ESP, else userspace ESP (libipsec)."""
    if choice != "auto":
        return choice
    return "kernel" if await kernel_has_esp(netns) else "libipsec"


@dataclass(frozen=True)
class IpsecSettings:
    """Everything about the daemon and the IKE/ESP parameters that is not per tunnel."""

    backend: Backend
    ike_proposal: str = DEFAULT_IKE_PROPOSAL
    esp_proposal: str = DEFAULT_ESP_PROPOSAL
    dpd_delay: int = 10
    ike_rekey_time: int = 4 * 3600
    child_rekey_time: int = 3600


#: Debian packages of the plugins that are not part of libstrongswan itself
PLUGIN_PACKAGES = {
    "openssl": "libstrongswan-standard-plugins",
    "kernel-libipsec": "libcharon-extra-plugins",
}


def plugins_for(backend: Backend) -> list[str]:
    plugins = list(PLUGINS)
    if backend == "libipsec":
        plugins.insert(plugins.index("kernel-netlink"), "kernel-libipsec")
    return plugins


def check_plugins(backend: Backend, directory: Path) -> None:
    """Name a missing plugin before charon starts: charon itself only logs an "unmet
    dependency" (e.g. ``HASHER:HASH_SHA1`` without openssl) and never opens its socket.
    Builds without a plugin directory (plugins linked in) are not checked."""
    if not directory.is_dir():
        return
    missing = [
        p for p in plugins_for(backend) if not (directory / f"libstrongswan-{p}.so").exists()
    ]
    if missing:
        packages = sorted({PLUGIN_PACKAGES.get(p, "strongswan-charon") for p in missing})
        raise TunnelError(
            f"strongSwan plugin(s) {', '.join(missing)} missing from {directory} "
            f"(Debian: apt-get install {' '.join(packages)})"
        )


def strongswan_conf(settings: IpsecSettings, run_dir: Path) -> str:
    """The strongswan.conf of one private charon; nothing in it is secret."""
    plugins = plugins_for(settings.backend)
    return f"""\
# Written by kosmos.net.ipsec for one private charon (docs/encryption.md); do not edit.
charon {{
    load_modular = no
    load = {" ".join(plugins)}
    install_virtual_ip = no
    install_routes = yes
    routing_table = {TABLE}
    routing_table_prio = {RULE_PRIORITY}
    # a dead peer is declared after about 14 s of unanswered DPD probes
    retransmit_tries = 3
    retransmit_timeout = 2.0
    retransmit_base = 1.4
    syslog {{ daemon {{ default = -1 }} }}
    # per-packet groups stay quiet: the log must not grow with traffic
    filelog {{ kosmos {{
        path = {run_dir / "charon.log"}
        time_format = %F %T
        append = yes
        flush_line = yes
        default = 1
        net = 0
        enc = 0
        esp = 0
    }} }}
    plugins {{ vici {{ socket = unix://{run_dir / "charon.vici"} }} }}
}}
"""


def conn_message(spec: TunnelSpec, settings: IpsecSettings) -> Message:
    """The vici ``load-conn`` message for one tunnel: IKEv2, PSK, one tunnel-mode child.

    Both ends install trap policies (on-demand with xfrm; with libipsec they only route the
    remote subnets into ``ipsec0``, which fails closed until the SA is up). Only the
    :attr:`TunnelSpec.initiator` end starts the SA, restarts it after DPD and re-opens it
    when the peer closes it; the other end answers.
    """
    initiator = spec.initiator
    child: Message = {
        "mode": "tunnel",
        "local_ts": list(spec.local_subnets),
        "remote_ts": list(spec.remote_subnets),
        "esp_proposals": [settings.esp_proposal],
        "rekey_time": f"{settings.child_rekey_time}s",
        "start_action": "trap|start" if initiator else "trap",
        "dpd_action": "restart" if initiator else "trap",
    }
    if initiator:
        child["close_action"] = "start"
    return {
        spec.name: {
            "version": "2",
            "local_addrs": [spec.local_address],
            "remote_addrs": [spec.remote_address],
            "proposals": [settings.ike_proposal],
            "mobike": "no",
            "encap": "no",
            "keyingtries": "0",
            "dpd_delay": f"{settings.dpd_delay}s",
            "rekey_time": f"{settings.ike_rekey_time}s",
            "local": {"auth": "psk", "id": spec.me},
            "remote": {"auth": "psk", "id": spec.peer},
            "children": {spec.name: child},
        }
    }


def shared_message(spec: TunnelSpec) -> Message:
    """The vici ``load-shared`` message: the pair's PSK, owned by both identities."""
    return {"id": spec.name, "type": "IKE", "data": spec.psk, "owners": [spec.me, spec.peer]}


def vici_messages(
    tunnels: Sequence[TunnelSpec], settings: IpsecSettings
) -> tuple[dict[str, Message], dict[str, Message]]:
    """``load-conn`` and ``load-shared`` messages for a desired set, by tunnel name."""
    check_unique(tunnels)
    conns = {spec.name: conn_message(spec, settings) for spec in tunnels}
    return conns, {spec.name: shared_message(spec) for spec in tunnels}


def fingerprint(spec: TunnelSpec, settings: IpsecSettings) -> str:
    """A digest of everything charon was told about a tunnel, so unchanged ones are skipped."""
    digest = hashlib.sha256(json.dumps(conn_message(spec, settings), sort_keys=True).encode())
    digest.update(spec.psk)
    digest.update(json.dumps(shared_message(spec)["owners"]).encode())
    return digest.hexdigest()


class _Vici:
    """One vici request per connection, in a worker thread (the package is blocking)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def call(self, command: str, message: Message | None = None, stream: str = "") -> Any:
        """A request; with ``stream`` (an event name) a streamed one, returning its events."""

        def in_thread() -> Any:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10.0)
                sock.connect(str(self.path))
                session = vici.Session(sock)
                if stream:
                    return list(session.streamed_request(command, stream, message))
                return session.request(command, message)

        try:
            return await asyncio.to_thread(in_thread)
        except (OSError, vici.exception.SessionException, vici.exception.CommandException) as e:
            # The text is charon's errmsg or the socket error, never the message we sent.
            raise TunnelError(f"vici {command} on {self.path}: {e}") from e


#: charon's errmsg when the SA to terminate no longer exists
_GONE = "no matching SAs to terminate found"


def _family(subnet: str) -> int:
    return 6 if ":" in subnet else 4


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def tunnel_state(name: str, sas: Iterable[Message], hint: str = "") -> TunnelState:
    """Summarise the IKE SAs named ``name`` (from ``list-sas``) as one TunnelState."""
    found = [sa[name] for sa in sas if name in sa]
    suffix = f" ({hint})" if hint else ""
    if not found:
        return TunnelState(name, False, "no IKE SA" + suffix)
    up = [sa for sa in found if _text(sa.get("state")) == "ESTABLISHED" and _installed(sa)]
    sa = up[-1] if up else found[-1]
    children = [
        f"CHILD {_text(c.get('state'))} {','.join(map(_text, c.get('local-ts', [])))}"
        f" === {','.join(map(_text, c.get('remote-ts', [])))}"
        for c in sa.get("child-sas", {}).values()
    ]
    nat = " NAT-T" if _text(sa.get("nat-any", "")) == "yes" else ""
    detail = (
        f"IKE {_text(sa.get('state'))} ike#{_text(sa.get('uniqueid'))}"
        f" {_text(sa.get('local-host'))}->{_text(sa.get('remote-host'))}{nat}; "
        + ("; ".join(children) or "no CHILD SA")
        + ("" if up else suffix)
    )
    return TunnelState(name, bool(up), detail)


def _installed(sa: Message) -> bool:
    return any(_text(c.get("state")) == "INSTALLED" for c in sa.get("child-sas", {}).values())


class StrongSwan:
    """A TunnelBackend: one private charon for this node, converged over vici."""

    def __init__(
        self,
        *,
        netns: str | None,
        run_dir: Path,
        backend: Backend,
        charon: Path = CHARON,
        ike_proposal: str = DEFAULT_IKE_PROPOSAL,
        esp_proposal: str = DEFAULT_ESP_PROPOSAL,
        dpd_delay: int = 10,
        ike_rekey_time: int = 4 * 3600,
        child_rekey_time: int = 3600,
        start_timeout: float = 10.0,
    ) -> None:
        self.netns = netns
        self.run_dir = daemon_home(run_dir)
        self.settings = IpsecSettings(
            backend, ike_proposal, esp_proposal, dpd_delay, ike_rekey_time, child_rekey_time
        )
        if len(str(self.vici_socket)) > SOCKET_PATH_MAX:
            raise TunnelError(f"run_dir {run_dir} is too long for a unix socket path")
        self._charon = charon
        self._start_timeout = start_timeout
        self._vici = _Vici(self.vici_socket)
        self._daemon: Daemon | None = None
        self._loaded: dict[str, dict[str, Any]] = {}  # name -> fingerprint and what to scrub

    @property
    def vici_socket(self) -> Path:
        """For ``swanctl --uri unix://<this>`` when debugging (docs/encryption.md)."""
        return self.run_dir / "charon.vici"

    @property
    def _pid_file(self) -> Path:
        return self.run_dir / "run" / "charon.pid"

    @property
    def _state_file(self) -> Path:
        return self.run_dir / "loaded.json"

    def __repr__(self) -> str:
        return f"StrongSwan(netns={self.netns!r}, backend={self.settings.backend!r})"

    async def start(self) -> None:
        if self._daemon is not None and self._daemon.alive():
            return
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        conf = self.run_dir / "strongswan.conf"
        text = strongswan_conf(self.settings, self.run_dir)
        same_conf = conf.exists() and conf.read_text() == text
        running = Daemon.adopt(self._pid_file, "charon")
        if running is not None and same_conf and await self._answers():
            self._daemon, self._loaded = running, self._read_state()
            log.info("ipsec %s: adopted charon pid %d", self, running.pid)
            return
        if running is not None:
            await running.stop()
        elif self._pid_file.exists() or self._state_file.exists():
            await self._scrub(self._read_state().values())  # the last charon died uncleanly
        check_plugins(self.settings.backend, self._charon.parent / "plugins")
        conf.write_text(text)
        conf.chmod(0o600)
        for stale in (self._pid_file, self.vici_socket, self._state_file):
            stale.unlink(missing_ok=True)
        self._loaded = {}
        self._daemon = await Daemon.spawn(
            [str(self._charon)],
            netns=self.netns,
            private_run=self.run_dir / "run",
            env={"STRONGSWAN_CONF": str(conf)},
            log_file=self.run_dir / "charon.stdout",
        )
        await wait_ready(
            self._daemon,
            self._answers,
            timeout=self._start_timeout,
            log=self.run_dir / "charon.log",
        )
        log.info("ipsec %s: started charon pid %d", self, self._daemon.pid)

    async def ensure(self, tunnels: Sequence[TunnelSpec]) -> list[TunnelState]:
        conns, shared = vici_messages(tunnels, self.settings)
        await self.start()
        loaded = set(await self._names("get-conns", "conns"))
        keys = set(await self._names("get-shared", "keys"))
        self._loaded = {n: v for n, v in self._loaded.items() if n in loaded}
        gone = sorted(loaded - conns.keys())
        for name in gone:
            await self._close(name)
            self._loaded.pop(name, None)
            log.info("ipsec %s: removed tunnel %s", self, name)
        for name in sorted(keys - shared.keys()):
            await self._vici.call("unload-shared", {"id": name})
        fresh = set()
        for spec in tunnels:
            digest = fingerprint(spec, self.settings)
            if self._loaded.get(spec.name, {}).get("fingerprint") == digest and spec.name in keys:
                continue
            await self._load(spec, conns[spec.name], shared[spec.name], spec.name in loaded)
            self._loaded[spec.name] = _scrub_record(spec, digest)
            fresh.add(spec.name)
        if fresh or gone:
            self._write_state()
        sas = await self._vici.call("list-sas", {"noblock": "yes"}, "list-sa")
        for spec in tunnels:
            if spec.initiator and spec.name not in fresh and not any(spec.name in s for s in sas):
                # timeout -1: return at once; the exchange goes on in the daemon
                request = {"child": spec.name, "ike": spec.name, "timeout": "-1"}
                await self._vici.call("initiate", request, "control-log")
        hints = await self._hints(tunnels)
        return [tunnel_state(spec.name, sas, hints.get(spec.name, "")) for spec in tunnels]

    async def status(self) -> list[TunnelState]:
        if not await self._answers():  # no charon (yet): no tunnels
            return []
        names = await self._names("get-conns", "conns")
        sas = await self._vici.call("list-sas", {"noblock": "yes"}, "list-sa")
        return [tunnel_state(name, sas) for name in sorted(names)]

    async def stop(self) -> None:
        daemon = self._daemon or Daemon.adopt(self._pid_file, "charon")
        ran = daemon is not None or self._pid_file.exists() or self._state_file.exists()
        loaded = self._loaded or self._read_state()
        # A charon that is already gone (killed, crashed) could not clean up after itself.
        clean = daemon is not None and daemon.alive() and await daemon.stop()
        if ran and not clean:
            await self._scrub(loaded.values())
        for stale in (self._pid_file, self.vici_socket, self._state_file):
            stale.unlink(missing_ok=True)
        self._daemon, self._loaded = None, {}
        log.info("ipsec %s: stopped", self)

    async def _load(self, spec: TunnelSpec, conn: Message, key: Message, replace: bool) -> None:
        """(Re)load one tunnel; a changed one is torn down so it renegotiates what changed."""
        if replace:
            await self._close(spec.name)
        await self._vici.call("load-shared", key)
        await self._vici.call("load-conn", conn)
        role = "initiator" if spec.initiator else "responder"
        log.info("ipsec %s: loaded %s (%s -> %s, %s)", self, spec.name, spec.me, spec.peer, role)

    async def _close(self, name: str) -> None:
        """Unload a connection and close its SAs (unload-conn alone leaves a responder's)."""
        await self._vici.call("unload-conn", {"name": name})
        for sa in await self._vici.call("list-sas", {"ike": name}, "list-sa"):
            request = {"ike-id": _text(sa[name]["uniqueid"]), "force": "yes", "timeout": "-1"}
            try:
                await self._vici.call("terminate", request, "control-log")
            except TunnelError as e:
                # listed, then gone before terminate (the peer closed or replaced it): done
                if _GONE not in str(e):
                    raise

    async def _hints(self, tunnels: Sequence[TunnelSpec]) -> dict[str, str]:
        """Why a tunnel may not come up, beyond what charon says.

        kernel-libipsec routes a CHILD SA's remote subnets with a source address taken from
        the local subnets and fails the whole CHILD SA when this node has no address in one
        of them ("error installing route with policy"); the xfrm backend has no such need.
        """
        hints = {s.name: "the peer initiates" for s in tunnels if not s.initiator}
        if self.settings.backend != "libipsec":
            return hints
        present = await addresses(self.netns)
        for spec in tunnels:
            missing = [n for n in spec.local_subnets if not address_in([n], present, _family(n))]
            if missing:
                hints[spec.name] = f"libipsec needs an address of this node in {', '.join(missing)}"
        return hints

    async def _names(self, command: str, key: str) -> list[str]:
        return [_text(n) for n in (await self._vici.call(command)).get(key, [])]

    async def _answers(self) -> bool:
        try:
            await self._vici.call("version")
        except TunnelError:
            return False
        return True

    async def _scrub(self, loaded: Iterable[dict[str, Any]]) -> None:
        """What a killed charon leaves behind: its rule, table-220 routes and xfrm entries."""
        commands = [f"{f} rule del priority {RULE_PRIORITY} table {TABLE}" for f in ("-4", "-6")]
        for item in loaded:
            commands += [f"route del {net} table {TABLE}" for net in item["remote_subnets"]]
            if self.settings.backend != "kernel":
                continue  # libipsec kept its SAs in the daemon and its TUN died with it
            for local in item["local_subnets"]:
                for remote in item["remote_subnets"]:
                    commands += [
                        f"xfrm policy delete src {local} dst {remote} dir out",
                        f"xfrm policy delete src {remote} dst {local} dir in",
                        f"xfrm policy delete src {remote} dst {local} dir fwd",
                    ]
            local, remote = item["local"], item["remote"]
            commands += [
                f"xfrm state deleteall src {local} dst {remote}",
                f"xfrm state deleteall src {remote} dst {local}",
            ]
        for command in commands:
            await ip(self.netns, *command.split(), check=False)

    def _read_state(self) -> dict[str, dict[str, Any]]:
        try:
            state: dict[str, dict[str, Any]] = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state

    def _write_state(self) -> None:
        self._state_file.write_text(json.dumps(self._loaded, sort_keys=True))
        self._state_file.chmod(0o600)


def _scrub_record(spec: TunnelSpec, digest: str) -> dict[str, Any]:
    """What stop() needs to clean up after a killed charon, and the fingerprint (no key)."""
    return {
        "fingerprint": digest,
        "local": spec.local_address,
        "remote": spec.remote_address,
        "local_subnets": list(spec.local_subnets),
        "remote_subnets": list(spec.remote_subnets),
    }
