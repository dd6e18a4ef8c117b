"""The seed's "Multi-cluster Service Discovery" tutorial replayed on real nodes.

In-cluster Kosmos (tests/e2e/conftest.py) runs the MCS controllers inside its
cluster-manager. An nginx-like Deployment (our HTTP image) runs on the leaf nodes, so its
containers run on the members' real nodes; the tutorial's v1alpha1 ServiceExport in the
host and ServiceImport in cluster1 are applied as written; a real pod in cluster1 then gets
HTTP 200 through the derived Service's ClusterIP, which kube-proxy on cluster1's real node
programs from the MCS EndpointSlices, and through ``nginx.default.svc.clusterset.local``,
which cluster1's own DNS forwards to its kosmos-coredns; a headless export's per-endpoint
names and SRV answer from the same pod. The annotation and the install's
``--auto-mcs-prefix`` (``kosmos-e2e`` in the local in-cluster install) export to every
member.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.local import kosmos_plan
from kosmos.local.images import SHELL_REF
from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.mcs.forge import derived_name
from kosmos.ops.local_incluster import AUTO_MCS_PREFIX
from tests.e2e.conftest import E2EEnv
from tests.fixtures.realpods import real_pod
from tests.support import get, wait_for

SHELL = SHELL_REF
NS = "default"
#: the tutorial's Service name (its pods are ``mcs-nginx``: the sample app's own pods are
#: ``app=nginx``, and two Deployments must not select each other's pods)
SERVICE = "nginx"
APP = "mcs-nginx"
CLUSTERSET_NAME = f"{SERVICE}.{NS}.svc.{names.MCS_ZONE}"
MEMBERS = ("cluster1", "cluster2")
IMPORTS = "serviceimports.multicluster.x-k8s.io"

SEED_EXPORT = {
    "apiVersion": "multicluster.x-k8s.io/v1alpha1",
    "kind": "ServiceExport",
    "metadata": {"name": SERVICE},
}
SEED_IMPORT = {
    "apiVersion": "multicluster.x-k8s.io/v1alpha1",
    "kind": "ServiceImport",
    "metadata": {"name": SERVICE},
    "spec": {"type": "ClusterSetIP", "ports": [{"protocol": "TCP", "port": 80}]},
}


def _apply(e2e_env: E2EEnv, context: str, *bodies: Any, namespace: str = NS) -> None:
    for body in bodies:
        e2e_env.kubectl(context).run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))


def _deployment() -> Any:
    body = kosmos_plan.sample_app(real_nodes=True)
    body["metadata"] = {"name": APP, "namespace": NS, "labels": {"app": APP}}
    body["spec"]["replicas"] = 2
    body["spec"]["selector"] = {"matchLabels": {"app": APP}}
    body["spec"]["template"]["metadata"]["labels"] = {"app": APP}
    return body


def _service(name: str, annotations: dict[str, str] | None = None) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "type": "NodePort",
            "selector": {"app": APP},
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
        },
    }


@pytest.fixture
def nginx(e2e_env: E2EEnv) -> Iterator[None]:
    """The tutorial's workload and Service in the host, both pods Running on leaf nodes."""
    host = e2e_env.kubectl()
    _apply(e2e_env, "host", _deployment(), _service(SERVICE))
    try:

        def running() -> bool:
            pods = get(host, "pods", "-n", NS, "-l", f"app={APP}")["items"]
            return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

        wait_for(running, 180, "the nginx pods to run on leaf nodes")
        yield
    finally:
        for kind in ("serviceexports.multicluster.x-k8s.io", "service"):
            host.run("delete", kind, SERVICE, "-n", NS, "--ignore-not-found", "--wait=false")
        host.run("delete", "deployment", APP, "-n", NS, "--ignore-not-found", "--wait=false")
        e2e_env.kubectl("cluster1").run("delete", IMPORTS, SERVICE, "-n", NS, "--ignore-not-found")


@pytest.fixture
def client(e2e_env: E2EEnv) -> Iterator[str]:
    """A real pod in cluster1, on its real node."""
    member = e2e_env.kubectl("cluster1")
    body = real_pod("e2e-mcs-client", "cluster1-real1", SHELL, ["sleep", "3600"])
    _apply(e2e_env, "cluster1", body)
    try:
        wait_for(
            lambda: (
                get(member, "pod", "e2e-mcs-client", "-n", NS)["status"].get("phase") == "Running"
            ),
            120,
            "the client pod to run in cluster1",
        )
        yield "e2e-mcs-client"
    finally:
        member.run(
            "delete", "pod", "e2e-mcs-client", "-n", NS, "--ignore-not-found", "--wait=false"
        )


def _import(e2e_env: E2EEnv, context: str, name: str, namespace: str = NS) -> Any:
    out = e2e_env.kubectl(context).run(
        "get", IMPORTS, name, "-n", namespace, "-o", "json", "--ignore-not-found"
    )
    return json.loads(out) if out.strip() else None


