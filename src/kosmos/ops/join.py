"""Joining a member cluster to Kosmos, and removing it again.

A join checks everything before it creates anything — that the member answers, that the
credentials have the rights Kosmos needs, that Kosmos is installed, and that the Cluster
validates (server-side dry run) — then creates the credentials Secret and the Cluster,
rolling the Secret back if the Cluster cannot be created. The Secret is owned by the Cluster,
so deleting the Cluster (unjoin) garbage-collects it. With ClusterLink the member's agents
are set up too (:mod:`kosmos.ops.linkside`). Re-running a join with the same credentials
converges the member's Kosmos pods (image, ``--log-format``) and leaves the rest as it is.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time

from kosmos.api import link, names
from kosmos.api.cluster import LeafModel
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERS,
    DAEMONSETS,
    LEASES,
    NAMESPACES,
    NODES,
    SECRETS,
    SELF_SUBJECT_ACCESS_REVIEWS,
)
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.ops import apply as applier
from kosmos.ops import linkside, mcsdns_member, probeside, rollout, waiting
from kosmos.ops.errors import OperationError
from kosmos.ops.host import Host
from kosmos.ops.manifests import FIELD_MANAGER
from kosmos.ops.membership import (
    JoinOptions,
    cluster_object,
    leaf_models_one_to_one,
    parse_leaf_model,
    required_rights,
    same_credentials,
    secret_name,
    secret_object,
)
from kosmos.ops.progress import Progress


class Refused(OperationError):
    """A clear, one-line refusal: the join or unjoin changed nothing it did not undo."""


async def join_member(
    hosts: Host,
    options: JoinOptions,
    kubeconfig: str,
    wait_seconds: int,
    progress: Progress,
) -> str:
    """Check, then join one member (idempotent); the one code path of every join.

    ``kubeconfig`` is the member's flattened kubeconfig text. Returns the one-line outcome;
    raises ``Refused`` or ``KubeError``.
    """
    name = options.name
    member = Client(await kube_config.from_kubeconfig_text(name, kubeconfig, origin="--kubeconfig"))
    try:  # one member client for the whole join, closed once at its end
        leaf_models = await _check_member(options, member, progress)
        host = await hosts.client()
        await _check_installed(host)
        existing = await _existing(host, name)
        if existing is not None:
            joined, credentials = existing
            if same_credentials(credentials, kubeconfig):
                if options.enable_link and _linked(joined):  # converge (an image, --log-format)
                    await _converge_agents(options, joined, member, wait_seconds, progress)
                if options.enable_tree and options.in_cluster:  # converge (an upgrade, an image)
                    await _set_up_member_pods(
                        host, options, member, wait_seconds, progress, joined=True
                    )
                return f"cluster {name} is already joined"
            raise Refused(
                f"cluster {name} is already joined with another kubeconfig; "
                f"`kosmosctl unjoin cluster --name {name}` first"
            )
        cluster = cluster_object(options, leaf_models)
        await host.create(CLUSTERS, cluster, dry_run=True)  # validation before any write
        await _create(host, cluster, kubeconfig, progress)
        if options.enable_link:
            await _set_up_link(host, options, kubeconfig, wait_seconds, progress)
        if options.enable_tree and options.in_cluster:
            await _set_up_member_pods(host, options, member, wait_seconds, progress)
        await _wait_reported(host, options, wait_seconds, progress)
        return f"cluster {name} joined"
    finally:
        await member.close()


async def _check_member(
    options: JoinOptions, member: Client, progress: Progress
) -> list[LeafModel] | None:
    """The member answers and grants what Kosmos needs; returns the Cluster's leaf models."""
    name = options.name
    version = (await member.get_raw("/version"))["gitVersion"]
    progress(f"{name}: reachable, Kubernetes {version}")
    await _check_rights(member, name, required_rights(options.enable_link))
    leaf_models = parse_leaf_model(options.leaf_model)
    if leaf_models == []:
        leaf_models = leaf_models_one_to_one(await _join_labelled_nodes(member, name))
    return leaf_models


async def _set_up_link(
    host: Client, options: JoinOptions, kubeconfig: str, wait_seconds: int, progress: Progress
) -> None:
    """The member's ClusterLink agents; on failure the Cluster is removed again."""
    try:
        await linkside.join(
            host,
            options.name,
            kubeconfig,
            namespace=options.namespace,
            repository=options.image_repository,
            version=options.version,
            progress=progress,
            log_format=options.log_format,
            server=options.link_apiserver,
            wait_seconds=wait_seconds,
        )
    except linkside.LinkSetupFailed as exc:
        raise Refused(str(exc)) from exc


def _linked(cluster: Obj) -> bool:
    return bool((cluster.get("spec", {}).get("clusterLinkOptions") or {}).get("enable"))


