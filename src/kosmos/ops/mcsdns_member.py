"""kosmos-coredns in a member joined with ClusterTree (``join``), and its removal (``unjoin``).

The member gets what the host got from install (:mod:`kosmos.ops.mcsdns`): the MCS API CRDs
(the zone writer watches ServiceImports there, which the MCS controller writes), the
kosmos-coredns objects in the Kosmos namespace, and the clusterset.local stanza in its own
cluster DNS. A failure leaves nothing behind: the caller rolls the join back.
"""

from __future__ import annotations

from kosmos.api.objects import Obj
from kosmos.api.resources import DEPLOYMENTS
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError
from kosmos.ops import apply as applier
from kosmos.ops import linkside, mcsdns, rollout
from kosmos.ops.manifests import (
    DEFAULT_IMAGE_REPOSITORY,
    FIELD_MANAGER,
    default_version,
    labels,
    with_log_format,
)
from kosmos.ops.progress import Progress


def images(repository: str | None, version: str | None) -> tuple[str, str]:
    """Our image and the CoreDNS image, as install names them (``--image-repository``)."""
    repo = (repository or DEFAULT_IMAGE_REPOSITORY).rstrip("/")
    return (
        f"{repo}/kosmos:{version or default_version()}",
        f"{repo}/coredns:{mcsdns.COREDNS_VERSION}",
    )


async def set_up(
    member: Client,
    cluster: str,
    *,
    namespace: str,
    repository: str | None,
    version: str | None,
    placement: Obj,
    annotations: dict[str, str],
    log_format: str,
    wait_seconds: float,
    progress: Progress,
) -> None:
    """kosmos-coredns and the cluster DNS stanza in one member prepared by
    ``probeside.prepare_member`` (the MCS CRDs and the namespace; idempotent). The zone
    writer gets join's ``--log-format``; CoreDNS keeps its own logs."""
    image, coredns_image = images(repository, version)
    for resource, body in mcsdns.objects(namespace, image, coredns_image, labels, placement):
        if resource == DEPLOYMENTS and annotations:
            body["spec"]["template"]["metadata"]["annotations"] = annotations
        logged = with_log_format(body, image, log_format)
        await member.apply(resource, logged, field_manager=FIELD_MANAGER, force=True)
    coredns: list[rollout.Workload] = [(DEPLOYMENTS, namespace, mcsdns.NAME)]
    await rollout.wait_in(member, cluster, coredns, wait_seconds, progress)
    await mcsdns.wire(member, namespace, cluster, progress)
    progress(f"{cluster}: {mcsdns.NAME} set up in the member")


async def tear_down(member: Client, cluster: str, namespace: str, progress: Progress) -> None:
    """Remove the stanza and kosmos-coredns; the CRDs stay (they may hold users' objects)."""
    try:
        await mcsdns.unwire(member, cluster, progress)
        image, coredns_image = images(None, None)
        for resource, body in reversed(mcsdns.objects(namespace, image, coredns_image, labels)):
            meta = body["metadata"]
            await applier.delete(member, resource, meta["name"], meta.get("namespace"))
        await linkside.delete_own_namespace(member, namespace)
        progress(f"{cluster}: {mcsdns.NAME} removed from the member")
    except KubeError as exc:
        progress(
            f"{cluster}: could not remove {mcsdns.NAME} from the member ({exc}); delete "
            f"Deployment/Service {namespace}/{mcsdns.NAME} and the {mcsdns.BEGIN!r} stanza of "
            "kube-system/coredns there"
        )
