"""What the Helm chart's hook Jobs (``kosmos helm-hook``) do beyond Helm's own deletes."""

from __future__ import annotations

import pytest

from kosmos.api import names
from kosmos.api.resources import CLUSTERS, LEASES
from kosmos.ops import uninstall
from kosmos.ops.errors import OperationError
from tests.unit.kubenest.fakes import FakeClient


def lease(name: str, namespace: str = names.SYSTEM_NAMESPACE) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": namespace}}


async def test_post_delete_removes_only_kosmoss_leases():
    client = FakeClient()
    for name in (
        "cluster-manager",
        "network-manager",
        "kosmos-scheduler",
        "kosmos-scheduler-extender",
        "clusterlink-gateway-cluster1",
        "someone-elses",
    ):
        client.add(LEASES, lease(name))  # fmt: skip
    client.add(LEASES, lease("cluster-manager", "default"))  # not our namespace
    await uninstall.remove_leases(client, names.SYSTEM_NAMESPACE, lambda _: None)
    left = (await client.list(LEASES)).items
    assert sorted((x["metadata"]["namespace"], x["metadata"]["name"]) for x in left) == [
        ("default", "cluster-manager"),
        (names.SYSTEM_NAMESPACE, "someone-elses"),
    ]


async def test_pre_delete_refuses_while_members_are_joined():
    client = FakeClient()
    client.add(CLUSTERS, {"metadata": {"name": "cluster1"}})
    with pytest.raises(OperationError, match="member clusters still joined: cluster1"):
        await uninstall.release_host(client, timeout=1, progress=lambda _: None)


async def test_pre_delete_deletes_the_root_cluster():
    client = FakeClient()
    root = {"metadata": {"name": names.ROOT_CLUSTER_NAME,
                         "annotations": {names.ANNOTATION_CLUSTER_ROLE: "root"}}}  # fmt: skip
    client.add(CLUSTERS, root)
    lines = await uninstall.release_host(client, timeout=1, progress=lambda _: None)
    assert lines == [f"cluster.kosmos.io/{names.ROOT_CLUSTER_NAME} deleted"]
    assert (await client.list(CLUSTERS)).items == []
