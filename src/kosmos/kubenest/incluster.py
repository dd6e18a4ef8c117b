"""The in-cluster provider: a tenant's control plane as workloads in the host cluster.

What it makes is :mod:`kosmos.kubenest.workloads`' (Services, a Secret of files, etcd's
StatefulSet, the Deployments, a PodDisruptionBudget) in the VirtualCluster's namespace.
The order matters once: ``addresses`` (asked before the tenant's PKI exists) creates the
Services, so the certificates can name the apiserver's and etcd's ClusterIPs and the nodes
the apiserver's NodePort is reached on.

**The endpoint** is ``https://<address>:<NodePort>``: ``--advertise-address`` when it is not
loopback (a load balancer or VIP in front of the nodes), else a host node's InternalIP,
chosen once and kept in the apiserver Service's annotation ``kosmos.io/advertise-address``.
Candidates are the nodes a control-plane pod may run on (:func:`workloads.placement` and
``--control-plane-node-selector``: not kwok's, not leaf nodes) that are Ready, control-plane
nodes first (no VirtualCluster borrows them), then by name; all of them are in the
apiserver's certificate. A node lent to a tenant leaves the host and its NodePort with it,
hence control-plane nodes first: run the operator with a node selector (or an advertise
address) when the host has none that runs pods.

``ensure`` applies everything (server-side apply, idempotent) and reports ready when the
apiserver Deployment is Available and ``/readyz`` answers the tenant's admin through the
endpoint; otherwise the message names what is pending (a workload not ready, a pod's waiting
reason). ``destroy`` deletes what carries the tenant's labels; owner references to the
VirtualCluster let the garbage collector finish the job if the operator does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Mapping

from cryptography import x509

from kosmos.api import names
from kosmos.api.addresses import join_host_port
from kosmos.api.objects import Obj, annotations_of, labels_of, name_of, namespace_of, node_ready
from kosmos.api.resources import (
    DEPLOYMENTS,
    NODES,
    PODDISRUPTIONBUDGETS,
    PODS,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
)
from kosmos.api.selectors import selector_matches
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, KubeError, NotFound
from kosmos.kubenest import components, phases, pool, workloads
from kosmos.kubenest.kubeconfig import admin_kubeconfig
from kosmos.kubenest.pki import ADMIN, APISERVER, CA, ETCD_SERVER, TenantPKI
from kosmos.kubenest.provider import Addresses, ControlPlane, ProviderError
from kosmos.kubenest.settings import Settings

log = logging.getLogger(__name__)
ANNOTATION_ADVERTISE = "kosmos.io/advertise-address"
READY_TIMEOUT = 2.0
#: an object applied with the same body this recently is not applied again: while a control
#: plane starts, ``ensure`` runs every second, and a no-op apply is still a write request
REAPPLY_AFTER = 25.0
#: workloads started at once; the others once the apiserver is Available
FIRST = ("etcd", "apiserver")
#: what ``destroy`` deletes, workloads first (their pods stop using the rest)
OWNED: tuple[Resource, ...] = (
    DEPLOYMENTS,
    STATEFULSETS,
    PODDISRUPTIONBUDGETS,
    SERVICES,
    SECRETS,
)


def candidates(nodes: list[Obj], node_selector: Mapping[str, str]) -> list[str]:
    """InternalIPs of the Ready nodes control-plane pods may run on, control-plane first."""
    wanted = {"matchLabels": dict(node_selector)}
    usable = [
        n
        for n in nodes
        if not any(k in labels_of(n) for k in workloads.NOT_RUNNABLE)
        and selector_matches(wanted, labels_of(n))
        and node_ready(n)
        and pool.node_ip(n)
    ]
    usable.sort(key=lambda n: (not pool.control_plane(n), name_of(n)))
    return [pool.node_ip(n) for n in usable]


def san_addresses(certificate: x509.Certificate) -> set[str]:
    """The IPs and DNS names a serving certificate names."""
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return ips | set(sans.get_values_for_type(x509.DNSName))


def cluster_ip(service: Obj) -> str:
    return str((service.get("spec") or {}).get("clusterIP") or "")


def node_port(service: Obj) -> int:
    ports = (service.get("spec") or {}).get("ports") or [{}]
    return int(ports[0].get("nodePort") or 0)


class InClusterProvider:
    """Runs tenants' control planes as pods of the host (``host``: the operator's client)."""

    def __init__(self, settings: Settings, host: Client) -> None:
        self.settings = settings
        self.host = host
        self.images = workloads.images(settings.image_repository)
        self._readyz: dict[str, tuple[str, Client]] = {}  # vc key -> (endpoint, client)
        #: (vc key, kind, name) -> (digest of the body applied, when)
        self._applied: dict[tuple[str, str, str], tuple[str, float]] = {}

    # -- addresses -----------------------------------------------------------------------

    async def addresses(self, vc: Obj) -> Addresses:
        try:
            services = await self._services(vc)
            nodes = (await self.host.list(NODES)).items
        except KubeError as exc:
            raise ProviderError(f"the tenant's Services: {exc}") from exc
        namespace = namespace_of(vc)
        api = [cluster_ip(services["apiserver"]), *_service_names("apiserver", namespace)]
        if not components.is_loopback(self.settings.advertise_address):
            api.append(self.settings.advertise_address)
        api += candidates(nodes, dict(self.settings.node_selector))
        etcd = [cluster_ip(services["etcd"]), *_service_names("etcd", namespace)]
        return Addresses(tuple(a for a in api if a), tuple(a for a in etcd if a))

    async def _services(self, vc: Obj) -> dict[str, Obj]:
        """The Services, created once (their ClusterIPs and NodePorts are then fixed); the
        coredns one gets TCP on its UDP NodePort once the host chose that."""
        found: dict[str, Obj] = {}
        for body in workloads.services(vc):
            name = body["metadata"]["name"]
            try:
                found[name] = await self.host.get(SERVICES, name, namespace_of(vc))
            except NotFound:
                with contextlib.suppress(AlreadyExists):
                    await self.host.create(SERVICES, body)
                found[name] = await self.host.get(SERVICES, name, namespace_of(vc))
            _check_ours(found[name], vc)
        dns = found["coredns"]
        if len((dns.get("spec") or {}).get("ports") or []) < 2 and node_port(dns):
            ports = workloads.dns_tcp(node_port(dns))
            found["coredns"] = await self.host.patch(
                SERVICES, "coredns", {"spec": {"ports": ports}}, namespace=namespace_of(vc)
            )
        return found

    # -- ensure --------------------------------------------------------------------------

    async def ensure(self, vc: Obj, pki: TenantPKI) -> ControlPlane:
        try:
            return await self._ensure(vc, pki)
        except KubeError as exc:
            raise ProviderError(f"host cluster: {exc}") from exc

    async def _ensure(self, vc: Obj, pki: TenantPKI) -> ControlPlane:
        services = await self._services(vc)
        api_port = node_port(services["apiserver"])
        if not api_port:
            raise ProviderError("Service apiserver has no NodePort (the host gave none)")
        advertise = await self._advertise(vc, services["apiserver"], pki)
        plan = workloads.Plan(
            apiserver_ip=cluster_ip(services["apiserver"]),
            etcd_ip=cluster_ip(services["etcd"]),
            apiserver_port=api_port,
            advertise=advertise,
            images=self.images,
            node_selector=dict(self.settings.node_selector),
        )
        _check_names(vc, pki, plan)
        current = await self._current(vc)  # before applying: never take over another's
        stages = await asyncio.to_thread(workloads.stages)
        entries = workloads.files(vc, plan, pki, stages)
        # the apiserver's clients start once it is up: kube-controller-manager exits when
        # it cannot read the request-header CA, and its restarts back off (10 s, 20 s...)
        api_up = _ready_count(current["apiserver"]) > 0
        for resource, body in (
            (SECRETS, workloads.secret(vc, entries)),
            (PODDISRUPTIONBUDGETS, workloads.budget(vc)),
            *(
                (_resource(b), b)
                for b in workloads.workloads(vc, plan, pki, entries)
                if api_up or b["metadata"]["name"] in FIRST or current[b["metadata"]["name"]]
            ),
        ):
            await self._apply(vc, resource, body, exists=current.get(name_of(body), True))
        url = f"https://{join_host_port(advertise, api_port)}"
        ports = {components.APISERVER: api_port, components.COREDNS: node_port(services["coredns"])}
        pending = await self._pending(vc, current)
        problem = None if pending.get("apiserver") else await self._ready(vc, url, pki)
        if problem is None and "apiserver" not in pending:
            return ControlPlane(url, True, "", ports)
        waits = "; ".join(f"{k}: {v}" for k, v in pending.items())
        message = "; ".join(
            m for m in (waits, f"apiserver not ready: {problem}" if problem else "") if m
        )
        return ControlPlane(url, False, message, ports)

    async def _apply(self, vc: Obj, resource: Resource, body: Obj, *, exists: object) -> None:
        """Server-side apply, unless this body was applied less than REAPPLY_AFTER ago and
        the object is still there (``exists``: the workload read this pass, True when not
        read)."""
        key = (phases.vc_key(vc), str(body["kind"]), name_of(body))
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        last = self._applied.get(key)
        now = time.monotonic()
        if exists and last and last[0] == digest and now - last[1] < REAPPLY_AFTER:
            return
        await self.host.apply(
            resource, body, field_manager=names.FIELD_MANAGER_KUBENEST, force=True
        )
        self._applied[key] = (digest, now)

    async def _advertise(self, vc: Obj, service: Obj, pki: TenantPKI) -> str:
        """The endpoint's address: the operator's, else the node kept on the Service, else
        the first candidate the certificate names (then kept)."""
        if not components.is_loopback(self.settings.advertise_address):
            return self.settings.advertise_address
        named = san_addresses(pki.certificate(APISERVER))
        kept = annotations_of(service).get(ANNOTATION_ADVERTISE, "")
        if kept in named:
            return kept
        nodes = (await self.host.list(NODES)).items
        usable = [a for a in candidates(nodes, dict(self.settings.node_selector)) if a in named]
        if not usable:
            raise ProviderError(
                "no Ready host node the control plane may run on is named by the tenant's "
                "apiserver certificate (nodes labelled kwok or leaf are skipped; see "
                "--control-plane-node-selector); delete Secret "
                f"{phases.cert_secret(vc)} to issue one for today's nodes"
            )
        patch = {"metadata": {"annotations": {ANNOTATION_ADVERTISE: usable[0]}}}
        await self.host.patch(SERVICES, "apiserver", patch, namespace=namespace_of(vc))
        return usable[0]

    async def _current(self, vc: Obj) -> dict[str, Obj | None]:
        """workload name -> the host's object (None: not there yet); a ProviderError when
        one of those names is taken by something that is not this tenant's."""
        found: dict[str, Obj | None] = {}
        for component, name in workloads.WORKLOADS.items():
            resource = STATEFULSETS if component == components.ETCD else DEPLOYMENTS
            try:
                found[name] = obj = await self.host.get(resource, name, namespace_of(vc))
            except NotFound:
                found[name] = None
                continue
            _check_ours(obj, vc)
        return found

    async def _pending(self, vc: Obj, current: Mapping[str, Obj | None]) -> dict[str, str]:
        """workload -> why it is not ready (absent when it is), from ``current``."""
        pending: dict[str, str] = {}
        for name, obj in current.items():
            if obj is None:
                pending[name] = "starting" if name in FIRST else "waits for the apiserver"
            elif not _ready_count(obj):
                pending[name] = "0/1 ready"
        if pending:
            for name, why in (await self._pod_problems(vc)).items():
                if name in pending:
                    pending[name] += f" ({why})"
        return pending

    async def _pod_problems(self, vc: Obj) -> dict[str, str]:
        """workload -> a pod's waiting reason or why it is unschedulable."""
        selector = f"{names.LABEL_VIRTUAL_CLUSTER}={phases.label_value(vc)}"
        pods = (await self.host.list(PODS, namespace_of(vc), label_selector=selector)).items
        problems: dict[str, str] = {}
        for pod in pods:
            component = labels_of(pod).get(names.LABEL_TENANT_COMPONENT, "")
            why = _pod_problem(pod)
            if why and component in workloads.WORKLOADS:
                problems[workloads.WORKLOADS[component]] = why
        return problems

    async def _ready(self, vc: Obj, url: str, pki: TenantPKI) -> str | None:
        """None when ``/readyz`` answers the tenant's admin through ``url``; else why not."""
        try:
            client = await self._client(vc, url, pki)
            await client.get_raw("/readyz", timeout=READY_TIMEOUT)
        except KubeError as exc:
            return str(exc)[:300]
        return None

    async def _client(self, vc: Obj, url: str, pki: TenantPKI) -> Client:
        key = phases.vc_key(vc)
        cached = self._readyz.get(key)
        if cached is not None and cached[0] == url:
            return cached[1]
        await self._forget(key)
        text = admin_kubeconfig(url, pki.files[f"{CA}.crt"], *pki.pair(ADMIN), name_of(vc))
        config = await kube_config.from_kubeconfig_text(f"tenant {key}", text)
        client = Client(config)
        self._readyz[key] = (url, client)
        return client

    async def _forget(self, key: str) -> None:
        cached = self._readyz.pop(key, None)
        if cached is not None:
            await cached[1].close()

    # -- destroy -------------------------------------------------------------------------

    def tree_unsupported(self) -> str:
        """Not yet: the tenant's ClusterTree would be a Deployment of the Kosmos image whose
        kubelet endpoint the tenant's apiserver reaches; the plugin needs the local provider."""
        return (
            "the clustertree plugin (k8s-in-k8s) needs --provider local for now: "
            "the in-cluster provider does not run a tenant's cluster-manager yet"
        )

    async def ensure_tree(self, vc: Obj, owner: str) -> str:
        raise ProviderError(self.tree_unsupported())

    async def destroy(self, vc: Obj) -> None:
        namespace = namespace_of(vc)
        await self._forget(phases.vc_key(vc))
        self._applied = {k: v for k, v in self._applied.items() if k[0] != phases.vc_key(vc)}
        selector = workloads.selector(vc)
        try:
            for resource in OWNED:
                for obj in (
                    await self.host.list(resource, namespace, label_selector=selector)
                ).items:
                    if names.LABEL_TENANT_COMPONENT not in labels_of(obj):
                        continue  # the fakes ignore selectors; the apiserver does not
                    with contextlib.suppress(NotFound):
                        await self.host.delete(
                            resource, name_of(obj), namespace, propagation="Background"
                        )
        except KubeError as exc:
            raise ProviderError(f"deleting the control plane's objects: {exc}") from exc