def test_seed_tutorial_export_in_host_import_in_cluster1_http_200(
    e2e_env: E2EEnv, nginx: None, client: str
):
    _apply(e2e_env, "host", SEED_EXPORT)
    _apply(e2e_env, "cluster1", SEED_IMPORT)
    member = e2e_env.kubectl("cluster1")
    imported = wait_for(
        lambda: (i := _import(e2e_env, "cluster1", SERVICE)) and i["spec"].get("ips") and i,
        60,
        "the import's clusterset IP in cluster1",
    )
    ip = imported["spec"]["ips"][0]
    derived = get(member, "service", derived_name(NS, SERVICE), "-n", NS)
    assert derived["spec"]["clusterIP"] == ip
    selector = f"{names.LABEL_MCS_SERVICE_NAME}={SERVICE}"

    def endpoints() -> int:
        slices = get(member, "endpointslices", "-n", NS, "-l", selector)["items"]
        return sum(len(s.get("endpoints") or []) for s in slices)

    wait_for(lambda: endpoints() == 2, 60, "both pods in cluster1's MCS slices")
    answer = _fetch(member, client, f"http://{ip}:80/", "the derived Service's ClusterIP")
    assert answer.startswith(f"{APP}-")
    # the tutorial's name, through cluster1's own DNS (its clusterset.local stanza forwards
    # to kosmos-coredns, whose zone the zone writer renders from this import)
    answer = _fetch(member, client, f"http://{CLUSTERSET_NAME}/", CLUSTERSET_NAME)
    assert answer.startswith(f"{APP}-")
    resolved = member.run("exec", client, "-n", NS, "--", "nslookup", CLUSTERSET_NAME)
    assert ip in resolved, resolved


def _fetch(member: Kubectl, client: str, url: str, what: str) -> str:
    """The body of a GET from the client pod (wget fails on any status but 2xx)."""
    fetch = ["exec", client, "-n", NS, "--", "timeout", "5", "wget", "-qO-", url]
    answer = wait_for(
        lambda: member.run(*fetch, timeout=20).strip(),
        90,
        f"HTTP 200 through {what}",
        ignoring=(KubectlError,),  # kube-proxy programs the Service within a few seconds
    )
    return str(answer)


def test_annotation_exports_to_every_member(e2e_env: E2EEnv, nginx: None):
    name = "mcs-nginx-auto"
    _apply(e2e_env, "host", _service(name, {names.ANNOTATION_AUTO_MCS: "true"}))
    try:
        for member in MEMBERS:
            wait_for(
                lambda m=member: (i := _import(e2e_env, m, name)) and i["spec"].get("ips"),
                60,
                f"the annotation's import in {member}",
            )
    finally:
        e2e_env.kubectl().run("delete", "service", name, "-n", NS, "--ignore-not-found")
    for member in MEMBERS:
        wait_for(lambda m=member: _import(e2e_env, m, name) is None, 30, "the import withdrawn")


def test_prefix_flag_exports_to_every_member(e2e_env: E2EEnv):
    namespace = f"{AUTO_MCS_PREFIX}-mcs"
    for context in ("host", *MEMBERS):
        e2e_env.kubectl(context).run("create", "namespace", namespace)
    try:
        body = _service("prefixed")
        body["spec"]["type"] = "ClusterIP"
        _apply(e2e_env, "host", body, namespace=namespace)
        for member in MEMBERS:
            wait_for(
                lambda m=member: _import(e2e_env, m, "prefixed", namespace),
                60,
                f"the prefix's import in {member}",
            )
    finally:
        for context in ("host", *MEMBERS):
            e2e_env.kubectl(context).run("delete", "namespace", namespace, "--wait=false")


def test_headless_export_per_endpoint_names_and_srv_from_a_real_pod(
    e2e_env: E2EEnv, nginx: None, client: str
):
    """A headless export: each endpoint has its own name under the exporting cluster's id
    (``<ip with dashes>.<clusterid>.<svc>.<ns>.svc.clusterset.local``, pods without a
    hostname) and the named port an SRV record pointing at those names; a real pod in
    cluster1 gets HTTP 200 from each pod by its name."""
    name = "nginx-headless"
    body = _service(name)
    body["spec"] = {**body["spec"], "type": "ClusterIP", "clusterIP": "None"}
    body["spec"]["ports"][0]["name"] = "http"
    export = {**SEED_EXPORT, "metadata": {"name": name}}
    _apply(e2e_env, "host", body, export)
    host, member = e2e_env.kubectl(), e2e_env.kubectl("cluster1")
    try:
        pods = get(host, "pods", "-n", NS, "-l", f"app={APP}")["items"]
        ips = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}
        base = f"{name}.{NS}.svc.{names.MCS_ZONE}"
        owner = names.ROOT_CLUSTER_NAME  # the host exports: its cluster id
        srv = ["exec", client, "-n", NS, "--", "nslookup", "-type=SRV", f"_http._tcp.{base}"]
        wanted = {f"{ip.replace('.', '-')}.{owner}.{base}" for ip in ips}
        wait_for(lambda: all(n in member.run(*srv) for n in wanted), 60,
                 "the SRV record naming both endpoints", ignoring=(KubectlError,))  # fmt: skip
        for ip, pod in ips.items():
            endpoint = f"{ip.replace('.', '-')}.{owner}.{base}"
            assert _fetch(member, client, f"http://{endpoint}:80/", endpoint) == pod
    finally:
        for kind in ("serviceexports.multicluster.x-k8s.io", "service"):
            host.run("delete", kind, name, "-n", NS, "--ignore-not-found", "--wait=false")
