"""Bad network input is refused with a reason, and what can be applied still is.

* a bind device that does not exist on the node: the agent applies everything else and
  lists the device in the NodeConfig's ``Applied`` condition;
* two clusters claiming overlapping pod CIDRs: the planner routes neither and says so in
  both Clusters' ``NetworkPlanned`` condition;
* an invalid ``globalCIDRsMap``: the API refuses the Cluster, naming the field.
"""

from __future__ import annotations

import json
import subprocess

from kosmos.api.objects import Obj, condition_of
from tests.dataplane.linked import Layout, LinkedTestbed
from tests.dataplane.testbed import ns_run
from tests.support import wait_for

BED = Layout(options={"networkType": "p2p", "ipFamily": "ipv4"}, nodes=1, echo=False)


def _condition(obj: Obj, kind: str) -> Obj:
    return condition_of(obj, kind) or {}


def test_a_missing_bind_device_is_reported_and_the_rest_still_applies(bed: LinkedTestbed) -> None:
    a1 = bed.nodes()[0]
    cluster = bed.clusters[0].spec.name
    bed.link.patch_link(
        cluster, {"nicNodeNames": [{"interfaceName": "eth9", "nodeName": [a1.name]}]}
    )
    try:

        def reported() -> dict:  # type: ignore[type-arg]
            cond = _condition(bed.nodeconfig(a1) or {}, "Applied")
            return (
                cond if cond.get("status") == "False" and "eth9" in cond.get("message", "") else {}
            )

        cond = wait_for(reported, 60, "the Applied condition naming eth9", interval=0.5)
        assert "bind device 'eth9' does not exist" in cond["message"], cond
        assert "the rest is in effect" in cond["message"]
        ns = bed.topology.node_ns(a1)
        chains = ns_run(ns, "iptables-save", "-t", "filter")
        assert "KOSMOS-FORWARD" in chains  # the rest of the NodeConfig is applied
    finally:
        bed.link.patch_link(cluster, {"nicNodeNames": None})
    wait_for(
        lambda: bed.applied(a1), 60, "the node back in sync once the NIC is right again", interval=1
    )


def test_overlapping_pod_cidrs_are_routed_nowhere_and_both_clusters_say_why(
    bed: LinkedTestbed,
) -> None:
    a, b = (c.spec.name for c in bed.clusters)
    a1, _b1 = bed.nodes()
    bed.link.patch_link(b, {"clusterPodCIDRs": ["10.51.0.0/16"]})  # b now claims a's CIDR
    try:

        def both_say_why() -> bool:
            for name in (a, b):
                cond = _condition(bed.link.cluster(name), "NetworkPlanned")
                if cond.get("status") != "False" or "overlaps" not in cond.get("message", ""):
                    return False
            return True

        wait_for(
            both_say_why, 60, "NetworkPlanned=False with the overlap on both Clusters", interval=1
        )
        message = _condition(bed.link.cluster(a), "NetworkPlanned")["message"]
        assert "globalCIDRsMap" in message
        routes = (bed.nodeconfig(a1) or {}).get("spec", {}).get("routes", [])
        assert not [r for r in routes if r["cidr"].startswith("10.51.")]
    finally:
        bed.link.patch_link(b, {"clusterPodCIDRs": ["10.52.0.0/16", "fd52::/48"]})
    wait_for(
        lambda: _condition(bed.link.cluster(a), "NetworkPlanned").get("status") == "True",
        60,
        "plan complete again",
    )


def test_an_invalid_global_cidr_map_is_refused_by_the_api(bed: LinkedTestbed) -> None:
    name = bed.clusters[0].spec.name
    body = {"spec": {"clusterLinkOptions": {"globalCIDRsMap": {"10.51.0.0/16": "10.201.0.0/24"}}}}
    out = subprocess.run(
        [
            str(bed.link.env.kubectl_binary),
            "--kubeconfig",
            str(bed.link.env.kubeconfig(bed.link.env.host)),
            "patch",
            "cluster",
            name,
            "--type",
            "merge",
            "-p",
            json.dumps(body),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode != 0
    assert "globalCIDRsMap" in out.stderr and "same prefix length" in out.stderr, out.stderr