def _service_names(name: str, namespace: str) -> list[str]:
    return [
        name,
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.cluster.local",
    ]


def _check_ours(obj: Obj, vc: Obj) -> None:
    """An object of one of our names that is not this tenant's is a conflict, not ours to
    take (the namespace is the VirtualCluster's, but users may have put things there)."""
    if labels_of(obj).get(names.LABEL_VIRTUAL_CLUSTER) != phases.label_value(vc):
        raise ProviderError(
            f"{obj.get('kind') or 'object'} {namespace_of(vc)}/{name_of(obj)} exists and is "
            "not this virtual "
            "cluster's (label kosmos.io/virtual-cluster): remove it or use another namespace"
        )


def _check_names(vc: Obj, pki: TenantPKI, plan: workloads.Plan) -> None:
    """The certificates made earlier must name today's addresses (a Service recreated with
    another ClusterIP, say): TLS would fail with a less helpful error."""
    missing = [
        a
        for a in (plan.advertise, plan.apiserver_ip)
        if a not in san_addresses(pki.certificate(APISERVER))
    ]
    if plan.etcd_ip not in san_addresses(pki.certificate(ETCD_SERVER)):
        missing.append(f"{plan.etcd_ip} (etcd)")
    if missing:
        raise ProviderError(
            f"the tenant's certificates do not name {', '.join(missing)}: delete Secret "
            f"{phases.cert_secret(vc)} to issue new ones (the control plane restarts with them)"
        )


def _ready_count(obj: Obj | None) -> int:
    """Ready pods of a StatefulSet, available ones of a Deployment."""
    status = (obj or {}).get("status") or {}
    return int(
        status.get(
            "readyReplicas" if obj and obj.get("kind") == "StatefulSet" else "availableReplicas"
        )
        or 0
    )


def _resource(body: Obj) -> Resource:
    return STATEFULSETS if body["kind"] == "StatefulSet" else DEPLOYMENTS


def _pod_problem(pod: Obj) -> str:
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"unschedulable: {condition.get('message') or condition.get('reason')}"[:200]
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason and reason != "ContainerCreating":
            return f"{reason}: {waiting.get('message') or ''}".strip(": ")[:200]
        last = (container.get("lastState") or {}).get("terminated") or {}
        if last:
            return f"restarted, last exit {last.get('exitCode')} ({last.get('reason') or ''})"
    return ""
