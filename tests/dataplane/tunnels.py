"""The tunnel backends (``kosmos.net.tunnels.TunnelBackend``) as one test suite drives them.

``test_tunnels.py`` runs the same scenarios against every backend, the way virtual-kubelet
gives its providers one shared suite; a :class:`Backend` says what differs between them
(the daemon, the device, what its packets look like on the wire, how a session is
identified). ``test_ipsec.py`` and ``test_wireguard.py`` hold what only one backend does.
:func:`handbuilt_strongswan` is the IPsec throughput baseline (``bench/network.py`` too).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vici

from kosmos.net.ipsec import StrongSwan
from kosmos.net.tunnels import TunnelSpec, TunnelState
from kosmos.net.wireguard import WIREGUARD_GO, WireGuard
from tests.dataplane.testbed import NodeSpec, Topology, run
from tests.support import require, wait_for, wait_for_async

CHARON = Path("/usr/lib/ipsec/charon")
LIBIPSEC = Path("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")


class Backend:
    """What the shared suite needs to know of one backend."""

    id: str
    daemon: str  # the process it supervises
    device: str  # the link it adds to the node's namespace
    wire: str  # a BPF filter for its packets on the underlay
    wire_name: str  # how a failure message names those packets
    reconfigured: str  # what it logs when ensure() changed the daemon's configuration
    settle: float  # how long a changed tunnel may take to show after ensure() returns
    rekeys_on_change: bool  # a changed subnet list means a new session
    tools: tuple[str, ...]  # on PATH, beyond the tier's
    files: tuple[tuple[Path, str], ...]  # what else must be installed, where it comes from

    def require(self) -> None:
        """Skip (fail in CI) when this machine lacks what the backend runs on."""
        for tool in self.tools:
            require(shutil.which(tool) is not None, f"{self.id} dataplane tests need `{tool}`")
        for path, what in (*self.files, (Path("/dev/net/tun"), "a TUN device")):
            require(path.exists(), f"{self.id} dataplane tests need {what}")

    def new(self, netns: str, run_dir: Path, seed: bytes, **options: Any) -> Any:
        raise NotImplementedError

    def spec_fields(self, peer: Any) -> dict[str, Any]:
        """What a TunnelSpec needs from the peer's backend beyond the testbed's addresses."""
        return {}

    def sessions(self, backend: Any) -> object:
        """What identifies the live sessions: equal before and after means no renegotiation."""
        raise NotImplementedError

    async def covers(self, backend: Any, subnet: str) -> bool:
        """The tunnel carries ``subnet`` (as the daemon itself says)."""
        raise NotImplementedError

    def route(self, subnet: str, src: str) -> str:
        """How the route to a remote subnet shows in ``ip route show table 220``."""
        return subnet

    def pid_file(self, backend: Any) -> Path:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.id


class IPsec(Backend):
    id, daemon, device = "ipsec", "charon", "ipsec0"
    wire, wire_name = "esp or udp port 4500", "ESP/NAT-T"
    reconfigured, settle, rekeys_on_change = "loaded", 10, True
    tools = ("unshare", "swanctl")
    files = (
        (CHARON, "strongSwan's charon (Debian strongswan-charon)"),
        (LIBIPSEC, "kernel-libipsec (Debian libcharon-extra-plugins)"),
    )

    def new(self, netns: str, run_dir: Path, seed: bytes, **options: Any) -> StrongSwan:
        return StrongSwan(netns=netns, run_dir=run_dir, **{"backend": "libipsec", **options})

    def sessions(self, backend: StrongSwan) -> dict[str, tuple[str, list[str]]]:
        """IKE SA unique id and CHILD SA ids per connection, straight from the daemon."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(backend.vici_socket))
            sas = list(vici.Session(sock).list_sas())
        return {
            name: (
                sa["uniqueid"].decode(),
                [c["uniqueid"].decode() for c in sa["child-sas"].values()],
            )
            for entry in sas
            for name, sa in entry.items()
        }

    async def covers(self, backend: StrongSwan, subnet: str) -> bool:
        state = (await backend.status())[0]
        return subnet in state.detail and state.established

    def pid_file(self, backend: StrongSwan) -> Path:
        return backend.run_dir / "run" / "charon.pid"


