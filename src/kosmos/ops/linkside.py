"""What ``join --enable-link`` sets up for a member's agents, and ``unjoin`` takes down.

ClusterLink's control plane runs in the host (network-manager); what runs in a member is one
agent per node (a privileged hostNetwork DaemonSet) that talks to the **host** apiserver.
So a join creates, in the host, a ServiceAccount for that member's agents bound to the
``kosmos-agent`` ClusterRole (its NodeConfigs, ClusterNodes, Clusters) and to a Role that
names only that cluster's gateway Lease and the tunnel key Secrets, plus a token for it; and
in the member, a namespace, a Secret with a kubeconfig for that token, and the DaemonSet.
Everything is server-side applied (re-running converges) and removed by unjoin.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib

from kosmos.api import link, names
from kosmos.api import manifests as build
from kosmos.api.kubeconfig import with_token
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CLUSTERS,
    DAEMONSETS,
    NAMESPACES,
    ROLEBINDINGS,
    ROLES,
    SECRETS,
    SERVICEACCOUNTS,
    Resource,
)
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, KubeError, NotFound
from kosmos.ops import apply as applier
from kosmos.ops import rbac, rollout
from kosmos.ops.manifests import (
    DEFAULT_IMAGE_REPOSITORY,
    FIELD_MANAGER,
    IMAGE_PULL_POLICY,
    MANAGED_BY,
    PART_OF,
    default_version,
    labels,
    with_log_format,
)
from kosmos.ops.progress import Progress

AGENT = "kosmos-agent"
AGENT_KUBECONFIG = "kosmos-agent-kubeconfig"
NAMESPACE_TIMEOUT = 60.0
#: The agents' /healthz /readyz on the node's loopback (hostNetwork: one port per node).
HEALTH_PORT = 10263
Planned = tuple[Resource, Obj]


def account(cluster: str) -> str:
    return f"{AGENT}-{cluster}"


def _labels(cluster: str) -> dict[str, str]:
    return {**labels(AGENT), link.LABEL_CLUSTER: cluster}


def host_objects(cluster: str, key_secrets: list[str]) -> list[Planned]:
    """ServiceAccount, token Secret and RBAC of one member's agents, in the host."""
    ns, sa, own = names.SYSTEM_NAMESPACE, account(cluster), _labels(cluster)
    subjects = [build.service_account_subject(sa, ns)]
    token = build.metadata(f"{sa}-token", own, ns)
    token["annotations"] = {"kubernetes.io/service-account.name": sa}
    rules = rbac.agent_cluster_rules(link.GATEWAY_LEASE_PREFIX + cluster, key_secrets)
    return [
        (CLUSTERROLES, shared_role()),
        (SERVICEACCOUNTS, build.service_account(sa, ns, own)),
        (SECRETS, build.secret(token, secret_type="kubernetes.io/service-account-token")),
        (CLUSTERROLEBINDINGS, build.cluster_role_binding(sa, AGENT, subjects, own)),
        (ROLES, build.role(sa, ns, rules, own)),
        (ROLEBINDINGS, build.role_binding(sa, ns, sa, subjects, own)),
    ]


def shared_role() -> Obj:
    """The ``kosmos-agent`` ClusterRole every cluster's agents are bound to.

    One object for all clusters, so it carries no cluster's label: install (or the Helm
    chart) owns it and uninstall deletes it; unjoin leaves it.
    """
    return build.cluster_role(AGENT, rbac.AGENT_RULES, labels(AGENT))


async def ensure_shared_role(host: Client) -> None:
    """Create the agents' ClusterRole when no install made it; never take over one that exists.

    Applying it from ``join`` would make kosmosctl the owner of fields an installer set: with
    a Helm release, ``helm upgrade``'s server-side apply then fails on the conflict.
    """
    if await applier.get_or_none(host, CLUSTERROLES, AGENT) is None:
        with contextlib.suppress(AlreadyExists):
            await host.create(CLUSTERROLES, shared_role())


def agent_kubeconfig(server: str, ca: bytes, token: str, cluster: str) -> str:
    host = "kosmos-host"
    return with_token(server, ca, token, user=account(cluster), cluster=host, context=host)


