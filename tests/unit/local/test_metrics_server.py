"""metrics-server's objects for the local host: what `kubectl top` relies on (pure data)."""

from __future__ import annotations

from kosmos.api.resources import APISERVICES, DEPLOYMENTS
from kosmos.local import images, metrics_server
from kosmos.local.nodes.plan import REAL_NODE_KEY


def by_kind():
    return {(r.kind, b["metadata"]["name"]): b for r, b in metrics_server.objects()}


def test_the_api_service_comes_last_and_points_at_the_service():
    planned = metrics_server.objects()
    resource, api = planned[-1]
    assert resource == APISERVICES
    assert api["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    assert api["spec"]["service"] == {
        "name": "metrics-server",
        "namespace": "kube-system",
        "port": 443,
    }
    assert api["spec"]["insecureSkipTLSVerify"] is True
    service = by_kind()[("Service", "metrics-server")]
    assert service["spec"]["ports"][0]["targetPort"] == "https"


def test_readers_of_metrics_are_aggregated_into_the_default_roles():
    reader = by_kind()[("ClusterRole", "system:aggregated-metrics-reader")]
    labels = reader["metadata"]["labels"]
    for role in ("admin", "edit", "view"):
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true"
    assert reader["rules"] == [
        {
            "apiGroups": ["metrics.k8s.io"],
            "resources": ["pods", "nodes"],
            "verbs": ["get", "list", "watch"],
        }
    ]


def test_metrics_server_may_scrape_kubelets_and_delegate_authentication():
    objects = by_kind()
    own = objects[("ClusterRole", "system:metrics-server")]
    assert {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]} in own["rules"]
    reader = objects[("RoleBinding", "metrics-server-auth-reader")]
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"]["name"] == "extension-apiserver-authentication-reader"
    delegator = objects[("ClusterRoleBinding", "metrics-server:system:auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    for binding in (reader, delegator):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "metrics-server", "namespace": "kube-system"}
        ]


def test_the_deployment_runs_our_image_on_real_nodes_and_skips_kwok_nodes():
    (deployment,) = [b for r, b in metrics_server.objects() if r == DEPLOYMENTS]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"][REAL_NODE_KEY] == "true"
    (container,) = pod["containers"]
    assert container["image"] == images.METRICS_SERVER_REF
    assert container["imagePullPolicy"] == "IfNotPresent"
    args = container["args"]
    assert "--kubelet-preferred-address-types=InternalIP" in args
    assert "--kubelet-insecure-tls" in args
    assert "--metric-resolution=15s" in args
    assert "--node-selector=kwok.x-k8s.io/node!=fake" in args
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
