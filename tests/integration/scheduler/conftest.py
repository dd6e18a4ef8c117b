"""Host worker nodes for the scheduler tests, and helpers to place pods and read results.

The local host's own nodes are control-plane nodes (tainted), as in a Kosmos control cluster;
distribution policies need host nodes ordinary pods can use. Three kwok workers join the
host for this package only (other tests expect every untolerating pod to stay off the host):

* ``host-worker1`` (label ``advNode=true``, the adv nodeSelector of the sample policy
  ``tests/integration/api/seed_examples/04-distributionpolicy-busybox.yaml``) and
  ``host-worker2``;
* ``host-worker3`` tainted ``dedicated=kosmos:NoSchedule`` (adv tolerations, kube-scheduler's
  own taint handling).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kosmos.local.topology import NodePlan, node_manifest
from tests.fixtures.scheduler import SchedulerEnv
from tests.support import apply

WORKERS = ("host-worker1", "host-worker2", "host-worker3")
DEDICATED = {"key": "dedicated", "value": "kosmos", "effect": "NoSchedule"}


def _worker(index: int, name: str) -> NodePlan:
    labels = {
        "kwok.x-k8s.io/node": "fake",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": f"host-zone-{index}",
    }
    if index == 1:
        labels["advNode"] = "true"
    taints = (dict(DEDICATED),) if index == 3 else ()
    return NodePlan(name, labels, f"10.10.{200 + index}.0/24", 8, 32, taints=taints)


@pytest.fixture(scope="package")
def workers(scheduler: SchedulerEnv) -> Iterator[SchedulerEnv]:
    """kosmos-scheduler running, and the three host workers Ready."""
    host = scheduler.host
    version = json.loads(host.run("version", "-o", "json"))["serverVersion"]["gitVersion"]
    items = [node_manifest(_worker(i, n), version) for i, n in enumerate(WORKERS, start=1)]
    apply(host, *items)
    host.run("wait", "--for=condition=Ready", "node", *WORKERS, "--timeout=60s", timeout=90)
    yield scheduler
    host.run("delete", "node", *WORKERS, "--ignore-not-found", "--wait=false")
