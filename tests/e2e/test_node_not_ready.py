"""docs/tutorials/node-not-ready.md on real nodes: the network between the host and a member
fails, the member's leaf node turns NotReady, and no pod is evicted, deleted or restarted on
either side; when the network is back the leaf is Ready again.

The shared e2e environment runs the cluster-manager as a pod on the host's real node, and the
sample app's pods on both leaf nodes as real containers in the members. The outage is a
partition, not a stopped member: in the host's real node (its network namespace) every packet
to cluster1's apiserver is dropped, so the cluster-manager's connections to it hang while
cluster1 itself, its kubelet and its pods run on. cluster2 stays reachable.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from kosmos.local import kosmos_plan
from kosmos.local.kubectl import Kubectl
from kosmos.local.nodes.plan import REAL_NODE_KEY
from kosmos.local.nodes.plan import network as network_of
from kosmos.local.topology import Options, plan
from tests.e2e.conftest import PORT_BASE, E2EEnv
from tests.support import get, wait_for

MEMBER, OTHER = "cluster1", "cluster2"
LEAF = kosmos_plan.leaf_node_name(MEMBER)
#: the cluster-manager's --unreachable-after (40 s) and a margin; then the outage goes on
#: while the pods must stay
OUTAGE_SECONDS = 90
UNBOUNDED = {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}


def _identities(kubectl: Kubectl, *selector: str) -> dict[str, tuple[str, int]]:
    """name -> (UID, restarts) of the sample app's pods."""
    found = {}
    for pod in get(kubectl, "pods", "-n", "default", "-l", "app=nginx", *selector)["items"]:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
        found[pod["metadata"]["name"]] = (str(pod["metadata"]["uid"]), restarts)
    return found


def _ready(kubectl: Kubectl, node: str) -> bool:
    path = '{.status.conditions[?(@.type=="Ready")].status}'
    return str(kubectl.run("get", "node", node, "-o", f"jsonpath={path}")) == "True"


@contextmanager
def _partition(e2e_env: E2EEnv) -> Iterator[None]:
    """Drop everything the host's real node sends to the member's apiserver (its relay)."""
    clusters = {c.name: c for c in plan(Options(port_base=PORT_BASE, real_nodes=1))}
    server = urlsplit(network_of(clusters[MEMBER]).apiserver)
    host = e2e_env.kubectl()
    nodes = host.run("get", "nodes", "-l", REAL_NODE_KEY, "-o", "name").split()
    netns = [f"kosmos-{clusters['host'].apiserver_port}-{n.removeprefix('node/')}" for n in nodes]
    rule = ["-d", str(server.hostname), "-p", "tcp", "--dport", str(server.port), "-j", "DROP"]
    added: list[list[str]] = []
    try:
        for ns in netns:
            for chain in ("OUTPUT", "FORWARD"):  # host-network pods, then pods on the bridge
                argv = ["ip", "netns", "exec", ns, "iptables"]
                subprocess.run([*argv, "-I", chain, "1", *rule], check=True, capture_output=True)
                added.append([*argv, "-D", chain, *rule])
        yield
    finally:
        for argv in added:
            subprocess.run(argv, check=False, capture_output=True)


def test_a_partitioned_member_turns_its_leaf_not_ready_and_keeps_every_pod(
    e2e_env: E2EEnv,
) -> None:
    host, member = e2e_env.kubectl(), e2e_env.kubectl(MEMBER)
    wait_for(lambda: _ready(host, LEAF), 120, f"{LEAF} Ready")
    on_leaf = ("--field-selector", f"spec.nodeName={LEAF}")
    before_host, before_member = _identities(host, *on_leaf), _identities(member)
    assert before_host and len(before_member) == len(before_host), (before_host, before_member)
    for pod in get(host, "pods", "-n", "default", "-l", "app=nginx", *on_leaf)["items"]:
        unbounded = {
            t.get("key")
            for t in pod["spec"].get("tolerations") or []
            if t.get("effect") == "NoExecute" and "tolerationSeconds" not in t
        }
        assert unbounded >= UNBOUNDED, pod["spec"].get("tolerations")
    cut = time.monotonic()
    with _partition(e2e_env):
        wait_for(lambda: not _ready(host, LEAF), OUTAGE_SECONDS, f"{LEAF} NotReady")
        went_not_ready = time.monotonic() - cut
        assert _ready(host, kosmos_plan.leaf_node_name(OTHER))
        wait_for(
            lambda: _condition(get(host, "cluster", MEMBER), "Ready").get("status") == "False",
            30,
            f"Cluster {MEMBER} Ready=False",
        )
        condition = _condition(get(host, "cluster", MEMBER), "Ready")
        assert condition["reason"] == "MemberUnreachable", condition
        got = e2e_env.kosmosctl("--kubeconfig", e2e_env.kubeconfig, "--context", "host",
                                "get", "clusters").stdout  # fmt: skip
        row = next(line.split() for line in got.splitlines() if line.startswith(MEMBER + " "))
        assert "False" in row, got
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut)))
        during = get(host, "pods", "-n", "default", "-l", "app=nginx", *on_leaf)["items"]
        assert {p["metadata"]["name"] for p in during} == set(before_host)
        assert not any(p["metadata"].get("deletionTimestamp") for p in during)
    healed = time.monotonic()
    wait_for(lambda: _ready(host, LEAF), 60, f"{LEAF} Ready again")
    back_in = time.monotonic() - healed
    assert _identities(host, *on_leaf) == before_host
    assert _identities(member) == before_member
    print(f"{LEAF} NotReady {went_not_ready:.0f}s after the partition, Ready {back_in:.1f}s "
          f"after it healed; {len(before_member)} pods kept")  # fmt: skip


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}