def member_objects(
    cluster: str, namespace: str, kubeconfig: str, image: str, log_format: str
) -> list[Planned]:
    meta = build.metadata(AGENT_KUBECONFIG, _labels(cluster), namespace)
    return [
        (NAMESPACES, build.namespace(namespace, labels(PART_OF))),
        (SECRETS, build.secret(meta, string_data={"kubeconfig": kubeconfig})),
        (DAEMONSETS, member_daemonset(cluster, namespace, image, log_format)),
    ]


def member_daemonset(cluster: str, namespace: str, image: str, log_format: str) -> Obj:
    """A member's agents with join's ``--log-format`` (the host's: ``hostlink``)."""
    return with_log_format(daemonset(cluster, namespace, image), image, log_format)


def daemonset(cluster: str, namespace: str, image: str, *, in_cluster: bool = False) -> Obj:
    """One agent per node: hostNetwork and NET_ADMIN to program the node's kernel.

    ``in_cluster``: the agents run in the host itself and use their ServiceAccount (of the
    same namespace) instead of a kubeconfig for the host.
    """
    env = [
        {"name": "CLUSTER_NAME", "value": cluster},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    kubeconfig: list[str] = [] if in_cluster else ["--kubeconfig", "/etc/kosmos/kubeconfig"]
    mounts: list[Obj] = [
        {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
        {"name": "modules", "mountPath": "/lib/modules", "readOnly": True},
    ]
    volumes: list[Obj] = [
        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
        {"name": "modules", "hostPath": {"path": "/lib/modules"}},
    ]
    identity: Obj = {"serviceAccountName": account(cluster)} if in_cluster else {}
    if not in_cluster:
        mounts.insert(0, {"name": "kubeconfig", "mountPath": "/etc/kosmos", "readOnly": True})
        volumes.insert(0, {"name": "kubeconfig", "secret": {"secretName": AGENT_KUBECONFIG}})
    container = {
        "name": "agent",
        "image": image,
        "imagePullPolicy": IMAGE_PULL_POLICY,
        # args only: the image's entrypoint (tini -- kosmos) stays PID 1 and reaps children
        # (the agent runs ip, iptables, ipset, swanctl)
        "args": ["agent", *kubeconfig, f"--health-port={HEALTH_PORT}"],
        # Ready once its caches of the host's objects synced: an agent the host's RBAC
        # refuses (forbidden lists, in its log) stays unready, which join and status show.
        # The health server binds loopback; the pod shares the node's network namespace.
        "readinessProbe": {
            "httpGet": {"host": "127.0.0.1", "path": "/readyz", "port": HEALTH_PORT},
            "periodSeconds": 10,
        },
        "env": env,
        "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "volumeMounts": mounts,
    }
    pod = {
        **identity,
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "priorityClassName": "system-node-critical",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [{"operator": "Exists"}],
        "affinity": {"nodeAffinity": _not_on_leaf_or_excluded_nodes()},
        "containers": [container],
        "volumes": volumes,
    }
    return build.daemonset(
        build.metadata(AGENT, _labels(cluster), namespace),
        selector={"app.kubernetes.io/name": AGENT},
        pod_labels=_labels(cluster),
        pod_spec=pod,
    )


def _not_on_leaf_or_excluded_nodes() -> Obj:
    """Leaf nodes are not real nodes; nodes labelled kosmos.io/exclude opted out of the link."""
    absent = [
        {"key": names.LABEL_NODE, "operator": "DoesNotExist"},
        {"key": names.LABEL_EXCLUDE, "operator": "DoesNotExist"},
    ]
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": absent}]
        }
    }


async def _token(host: Client, cluster: str, timeout: float = 30.0) -> tuple[str, bytes]:
    """The agents' token and the host CA, once the token controller filled the Secret."""
    name = f"{account(cluster)}-token"
    for _ in range(int(timeout * 4)):
        data = (await host.get(SECRETS, name, names.SYSTEM_NAMESPACE)).get("data") or {}
        if data.get("token") and data.get("ca.crt"):
            return base64.b64decode(data["token"]).decode(), base64.b64decode(data["ca.crt"])
        await asyncio.sleep(0.25)
    raise TimeoutError(
        f"the token of ServiceAccount {account(cluster)} was not issued within {timeout:.0f}s"
    )