class WireGuardBackend(Backend):
    id, daemon, device = "wireguard", "wireguard-go", "kwg0"
    wire, wire_name = "udp port 51820", "WireGuard"
    reconfigured, settle, rekeys_on_change = "configured", 0, False
    tools = ("wg",)
    files = ((WIREGUARD_GO, "wireguard-go (Debian wireguard-go)"),)

    def new(self, netns: str, run_dir: Path, seed: bytes, **options: Any) -> WireGuard:
        return WireGuard(netns=netns, run_dir=run_dir, seed=seed, **options)

    def spec_fields(self, peer: WireGuard) -> dict[str, Any]:
        return {"remote_public_key": peer.public_key()}

    def sessions(self, backend: WireGuard) -> list[str]:
        return [line for line in uapi_peers(backend).splitlines() if "last_handshake_time" in line]

    async def covers(self, backend: WireGuard, subnet: str) -> bool:
        return f"allowed_ip={subnet}" in uapi_peers(backend)

    def route(self, subnet: str, src: str) -> str:
        return f"{subnet} dev {self.device} src {src}"

    def pid_file(self, backend: WireGuard) -> Path:
        return backend.run_dir / "wireguard-go.pid"


IPSEC, WIREGUARD = IPsec(), WireGuardBackend()
BACKENDS = (IPSEC, WIREGUARD)


def uapi_peers(backend: WireGuard) -> str:
    """The device's own view (UAPI get), read with a plain socket: what the test measures."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(backend.uapi_socket))
        sock.sendall(b"get=1\n\n")
        data = b""
        while not data.endswith(b"\n\n"):
            data += sock.recv(65536)
    return data.decode()


def spec(bed: Topology, me: NodeSpec, peer: NodeSpec, psk: bytes, **changes: Any) -> TunnelSpec:
    """The tunnel from ``me`` to ``peer`` as the agent would build it (ids = elastic IPs)."""
    fields: dict[str, Any] = {
        "name": f"to-{peer.name}",
        "local_address": bed.underlay(me)[0],
        "remote_address": peer.elastic_ip,
        "local_subnets": (me.pod_cidr,),
        "remote_subnets": (peer.pod_cidr,),
        "psk": psk,
        "local_id": me.elastic_ip,
        "remote_id": peer.elastic_ip,
    }
    fields.update(changes)
    return TunnelSpec(**fields)


@dataclass
class Ends:
    """A backend on each node of a ``nat_pair`` testbed (run dirs under ``work``)."""

    backend: Backend
    bed: Topology
    work: Path
    seeds: dict[str, bytes]
    a: Any = None
    b: Any = None

    @classmethod
    def on(cls, backend: Backend, bed: Topology) -> Ends:
        # short run dirs: the daemons' sockets are unix paths
        work = Path(tempfile.mkdtemp(prefix=bed.prefix))
        ends = cls(backend, bed, work, {"a": os.urandom(32), "b": os.urandom(32)})
        ends.a, ends.b = (ends.new(node) for node in ends.nodes)
        return ends

    @property
    def nodes(self) -> tuple[NodeSpec, NodeSpec]:
        a, b = self.bed.nodes()
        return a, b

    def new(self, node: NodeSpec, run_dir: Path | None = None, **options: Any) -> Any:
        """Another backend for the node's namespace: by default in the node's run dir, as a
        restarted agent has; with ``options`` for the backend's constructor."""
        run_dir = run_dir or self.work / node.name
        return self.backend.new(self.bed.node_ns(node), run_dir, self.seeds[node.name], **options)

    def specs(self, psk: bytes) -> tuple[TunnelSpec, TunnelSpec]:
        (a, b), backend = self.nodes, self.backend
        return (
            spec(self.bed, a, b, psk, **backend.spec_fields(self.b)),
            spec(self.bed, b, a, psk, **backend.spec_fields(self.a)),
        )

    async def up(self, spec_a: TunnelSpec, spec_b: TunnelSpec) -> None:
        await bring_up(self.a, self.b, spec_a, spec_b)

    async def close(self) -> None:
        for end in (self.a, self.b):
            await end.stop()
        shutil.rmtree(self.work, ignore_errors=True)


async def bring_up(a: Any, b: Any, spec_a: TunnelSpec, spec_b: TunnelSpec) -> None:
    """Both ends ensured (the responder first) and established."""
    await b.ensure([spec_b])
    await a.ensure([spec_a])
    await established(a)
    await established(b)


async def established(backend: Any, timeout: float = 10) -> list[TunnelState]:
    async def states() -> list[TunnelState] | None:
        found: list[TunnelState] = await backend.status()
        return found if found and all(s.established for s in found) else None

    result: list[TunnelState] = await wait_for_async(
        states, timeout, f"{backend} established", interval=0.05
    )
    return result


def master_key_forms(secret: dict[str, Any]) -> set[str]:
    """The forms a tunnel master key Secret's ``psk`` could leak in: as the Secret holds it
    (base64), re-encoded from its bytes, and hex."""
    master = base64.b64decode(secret["data"]["psk"])
    return {master.hex(), secret["data"]["psk"], base64.b64encode(master).decode()}


