"""What every part of one agent shares: who it is, its clients, its caches and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.informer import Informer
from kosmos.kube.manager import Manager
from kosmos.net.ipsec import BackendChoice
from kosmos.net.sync import Dataplane


@dataclass(frozen=True)
class Settings:
    cluster: str
    node: str
    netns: str | None = None
    #: seconds between full passes that repair drift made outside the agent
    repair_period: float = 30.0
    #: gateway election: lease duration / renew deadline / retry period (seconds)
    lease_duration: float = 3.0
    renew_deadline: float = 2.0
    retry_period: float = 0.5
    gateway_candidate: bool = True
    #: IPsec backend: kernel (xfrm), libipsec (userspace ESP over TUN) or auto (kernel if the
    #: kernel has ESP, else libipsec)
    ipsec_backend: BackendChoice = "auto"
    run_dir: Path = field(default_factory=lambda: Path("/var/lib/kosmos-agent"))

    @property
    def name(self) -> str:
        """The node's ClusterNode and NodeConfig name."""
        return f"{self.cluster}-{self.node}"


@dataclass
class AgentState:
    settings: Settings
    manager: Manager
    dataplane: Dataplane
    nodeconfigs: Informer
    clusternodes: Informer
    clusters: Informer

    @property
    def host(self) -> Client:
        return self.manager.client(HOST)

    def nodeconfig(self) -> Obj | None:
        return self.nodeconfigs.store.get(self.settings.name)

    def clusternode(self) -> Obj | None:
        return self.clusternodes.store.get(self.settings.name)

    def cluster(self) -> Obj | None:
        return self.clusters.store.get(self.settings.cluster)

    @property
    def secrets_namespace(self) -> str:
        return names.SYSTEM_NAMESPACE