async def _converge_agents(
    options: JoinOptions, cluster: Obj, member: Client, wait_seconds: int, progress: Progress
) -> None:
    """A linked member joined before: its agents' DaemonSet re-applied (image, ``--log-format``).

    Only the DaemonSet, in the namespace the Cluster names (where their kubeconfig Secret
    is): their identity and kubeconfig stay as the first join made them, so a re-run without
    ``--link-apiserver`` cannot point working agents at an address their nodes do not reach.
    A failure leaves the join as it is (nothing is rolled back)."""
    name = options.name
    namespace = cluster.get("spec", {}).get("namespace") or names.SYSTEM_NAMESPACE
    image = linkside.image_of(options.image_repository, options.version)
    body = linkside.member_daemonset(name, namespace, image, options.log_format)
    try:
        await member.apply(DAEMONSETS, body, field_manager=FIELD_MANAGER, force=True)
        progress(f"{name}: ClusterLink agents (DaemonSet {namespace}/{linkside.AGENT}) converged")
        agents: list[rollout.Workload] = [(DAEMONSETS, namespace, linkside.AGENT)]
        await rollout.wait_in(member, name, agents, wait_seconds, progress)
    except (KubeError, rollout.RolloutFailed) as exc:
        raise Refused(
            f"cluster {name}: converging its ClusterLink agents failed ({exc}); "
            "the join itself is unchanged: re-run it"
        ) from exc


async def _set_up_member_pods(
    host: Client,
    options: JoinOptions,
    member: Client,
    wait_seconds: int,
    progress: Progress,
    *,
    joined: bool = False,
) -> None:
    """The member's Kosmos pods: the endpoint prober and (``mcs_dns``) kosmos-coredns. On
    failure they are removed, and a new join is rolled back (agents, Cluster); a member
    ``joined`` before keeps its join and is told to re-run it."""
    name = options.name
    try:
        await probeside.prepare_member(member, options.namespace)
        await probeside.set_up(
            member,
            name,
            namespace=options.namespace,
            image=linkside.image_of(options.image_repository, options.version),
            placement=options.placement(),
            log_format=options.log_format,
            progress=progress,
        )
        if options.mcs_dns:
            await mcsdns_member.set_up(
                member,
                name,
                namespace=options.namespace,
                repository=options.image_repository,
                version=options.version,
                placement=options.placement(),
                annotations=dict(options.pod_annotations),
                log_format=options.log_format,
                wait_seconds=wait_seconds,
                progress=progress,
            )
    except (KubeError, TimeoutError, applier.WaitTimeout, rollout.RolloutFailed) as exc:
        await probeside.tear_down(member, name, options.namespace, progress)
        await mcsdns_member.tear_down(member, name, options.namespace, progress)
        if joined:
            raise Refused(
                f"cluster {name}: setting up its Kosmos pods (endpoint prober, kosmos-coredns) "
                f"failed ({exc}); they were removed, the join itself is unchanged: re-run it"
            ) from exc
        if options.enable_link:
            await linkside.tear_down(
                host, member, linkside.obj_or_name(name, options.namespace), progress
            )
        with contextlib.suppress(KubeError):
            await host.delete(CLUSTERS, name, propagation="Background")
        raise Refused(
            f"cluster {name}: setting up its Kosmos pods (endpoint prober, kosmos-coredns) "
            f"failed ({exc}); the join was rolled back"
        ) from exc


async def _wait_reported(
    host: Client, options: JoinOptions, wait_seconds: int, progress: Progress
) -> None:
    """Wait for the running controllers to report on the new member (``--wait``)."""
    if options.enable_tree:
        await waiting.wait_condition(
            host,
            options.name,
            wait_seconds,
            progress,
            controller="cluster-manager",
            condition="Ready",
        )
    if options.enable_link:
        await waiting.wait_condition(
            host,
            options.name,
            wait_seconds,
            progress,
            controller="network-manager",
            condition="CIDRsDiscovered",
            report_false=True,
        )


async def _check_rights(
    member: Client, name: str, rights: tuple[tuple[str, str, str], ...]
) -> None:
    async def allowed(group: str, resource: str, verb: str) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"group": group, "resource": resource, "verb": verb}},
        }
        result = await member.create(SELF_SUBJECT_ACCESS_REVIEWS, review)
        return bool(result.get("status", {}).get("allowed"))

    verdicts = await asyncio.gather(*(allowed(*right) for right in rights))
    missing = [
        f"{verb} {res}" for (_, res, verb), ok in zip(rights, verdicts, strict=True) if not ok
    ]
    if missing:
        raise Refused(
            f"cluster {name}: the kubeconfig lacks rights Kosmos needs: {', '.join(missing)}"
        )


async def _join_labelled_nodes(member: Client, name: str) -> list[str]:
    nodes = await member.list(NODES, label_selector=f"{names.LABEL_JOIN}=true")
    if not nodes.items:
        raise Refused(
            f"cluster {name}: --leaf-model one-to-one needs member nodes labelled "
            f"{names.LABEL_JOIN}=true"
        )
    return sorted(n["metadata"]["name"] for n in nodes.items)