def assert_no_secret(forms: list[bytes], texts: list[str], blobs: dict[str, bytes]) -> None:
    """No form of a secret in any text (logs, errors, reprs) or blob (files, command lines)."""
    for form in forms:
        for text in texts:
            assert form.decode("latin-1") not in text
        for where, blob in blobs.items():
            assert form not in blob, f"the key is in {where}"


_HAND_CONF = """charon {{
    load_modular = no
    load = random nonce openssl kdf kernel-libipsec kernel-netlink socket-default vici
    filelog {{ hand {{
        path = {dir}/charon.log
        default = 1
    }} }}
    plugins {{ vici {{ socket = unix://{dir}/charon.vici }} }}
}}
"""
_HAND_SWANCTL = """connections {{
    baseline {{
        version = 2
        local_addrs = {local_address}
        remote_addrs = {remote_address}
        proposals = aes256gcm16-prfsha256-ecp256
        local {{
            auth = psk
            id = {local_id}
        }}
        remote {{
            auth = psk
            id = {remote_id}
        }}
        children {{
            baseline {{
                local_ts = {local_ts}
                remote_ts = {remote_ts}
                esp_proposals = aes256gcm16-ecp256
                start_action = {start_action}
            }}
        }}
    }}
}}
secrets {{
    ike-baseline {{
        id-1 = {local_id}
        id-2 = {remote_id}
        secret = 0x{secret}
    }}
}}
"""


@contextlib.contextmanager
def handbuilt_strongswan(
    bed: Topology, initiator: NodeSpec, responder: NodeSpec, psk: bytes, work: Path
) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """The baseline: one charon per node from hand-written configs, loaded with swanctl.

    Same proposals, NAT handling and libipsec as ``kosmos.net.ipsec``, between the first pod
    subnets of two nodes with elastic IPs. Yields the two charon processes once the CHILD SA
    is up; kills them on exit.
    """
    work = Path(tempfile.mkdtemp(prefix="hand-", dir=work))
    charons: list[subprocess.Popen[bytes]] = []
    try:
        for me, peer in ((responder, initiator), (initiator, responder)):  # responder first
            directory = work / me.name
            uri = f"unix://{directory}/charon.vici"
            charons.append(_handbuilt_charon(bed, me, peer, psk, directory, me is initiator))
            wait_for(
                lambda d=directory: (d / "charon.vici").exists(), 10, "charon's vici socket",
                interval=0.05,
            )  # fmt: skip
            swanctl = directory / "swanctl.conf"
            run("swanctl", "--load-all", "--noprompt", "--file", str(swanctl), "--uri", uri)
        wait_for(
            lambda: "INSTALLED" in run("swanctl", "--list-sas", "--uri", uri), 10, "CHILD SA",
            interval=0.05,
        )  # fmt: skip
        yield charons[1], charons[0]
    finally:
        for charon in charons:
            charon.terminate()
        for charon in charons:
            try:
                charon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                charon.kill()
                charon.wait()


def _handbuilt_charon(
    bed: Topology, me: NodeSpec, peer: NodeSpec, psk: bytes, directory: Path, initiator: bool
) -> subprocess.Popen[bytes]:
    (directory / "run").mkdir(parents=True)
    (directory / "strongswan.conf").write_text(_HAND_CONF.format(dir=directory))
    (directory / "swanctl.conf").write_text(
        _HAND_SWANCTL.format(
            local_address=bed.underlay(me)[0],
            remote_address=peer.elastic_ip,
            local_id=me.elastic_ip,
            remote_id=peer.elastic_ip,
            local_ts=me.pod_cidr,
            remote_ts=peer.pod_cidr,
            start_action="start" if initiator else "none",
            secret=psk.hex(),
        )
    )
    env = {**os.environ, "STRONGSWAN_CONF": str(directory / "strongswan.conf")}
    # charon writes its pid file and sockets to /run: a private /run for each of the two
    mount = 'mount --bind "$0" /run && exec "$1"'
    argv = ["unshare", "--mount", "--", "sh", "-c", mount, str(directory / "run"), str(CHARON)]
    return subprocess.Popen(
        ["ip", "netns", "exec", bed.node_ns(me), *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def grown(
    spec: TunnelSpec, *, local: tuple[str, ...] = (), remote: tuple[str, ...] = ()
) -> TunnelSpec:
    """The spec with more local and remote subnets."""
    return dataclasses.replace(
        spec,
        local_subnets=(*spec.local_subnets, *local),
        remote_subnets=(*spec.remote_subnets, *remote),
    )
