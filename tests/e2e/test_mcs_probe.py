"""Endpoint probing on real nodes: a cut route takes a member's endpoints out, a restore
brings them back, and a client sees errors only within the probe window.

NEEDS the MCS controller (the export -> import path, ``kosmos.io/address``, honouring
``kosmos.io/disconnected-address`` in the slices): written against the issue-16 design
contract, it runs once that controller is merged.

A host Deployment of our HTTP image has one pod on each leaf node (kosmos-cluster1,
kosmos-cluster2), so its endpoints are real pods in both members; its Service is exported
from the host, so cluster1 gets a ServiceImport whose ``kosmos.io/address`` lists both pods,
a derived Service and EndpointSlices. A client pod in cluster1 fetches the derived Service's
ClusterIP every 200 ms and logs each outcome with its time. Then cluster1's real node drops
everything towards cluster2's pod (iptables in the node's network namespace, where the pod
traffic of cluster1 is forwarded): cluster1's prober marks the address, the controller takes
it out of cluster1's slices; removing the rule brings it back.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from kosmos.api import names
from kosmos.local.images import HTTP_REF
from kosmos.local.kosmos_plan import REAL_NODE_PLACEMENT
from kosmos.local.kubectl import KubectlError
from tests.e2e.conftest import PORT_BASE, E2EEnv
from tests.fixtures.realpods import real_pod
from tests.support import wait_for

NAME, NS = "e2e-probe", "default"
MEMBER_PORTS = {"cluster1": PORT_BASE + 10, "cluster2": PORT_BASE + 20}
#: --interval 1 s, --timeout 1 s, --failure-threshold 2, then the controller's slice write and
#: kube-proxy's sync: what a client may notice of a cut
PROBE_WINDOW = 2 * (1.0 + 1.0) + 4.0
HTTP_PORT = 8080


def node_netns(member: str) -> str:
    return f"kosmos-{MEMBER_PORTS[member]}-{member}-real1"


def iptables(member: str, action: str, address: str) -> None:
    for chain in ("FORWARD", "OUTPUT"):
        argv = ["ip", "netns", "exec", node_netns(member), "iptables", action, chain,
                "-d", address, "-j", "DROP"]  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True)


def deployment() -> dict:
    labels = {"app": NAME}
    real = json.dumps(REAL_NODE_PLACEMENT, sort_keys=True)
    leaf = {"key": names.LABEL_NODE, "operator": "Exists"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                # the members' copies on their real nodes (a kwok node's pod IP answers nothing)
                "metadata": {
                    "labels": labels,
                    "annotations": {names.ANNOTATION_CLUSTER_SELECTOR: real},
                },
                "spec": {
                    "tolerations": [leaf],
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{**leaf, "operator": "Exists"}]}
                                ]
                            }
                        },
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": labels},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        },
                    },
                    "containers": [{"name": "http", "image": HTTP_REF, "imagePullPolicy": "Never"}],
                },
            },
        },
    }


def manifests() -> str:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "selector": {"app": NAME},
            "ports": [{"name": "http", "port": 80, "targetPort": HTTP_PORT, "protocol": "TCP"}],
        },
    }
    export = {
        "apiVersion": f"{names.MCS_GROUP}/v1beta1",
        "kind": "ServiceExport",
        "metadata": {"name": NAME, "namespace": NS},
    }
    return "\n---\n".join(json.dumps(o) for o in (deployment(), service, export))


def annotations(e2e_env: E2EEnv, cluster: str) -> dict[str, str]:
    out = e2e_env.kubectl(cluster).run("get", "serviceimport", NAME, "-n", NS, "-o", "json")
    return json.loads(out)["metadata"].get("annotations") or {}


def sliced(e2e_env: E2EEnv, cluster: str) -> set[str]:
    selector = f"{names.LABEL_MCS_SERVICE_NAME}={NAME}"
    out = e2e_env.kubectl(cluster).run(
        "get", "endpointslices", "-n", NS, "-l", selector, "-o", "json"
    )
    return {
        a
        for s in json.loads(out)["items"]
        for e in s.get("endpoints") or []
        for a in e["addresses"]
    }


@pytest.fixture
def exported(e2e_env: E2EEnv) -> Iterator[dict[str, str]]:
    """The exported Deployment; yields pod IP -> member it runs in."""
    host = e2e_env.kubectl("host")
    host.run("apply", "-f", "-", stdin=manifests())
    try:

        def placed() -> dict[str, str]:
            pods = json.loads(host.run("get", "pods", "-n", NS, "-l", f"app={NAME}", "-o", "json"))
            out = {
                p["status"]["podIP"]: p["spec"]["nodeName"].removeprefix("kosmos-")
                for p in pods["items"]
                if p.get("status", {}).get("podIP")
                and any(c["type"] == "Ready" and c["status"] == "True"
                        for c in p["status"].get("conditions") or [])
            }  # fmt: skip
            return out if len(out) == 2 else {}

        yield wait_for(placed, 180, "the two exported pods Ready on both leaf nodes")
    finally:
        host.run("delete", "serviceexport,service,deployment", NAME, "-n", NS,
                 "--ignore-not-found", "--wait=false")  # fmt: skip


def test_cut_route_marks_endpoints_and_restore_brings_them_back(
    e2e_env: E2EEnv, exported: dict[str, str]
):
    remote = sorted(ip for ip, member in exported.items() if member == "cluster2")
    cluster1 = e2e_env.kubectl("cluster1")
    wait_for(lambda: sliced(e2e_env, "cluster1") == set(exported), 60,
             "cluster1's imported slices to hold both pods")  # fmt: skip
    derived = annotations(e2e_env, "cluster1")["multicluster.kubernetes.io/derived-service"]
    vip = cluster1.run("get", "service", derived, "-n", NS, "-o", "jsonpath={.spec.clusterIP}")
    loop = (
        "while true; do t=$(date +%s); "
        f"if timeout 1 wget -qO- http://{vip}/ >/dev/null 2>&1; then echo ok $t; "
        "else echo err $t; fi; sleep 0.2; done"
    )
    node = cluster1.run("get", "nodes", "-l", "local.kosmos.io/real-node", "-o", "name").split()[0]
    # the HTTP image (busybox with wget) is what the sample app already runs on the members
    client = real_pod("e2e-probe-client", node.removeprefix("node/"), HTTP_REF, ["sh", "-c", loop])
    cluster1.run("apply", "-n", NS, "-f", "-", stdin=json.dumps(client))
    try:
        try:
            wait_for(lambda: "ok" in cluster1.run("logs", "-n", NS, "e2e-probe-client"), 180,
                     "the client's first success", ignoring=(KubectlError,))  # fmt: skip
        except AssertionError:
            selector = f"{names.LABEL_MCS_SERVICE_NAME}={NAME}"
            for args in (
                ("describe", "pod", "-n", NS, "e2e-probe-client"),
                ("logs", "-n", NS, "e2e-probe-client", "--tail", "5"),
                ("get", "serviceimport", NAME, "-n", NS, "-o", "yaml"),
                ("get", "service", derived, "-n", NS, "-o", "yaml"),
                ("get", "endpointslices", "-n", NS, "-l", selector, "-o", "yaml"),
            ):
                print(cluster1.run(*args))
            raise
        cut = time.time()
        for ip in remote:
            iptables("cluster1", "-I", ip)
        try:

            def marked_remote() -> bool:
                current = annotations(e2e_env, "cluster1").get(names.ANNOTATION_DISCONNECTED)
                return current == ",".join(remote)

            wait_for(marked_remote, 30, "cluster1's prober to mark cluster2's pod")
            marked = time.time() - cut
            wait_for(lambda: not (sliced(e2e_env, "cluster1") & set(remote)), 15,
                     "cluster2's pod to leave cluster1's slices")  # fmt: skip
            removed = time.time() - cut
            time.sleep(5)  # the client keeps going on the remaining endpoint
        finally:
            restore = time.time()
            for ip in remote:
                iptables("cluster1", "-D", ip)
        wait_for(lambda: names.ANNOTATION_DISCONNECTED not in annotations(e2e_env, "cluster1"),
                 15, "the mark to clear after the restore")  # fmt: skip
        wait_for(lambda: sliced(e2e_env, "cluster1") == set(exported), 15,
                 "cluster2's pod back in cluster1's slices")  # fmt: skip
        back = time.time() - restore
        time.sleep(3)
        log = cluster1.run("logs", "-n", NS, "e2e-probe-client").split("\n")
        errors = [float(line.split()[1]) for line in log if line.startswith("err ")]
        print(f"\nmarked {marked:.1f}s, out of the slices {removed:.1f}s after the cut; "
              f"back {back:.1f}s after the restore; client errors at "
              f"{[round(t - cut, 1) for t in errors]} s after the cut")  # fmt: skip
        assert removed <= PROBE_WINDOW + 4
        # the client's clock has 1 s resolution (busybox date)
        assert all(cut - 1 <= t <= cut + PROBE_WINDOW + 1 for t in errors), errors
    finally:
        cluster1.run("delete", "pod", "e2e-probe-client", "-n", NS, "--ignore-not-found",
                     "--wait=false")  # fmt: skip