def image_of(repository: str | None, version: str | None = None) -> str:
    """The agents' image: the one install uses (``<repository>/kosmos:<version>``)."""
    repo = (repository or DEFAULT_IMAGE_REPOSITORY).rstrip("/")
    return f"{repo}/kosmos:{version or default_version()}"


def key_secrets(cluster: Obj) -> list[str]:
    """The Secrets this member's agents may read: the default tunnel key and the Cluster's own."""
    options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
    ref = (options.get("encryption") or {}).get("keySecretRef") or {}
    return sorted({link.DEFAULT_KEY_SECRET, *([ref["name"]] if ref.get("name") else [])})


async def join(
    host: Client,
    cluster: str,
    kubeconfig: str,
    *,
    namespace: str,
    repository: str | None,
    progress: Progress,
    log_format: str,
    server: str | None = None,
    version: str | None = None,
    wait_seconds: float = 0,
) -> None:
    """Set the member's agents up; on failure remove them and the Cluster, then raise.

    ``server``: the host apiserver as the member's nodes reach it, when that is not the
    address this client uses (a loopback address, a NAT, a private name). With
    ``wait_seconds`` the DaemonSet's pods must be Ready in time; a pod that cannot start
    (image not pulled, crash) fails the join at once, naming the reason.
    """
    member = Client(
        await kube_config.from_kubeconfig_text(cluster, kubeconfig, origin="--kubeconfig")
    )
    try:
        obj = await host.get(CLUSTERS, cluster)
        await set_up(
            host,
            member,
            cluster,
            namespace=namespace,
            image=image_of(repository, version),
            key_secrets=key_secrets(obj),
            progress=progress,
            log_format=log_format,
            server=server,
        )
        agents: list[rollout.Workload] = [(DAEMONSETS, namespace, AGENT)]
        await rollout.wait_in(member, cluster, agents, wait_seconds, progress)
    except (KubeError, TimeoutError, applier.WaitTimeout, rollout.RolloutFailed) as exc:
        with contextlib.suppress(KubeError):
            await tear_down(host, member, obj_or_name(cluster, namespace), progress)
            await host.delete(CLUSTERS, cluster, propagation="Background")
        raise LinkSetupFailed(
            f"cluster {cluster}: setting up the ClusterLink agents failed ({exc}); "
            "the join was rolled back"
        ) from exc
    finally:
        await member.close()


class LinkSetupFailed(Exception):
    """The member-side agents could not be set up (the join has been rolled back)."""


def obj_or_name(cluster: str, namespace: str) -> Obj:
    """Enough of a Cluster for ``tear_down`` when the object itself could not be read."""
    return {
        "metadata": {"name": cluster},
        "spec": {"namespace": namespace, "clusterLinkOptions": {"enable": True}},
    }


async def member_client(host: Client, cluster: Obj, *, linked_only: bool = True) -> Client | None:
    """A client for a member from its kubeconfig Secret (None: unreadable, or not linked
    while ``linked_only``)."""
    spec = cluster.get("spec", {})
    if linked_only and not (spec.get("clusterLinkOptions") or {}).get("enable", False):
        return None
    try:
        if spec.get("kubeconfig"):
            text = base64.b64decode(spec["kubeconfig"]).decode()
        else:
            ref = spec.get("kubeconfigSecretRef") or {}
            secret = await host.get(
                SECRETS, ref.get("name", ""), ref.get("namespace", names.SYSTEM_NAMESPACE)
            )
            text = base64.b64decode(
                secret["data"][ref.get("key", names.KUBECONFIG_SECRET_KEY)]
            ).decode()
        config = await kube_config.from_kubeconfig_text(
            cluster["metadata"]["name"], text, origin="Secret"
        )
    except (KubeError, KeyError, ValueError):
        return None
    return Client(config)