async def _check_installed(host: Client) -> None:
    try:
        await host.resource_for(names.API_VERSION, "Cluster")
        await host.get(NAMESPACES, names.SYSTEM_NAMESPACE)
    except (NotFound, KubeError) as exc:
        if (
            isinstance(exc, KubeError)
            and not isinstance(exc, NotFound)
            and "not served" not in str(exc)
        ):
            raise
        raise Refused("Kosmos is not installed in the host: run `kosmosctl install` first") from exc


async def _existing(host: Client, name: str) -> tuple[Obj, str] | None:
    """A joined Cluster and the kubeconfig it uses, or None when it is not joined."""
    try:
        cluster = await host.get(CLUSTERS, name)
    except NotFound:
        return None
    spec = cluster.get("spec", {})
    if spec.get("kubeconfig"):
        return cluster, base64.b64decode(spec["kubeconfig"]).decode()
    ref = spec.get("kubeconfigSecretRef") or {}
    try:
        secret = await host.get(SECRETS, ref.get("name", ""), ref.get("namespace"))
    except NotFound:
        return cluster, ""
    data = secret.get("data", {}).get(ref.get("key", names.KUBECONFIG_SECRET_KEY), "")
    return cluster, base64.b64decode(data).decode()


async def _create(host: Client, cluster: Obj, kubeconfig: str, progress: Progress) -> None:
    name = cluster["metadata"]["name"]
    secret = secret_object(name, kubeconfig)
    await host.apply(SECRETS, secret, field_manager=FIELD_MANAGER, force=True)
    try:
        created = await host.create(CLUSTERS, cluster)
    except KubeError:
        await host.delete(SECRETS, secret_name(name), names.SYSTEM_NAMESPACE)
        raise
    owner = {
        "apiVersion": names.API_VERSION,
        "kind": "Cluster",
        "name": name,
        "uid": created["metadata"]["uid"],
    }
    await host.patch(
        SECRETS,
        secret_name(name),
        {"metadata": {"ownerReferences": [owner]}},
        namespace=names.SYSTEM_NAMESPACE,
    )
    progress(f"{name}: Secret {names.SYSTEM_NAMESPACE}/{secret_name(name)} and Cluster created")


async def unjoin_member(
    hosts: Host, name: str, wait_seconds: int, force: bool, progress: Progress
) -> str:
    """Delete a member's Cluster and wait for the controllers' finalizers (idempotent)."""
    host = await hosts.client()
    try:
        cluster = await host.get(CLUSTERS, name)
    except NotFound:
        return f"cluster {name} is not joined"
    annotations = cluster["metadata"].get("annotations") or {}
    if annotations.get(names.ANNOTATION_CLUSTER_ROLE) == "root":
        raise Refused(f"cluster {name} is the host itself: use `kosmosctl uninstall`")
    member = await linkside.member_client(host, cluster, linked_only=False)
    namespace = cluster.get("spec", {}).get("namespace") or names.SYSTEM_NAMESPACE
    try:
        await host.delete(CLUSTERS, name, propagation="Background")
        await _wait_finalized(host, name, wait_seconds, force, progress)
        if member is not None:
            await mcsdns_member.tear_down(member, name, namespace, progress)
        await probeside.tear_down_member(host, member, cluster, progress)
    finally:
        if member is not None:
            await member.close()
    with contextlib.suppress(NotFound):  # normally garbage-collected via its owner
        await host.delete(SECRETS, secret_name(name), names.SYSTEM_NAMESPACE)
    with contextlib.suppress(NotFound):  # the member's agents that renewed it are gone
        await host.delete(LEASES, link.GATEWAY_LEASE_PREFIX + name, names.SYSTEM_NAMESPACE)
    return f"cluster {name} unjoined"


async def _wait_finalized(
    host: Client, name: str, wait_seconds: int, force: bool, progress: Progress
) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            current = await host.get(CLUSTERS, name)
        except NotFound:
            break
        finalizers = current["metadata"].get("finalizers") or []
        if force and finalizers:
            progress(f"{name}: dropping finalizers {finalizers}")
            await host.patch(CLUSTERS, name, {"metadata": {"finalizers": None}})
        elif time.monotonic() > deadline:
            owners = {
                names.FINALIZER_CLUSTER_MANAGER: "cluster-manager",
                names.FINALIZER_NETWORK_MANAGER: "network-manager",
            }
            waiting = sorted({owners.get(f, f) for f in finalizers})
            raise Refused(
                f"cluster {name} still finalizing ({', '.join(finalizers)}); is the "
                f"{' / '.join(waiting)} running? Re-run with --force to drop the finalizers"
            )
        progress(f"{name}: waiting for finalizers {finalizers}")
        await asyncio.sleep(1)
