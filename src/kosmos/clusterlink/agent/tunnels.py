"""NodeConfig tunnels -> the node's IKE daemon (strongSwan) or WireGuard, with derived keys.

The daemon is started on first need and stopped when the NodeConfig has no tunnels left.
Keys come from the master Secret the tunnel names (read from the host at each pass, so a
rotated master takes effect at the next pass) and never reach a log line or a status.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from kosmos.api.objects import Obj
from kosmos.api.resources import SECRETS
from kosmos.clusterlink.agent import keys
from kosmos.clusterlink.planner.plan import tunnel_name
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError
from kosmos.net import ipsec, wireguard
from kosmos.net import tunnels as net_tunnels
from kosmos.net.errors import NetError

log = logging.getLogger("kosmos.clusterlink.agent.tunnels")


class Driver:
    def __init__(
        self,
        *,
        host: Client,
        own_name: str,
        netns: str | None,
        run_dir: Path,
        ipsec_backend: ipsec.BackendChoice,
    ) -> None:
        self.host = host
        self.own_name = own_name
        self.netns = netns
        self.run_dir = run_dir
        self.ipsec_backend = ipsec_backend
        self._backends: dict[str, net_tunnels.TunnelBackend] = {}

    async def ensure(self, specs: Sequence[Obj]) -> list[tuple[str, str]]:
        """Converge the tunnels; return (item, why) for each that could not be set up."""
        failures: list[tuple[str, str]] = []
        wanted: dict[str, list[net_tunnels.TunnelSpec]] = {}
        masters: dict[tuple[str, str, str], bytes] = {}
        for spec in specs:
            try:
                tunnel = await self._spec(spec, masters)
            except (keys.KeyError_, KubeError, net_tunnels.InvalidTunnel) as exc:
                failures.append((f"tunnel {spec.get('name')}", str(exc)))
                continue
            wanted.setdefault(spec.get("type", "ipsec"), []).append(tunnel)
        for kind in sorted(set(wanted) | set(self._backends)):
            tunnels = wanted.get(kind, [])
            try:
                if not tunnels:
                    await self._backends.pop(kind).stop()
                    continue
                backend = await self._backend(kind)
                for state in await backend.ensure(tunnels):
                    if not state.established:
                        log.debug("tunnel %s not established yet: %s", state.name, state.detail)
            except NetError as exc:
                failures.append((f"{kind} tunnels", exc.message))
        return failures

    async def _spec(
        self, spec: Obj, masters: dict[tuple[str, str, str], bytes]
    ) -> net_tunnels.TunnelSpec:
        ref = spec["keySecretRef"]
        where = (ref.get("namespace", "kosmos-system"), ref["name"], ref.get("key", "psk"))
        if where not in masters:
            secret = await self.host.get(SECRETS, where[1], where[0])
            masters[where] = keys.master(secret, where[2])
        return net_tunnels.TunnelSpec(
            name=spec["name"],
            local_address=spec["localAddress"],
            remote_address=spec["remoteAddress"],
            local_subnets=tuple(spec["localSubnets"]),
            remote_subnets=tuple(spec["remoteSubnets"]),
            psk=keys.pair_key(masters[where], tunnel_name(self.own_name), spec["name"]),
            local_id=spec.get("localID") or None,
            remote_id=spec.get("remoteID") or None,
            remote_public_key=spec.get("remotePublicKey") or None,
        )

    async def _backend(self, kind: str) -> net_tunnels.TunnelBackend:
        if kind not in self._backends:
            backend = await self._make(kind)
            await backend.start()
            self._backends[kind] = backend
        return self._backends[kind]

    async def _make(self, kind: str) -> net_tunnels.TunnelBackend:
        run_dir = self.run_dir / kind
        if kind == "wireguard":
            return wireguard.WireGuard(netns=self.netns, run_dir=run_dir)
        backend = await ipsec.choose_backend(self.ipsec_backend, self.netns)
        log.info("ipsec backend %s (asked for %s)", backend, self.ipsec_backend)
        return ipsec.StrongSwan(netns=self.netns, run_dir=run_dir, backend=backend)

    def public_key(self) -> str | None:
        """This node's WireGuard public key once its device runs (published on its ClusterNode)."""
        backend = self._backends.get("wireguard")
        return backend.public_key() if isinstance(backend, wireguard.WireGuard) else None

    async def stop(self) -> None:
        for kind in list(self._backends):
            await self._backends.pop(kind).stop()
