"""What runs a tenant's control plane: the interface the VirtualCluster controller drives.

``local`` (:mod:`kosmos.kubenest.local`) runs the components as processes on the operator's
machine; ``in-cluster`` (:mod:`kosmos.kubenest.incluster`) as workloads in the host cluster.
Both implement the same calls (``addresses``: what the tenant's certificates must name, asked
before they are made). They are level-based: ``ensure`` is called again and again until
``ready``, so it must return quickly (start what is missing, report what is pending) and be
idempotent; ``destroy`` is idempotent too (a tenant already gone is not an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from kosmos.api.objects import Obj
from kosmos.kube.client import Client
from kosmos.kubenest.pki import TenantPKI
from kosmos.kubenest.settings import Settings


class ProviderError(RuntimeError):
    """The control plane cannot be run (a binary missing, no free port...): the message says
    why, for the VirtualCluster's condition."""


@dataclass(frozen=True)
class ControlPlane:
    """``endpoint``: ``https://<advertise>:<port>``; ``message``: what is not ready yet (or
    why it failed), empty when ready; ``ports``: component -> port (``status.portMap``)."""

    endpoint: str
    ready: bool
    message: str = ""
    ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Addresses:
    """What a provider needs the tenant's certificates to name beyond the VirtualCluster's
    own addresses and ``--advertise-address``: the apiserver's (an in-cluster provider: its
    Service, the nodes its NodePort is reached on) and etcd's serving certificate's."""

    apiserver: tuple[str, ...] = ()
    etcd: tuple[str, ...] = ()


class Provider(Protocol):
    async def addresses(self, vc: Obj) -> Addresses:
        """Asked once, before the tenant's PKI is made; may create what decides them."""
        ...

    async def ensure(self, vc: Obj, pki: TenantPKI) -> ControlPlane:
        """Start (or adopt) the tenant's control plane; idempotent, quick."""
        ...

    async def destroy(self, vc: Obj) -> None:
        """Stop the tenant's control plane and drop its state; idempotent."""
        ...

    def tree_unsupported(self) -> str:
        """Why this provider cannot run a tenant's ClusterTree ("" when it can): asked
        before anything of the plugin is made, so a refusal leaves nothing behind."""
        ...

    async def ensure_tree(self, vc: Obj, owner: str) -> str:
        """Start (or adopt) the tenant's ClusterTree (``kosmos cluster-manager`` against the
        tenant, ``--owner owner``); "" when it runs, else what it waits for. ``destroy``
        stops it with the rest."""
        ...


def for_settings(settings: Settings, host: Client) -> Provider:
    """The provider ``--provider`` names; a :class:`ProviderError` for one this build lacks.
    ``host``: the operator's client (the in-cluster provider's workloads live there)."""
    if settings.provider == "local":
        from kosmos.kubenest.local import LocalProvider  # noqa: PLC0415 - local imports us

        return LocalProvider(settings)
    if settings.provider == "in-cluster":
        from kosmos.kubenest.incluster import InClusterProvider  # noqa: PLC0415 - imports us

        return InClusterProvider(settings, host)
    raise ProviderError(f"unknown tenant control-plane provider {settings.provider!r}")