async def set_up(
    host: Client,
    member: Client,
    cluster: str,
    *,
    namespace: str,
    image: str,
    key_secrets: list[str],
    progress: Progress,
    log_format: str,
    server: str | None = None,
) -> None:
    """Host-side identity and member-side agents of one member (idempotent)."""
    for resource, body in host_objects(cluster, key_secrets):
        if resource == CLUSTERROLES:
            await ensure_shared_role(host)
            continue
        await host.apply(resource, body, field_manager=FIELD_MANAGER, force=True)
    token, ca = await _token(host, cluster)
    kubeconfig = agent_kubeconfig(server or host.config.server, ca, token, cluster)
    for resource, body in member_objects(cluster, namespace, kubeconfig, image, log_format):
        if resource == NAMESPACES and await applier.get_or_none(member, NAMESPACES, namespace):
            continue  # not ours: it stays unlabelled, so unjoin leaves it
        await member.apply(resource, body, field_manager=FIELD_MANAGER, force=True)
    progress(f"{cluster}: ClusterLink agents (DaemonSet {namespace}/{AGENT}) set up in the member")


async def tear_down(host: Client, member: Client | None, cluster: Obj, progress: Progress) -> None:
    """Remove what ``set_up`` made; a member that cannot be reached is reported, not fatal."""
    name = cluster["metadata"]["name"]
    namespace = cluster.get("spec", {}).get("namespace") or names.SYSTEM_NAMESPACE
    if member is not None:
        try:
            for resource, obj in ((DAEMONSETS, AGENT), (SECRETS, AGENT_KUBECONFIG)):
                with contextlib.suppress(NotFound):
                    await member.delete(resource, obj, namespace, propagation="Background")
            await delete_own_namespace(member, namespace)
            progress(f"{name}: ClusterLink agents removed from the member")
        except KubeError as exc:
            progress(
                f"{name}: could not remove the agents from the member ({exc}); "
                f"delete DaemonSet {namespace}/{AGENT} there"
            )
    sa = account(name)
    for resource, obj, ns in (
        (ROLEBINDINGS, sa, names.SYSTEM_NAMESPACE),
        (ROLES, sa, names.SYSTEM_NAMESPACE),
        (CLUSTERROLEBINDINGS, sa, None),
        (SECRETS, f"{sa}-token", names.SYSTEM_NAMESPACE),
        (SERVICEACCOUNTS, sa, names.SYSTEM_NAMESPACE),
    ):
        with contextlib.suppress(NotFound):
            await host.delete(resource, obj, ns)


async def delete_own_namespace(member: Client, namespace: str) -> None:
    """The member namespace join created (labelled by kosmosctl); one it found stays."""
    with contextlib.suppress(NotFound):
        current = await member.get(NAMESPACES, namespace)
        if (current["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == (
            MANAGED_BY
        ):
            await member.delete(NAMESPACES, namespace, propagation="Background")
            # gone before we return: a join right after would find it Terminating
            await applier.wait_gone(member, [(NAMESPACES, namespace, None)], NAMESPACE_TIMEOUT)


async def remove_all(host: Client, progress: Progress) -> None:
    """Every agent identity left in the host (uninstall): per-member objects and the role."""
    selector = f"app.kubernetes.io/name={AGENT}"
    for resource, ns in (
        (ROLEBINDINGS, names.SYSTEM_NAMESPACE),
        (ROLES, names.SYSTEM_NAMESPACE),
        (CLUSTERROLEBINDINGS, None),
        (SECRETS, names.SYSTEM_NAMESPACE),
        (SERVICEACCOUNTS, names.SYSTEM_NAMESPACE),
    ):
        with contextlib.suppress(NotFound):
            for item in (await host.list(resource, ns, label_selector=selector)).items:
                with contextlib.suppress(NotFound):
                    await host.delete(resource, item["metadata"]["name"], ns)
    with contextlib.suppress(NotFound):
        await host.delete(CLUSTERROLES, AGENT)
        progress(f"clusterrole.rbac.authorization.k8s.io/{AGENT} deleted")
