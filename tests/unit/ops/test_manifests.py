"""The objects ``kosmosctl install`` creates: labelled, least-privilege, hardened, valid."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

from kosmos.api import crds, names
from kosmos.api.cluster import Cluster
from kosmos.api.resources import (
    CLUSTERROLES,
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    NAMESPACES,
    ROLES,
)
from kosmos.api.schema import crd, kind_info
from kosmos.ops import manifests
from kosmos.ops.manifests import InstallOptions

OPTIONS = InstallOptions(
    namespace="kosmos-x", image_repository="reg.example/kosmos", version="v9", enable_kubenest=True
)


def objects(options: InstallOptions = OPTIONS) -> list[tuple[Any, dict[str, Any]]]:
    return manifests.install_objects(options)


def kinds(options: InstallOptions = OPTIONS) -> list[str]:
    return [body["kind"] for _, body in objects(options)]


def deployments(options: InstallOptions = OPTIONS) -> dict[str, dict[str, Any]]:
    return {b["metadata"]["name"]: b for r, b in objects(options) if r == DEPLOYMENTS}


def test_every_object_carries_the_kosmos_labels():
    for resource, body in objects():
        labels = body["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "kosmos", body["metadata"]["name"]
        assert labels.get("app.kubernetes.io/managed-by") == "kosmosctl"
        assert labels.get("app.kubernetes.io/name"), (resource, body["metadata"]["name"])
        assert body["kind"] == resource.kind and body["apiVersion"] == resource.api_version


def test_order_is_crds_namespace_components_then_root_cluster():
    order = kinds()
    n_crds = len(crds.KINDS)
    assert order[:n_crds] == ["CustomResourceDefinition"] * n_crds
    assert order[n_crds] == "Namespace"
    assert order[-1] == "Cluster"
    for component in filter(OPTIONS.enabled, manifests.COMPONENTS):
        own = [
            b["kind"]
            for _, b in objects()
            if b["metadata"].get("labels", {}).get("app.kubernetes.io/name")
            == component.object_name
        ]
        assert own[0] == "ServiceAccount" and own[-1] == "Deployment"


def test_namespaced_objects_live_in_the_install_namespace():
    for resource, body in objects():
        namespace = body["metadata"].get("namespace")
        if resource.namespaced:
            # node leases; kube-scheduler reads the apiserver's client CA in kube-system
            assert namespace in {"kosmos-x", "kube-node-lease", "kube-system"}, body["metadata"]
        else:
            assert namespace is None
        for subject in body.get("subjects", []):
            assert subject == {
                "kind": "ServiceAccount",
                "name": subject["name"],
                "namespace": "kosmos-x",
            }


def _rules() -> list[tuple[str, dict[str, Any]]]:
    return [
        (b["metadata"]["name"], rule)
        for r, b in objects()
        if r in (CLUSTERROLES, ROLES)
        for rule in b["rules"]
    ]


def test_rbac_has_no_wildcards_and_no_privilege_escalation_paths():
    assert _rules()
    for role, rule in _rules():
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in value for value in rule.get(key, [])), (role, rule)
        assert "nonResourceURLs" not in rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
        assert "rbac.authorization.k8s.io" not in rule["apiGroups"], role


def _allowed(role_name: str, group: str, resource: str, verb: str) -> bool:
    return any(
        name == role_name
        and group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        for name, rule in _rules()
    )


def test_cluster_manager_can_sync_but_not_create_or_bind_pods():
    cm = "kosmos-cluster-manager"
    assert _allowed(cm, "", "nodes", "create")
    assert _allowed(cm, "", "pods/status", "update")
    assert _allowed(cm, "storage.k8s.io", "storageclasses", "list")
    assert _allowed(cm, "", "persistentvolumes", "create")  # the kosmos-leaf provisioner
    assert not _allowed(cm, "", "serviceaccounts/token", "create")  # members mint tokens
    assert not _allowed(cm, "", "configmaps", "update")  # host objects are only read
    assert _allowed(cm, names.GROUP, "clusters/finalizers", "update")
    assert not _allowed(cm, "", "pods", "create")
    assert not _allowed(cm, "", "pods/binding", "create")
    assert not _allowed(cm, "", "secrets", "create")
    # Node heartbeats only in kube-node-lease, leader election only on its own Lease.
    assert _allowed(f"{cm}-node-leases", "coordination.k8s.io", "leases", "update")
    assert not _allowed(cm, "coordination.k8s.io", "leases", "update")
    election = [r for n, r in _rules() if n == f"{cm}-leader-election" and "update" in r["verbs"]]
    assert election == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "update", "patch"],
            "resourceNames": ["cluster-manager"],
        }
    ]


def test_network_manager_writes_cluster_nodes_cidrs_and_nodeconfigs_only():
    nm = "kosmos-network-manager"
    assert _allowed(nm, names.GROUP, "nodeconfigs", "create")
    assert _allowed(nm, names.GROUP, "clusternodes", "patch")  # server-side apply
    assert _allowed(nm, names.GROUP, "clusternodes/status", "patch")
    assert _allowed(nm, names.GROUP, "clusters", "patch")  # its finalizer
    assert _allowed(nm, names.GROUP, "clusters/status", "patch")
    assert not _allowed(nm, names.GROUP, "clusters", "update")  # never the whole object
    assert not _allowed(nm, names.GROUP, "clusters", "delete")
    assert _allowed(nm, "", "secrets", "get")  # member kubeconfigs
    assert _allowed(nm, "", "secrets", "create")  # the tunnel master key, made on first need
    assert _allowed(nm, "", "services", "create")  # the dry-run service CIDR probe
    assert not _allowed(nm, "", "services", "delete")
    assert not _allowed(nm, "", "nodes", "patch")
    assert not _allowed(nm, "", "pods", "create")


@pytest.mark.parametrize("component", manifests.COMPONENTS, ids=lambda c: c.name)
def test_deployment_runs_hardened_as_non_root(component: manifests.Component):
    deployment = deployments()[component.object_name]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["serviceAccountName"] == component.object_name
    (container,) = pod["containers"]
    assert container["image"] == "reg.example/kosmos/kosmos:v9"
    assert "command" not in container  # the image's entrypoint, tini -- kosmos, stays PID 1
    assert container["args"][0] == component.name
    assert "--leader-elect" in container["args"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["ports"] == [{"name": "health", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_disabled_components_are_left_out_and_the_root_cluster_says_so():
    options = InstallOptions(enable_link=False, enable_scheduler=False)
    assert set(deployments(options)) == {
        "kosmos-cluster-manager",
        "kosmos-eps-probe",
        "kosmos-coredns",
    }
    assert set(deployments(InstallOptions())) == {
        "kosmos-cluster-manager",
        "kosmos-network-manager",
        "kosmos-eps-probe",
        "kosmos-scheduler",
        "kosmos-coredns",
    }
    no_dns = InstallOptions(mcs_dns=False)
    assert "kosmos-coredns" not in deployments(no_dns)
    gone = {manifests.display_name(r, b) for r, b in manifests.disabled_objects(no_dns)}
    assert "deployment.apps/kosmos-coredns" in gone
    removed = {manifests.display_name(r, b) for r, b in manifests.disabled_objects(options)}
    assert "deployment.apps/kosmos-scheduler" in removed
    assert "deployment.apps/kosmos-network-manager" in removed
    assert "deployment.apps/kosmos-cluster-manager" not in removed
    _, root = manifests.root_cluster(options)
    assert root["spec"]["clusterLinkOptions"]["enable"] is False
    assert root["spec"]["clusterTreeOptions"]["enable"] is True


def _check(value: Any, schema: dict[str, Any], path: str) -> None:
    """A small structural check against an OpenAPI schema: known fields, types, enums."""
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}
    if kind:
        assert isinstance(value, types[kind]), f"{path}: {value!r} is not {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in {schema['enum']}"
    if kind == "object" and "properties" in schema:
        for required in schema.get("required", []):
            assert required in value, f"{path}.{required} is required"
        for key, item in value.items():
            assert key in schema["properties"], f"{path}.{key} is not in the schema"
            _check(item, schema["properties"][key], f"{path}.{key}")
    if kind == "array":
        for i, item in enumerate(value):
            _check(item, schema["items"], f"{path}[{i}]")


def test_root_cluster_matches_the_cluster_crd_schema():
    resource, body = manifests.root_cluster(
        InstallOptions(namespace="kosmos-x", cni="flannel", default_nic="eth1")
    )
    assert resource == kind_info(Cluster).resource
    assert body["metadata"]["name"] == names.ROOT_CLUSTER_NAME
    assert body["metadata"]["annotations"] == {names.ANNOTATION_CLUSTER_ROLE: "root"}
    schema = crd(Cluster)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    _check(body, schema, "")
    link = body["spec"]["clusterLinkOptions"]
    assert (link["cni"], link["defaultNICName"], link["enable"]) == ("flannel", "eth1", True)
    assert body["spec"]["namespace"] == "kosmos-x"
    assert "kubeconfig" not in body["spec"]  # the host reaches itself in-cluster


def test_crds_are_the_generated_ones_plus_labels():
    planned = [b for r, b in objects() if r == CUSTOMRESOURCEDEFINITIONS]
    for body, generated in zip(planned, crds.crd_manifests(), strict=True):
        assert body["spec"] == generated["spec"]
    assert crds.crd_manifests()[0]["metadata"].get("labels") is None  # not mutated


def test_defaults_follow_the_package_and_the_spec():
    options = InstallOptions()
    assert options.version == "v" + importlib.metadata.version("kosmos")
    assert options.namespace == "kosmos-system"
    assert options.image == f"docker.io/kosmos/kosmos:{options.version}"
    (ns,) = [b for r, b in objects(options) if r == NAMESPACES]
    assert ns["metadata"]["name"] == "kosmos-system"


def test_uninstall_covers_every_component_whatever_the_flags():
    options = InstallOptions(enable_tree=False, enable_link=False)
    names_ = {manifests.display_name(r, b) for r, b in manifests.all_component_objects(options)}
    assert "deployment.apps/kosmos-cluster-manager" in names_
    assert "deployment.apps/kosmos-network-manager" in names_
    assert "deployment.apps/kosmos-scheduler" in names_


def _scheduler_pod() -> dict[str, Any]:
    spec: dict[str, Any] = deployments()["kosmos-scheduler"]["spec"]["template"]["spec"]
    return spec


def test_scheduler_pod_is_kube_scheduler_with_the_extender_as_a_native_sidecar():
    pod = _scheduler_pod()
    (extender,) = pod["initContainers"]
    (scheduler,) = pod["containers"]
    assert extender["restartPolicy"] == "Always"  # started and probed before the scheduler
    assert extender["image"] == "reg.example/kosmos/kosmos:v9"
    assert "command" not in extender
    assert extender["args"][0] == "scheduler-extender"
    assert extender["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert scheduler["image"].startswith("registry.k8s.io/kube-scheduler:v1.36")
    assert "--config=/etc/kosmos-scheduler/config.yaml" in scheduler["command"]
    for container in (extender, scheduler):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "kosmos-scheduler"


def test_scheduler_config_trusts_the_sidecars_certificate_and_leads_in_the_namespace():
    import yaml

    (config_map,) = [
        b
        for _, b in objects()
        if b["kind"] == "ConfigMap" and b["metadata"]["name"] == ("kosmos-scheduler-config")
    ]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    (extender,) = config["extenders"]
    assert extender["urlPrefix"] == "https://127.0.0.1:10260/kosmos-scheduler-extender"
    assert extender["tlsConfig"] == {"caFile": "/var/run/kosmos/scheduler-extender/tls.crt"}
    assert (extender["ignorable"], extender["httpTimeout"]) == (False, "3s")
    assert config["leaderElection"]["resourceNamespace"] == "kosmos-x"
    assert config["profiles"] == [{"schedulerName": "kosmos-scheduler"}]
    assert "clientConnection" not in config  # in-cluster


def test_scheduler_rbac_reads_and_patches_pods_but_never_creates_binds_or_deletes():
    ext = "kosmos-scheduler-extender"
    assert _allowed(ext, "", "pods", "watch")
    assert _allowed(ext, "", "pods", "patch")  # deletion costs
    assert _allowed(ext, "apps", "replicasets", "list")
    assert _allowed(ext, names.GROUP, "distributionpolicies", "watch")
    assert not _allowed(ext, "", "pods", "create")
    assert not _allowed(ext, "", "pods", "delete")
    assert not _allowed(ext, "", "pods/binding", "create")
    assert not _allowed(ext, "", "secrets", "list")  # member kubeconfigs: get one by one
    assert _allowed("kosmos-scheduler", "", "secrets", "get")
    bound = {
        b["roleRef"]["name"]
        for _, b in objects()
        if b["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and b["subjects"][0]["name"] == "kosmos-scheduler"
    }
    assert {"system:kube-scheduler", "system:volume-scheduler"} <= bound


def test_node_selector_places_every_kosmos_pod():
    options = InstallOptions(node_selector=manifests.parse_node_selector("a=b,role=kosmos"))
    pods = [d["spec"]["template"]["spec"] for d in deployments(options).values()]
    assert len(pods) == 5  # cluster-manager, network-manager, eps-probe, scheduler, coredns
    assert all(p["nodeSelector"] == {"a": "b", "role": "kosmos"} for p in pods)
    assert all("nodeSelector" not in d["spec"]["template"]["spec"] for d in deployments().values())


@pytest.mark.parametrize("text", ["a", "=b", "a=b,c"])
def test_a_bad_node_selector_is_named(text: str):
    with pytest.raises(ValueError, match="--node-selector"):
        manifests.parse_node_selector(text)


def test_cluster_manager_may_authenticate_callers_of_the_leaf_endpoint():
    rules = manifests.CLUSTER_MANAGER.rules
    assert any(
        r["apiGroups"] == ["authentication.k8s.io"] and r["resources"] == ["tokenreviews"]
        for r in rules
    )
    assert any(r["resources"] == ["subjectaccessreviews"] for r in rules)
    bindings = [
        b
        for r, b in objects()
        if r.kind == "RoleBinding" and b["metadata"]["namespace"] == "kube-system"
    ]
    refs = {(b["metadata"]["name"], b["roleRef"]["name"]) for b in bindings}
    assert (
        "kosmos-cluster-manager-extension-apiserver-authentication-reader",
        "extension-apiserver-authentication-reader",
    ) in refs


def test_auto_mcs_prefixes_reach_only_the_cluster_manager_args():
    options = InstallOptions(auto_mcs_prefixes=("test", "kosmos-e2e"))
    tree = manifests.deployment(options, manifests.CLUSTER_MANAGER)
    (container,) = tree["spec"]["template"]["spec"]["containers"]
    assert container["args"][-2:] == ["--auto-mcs-prefix=test", "--auto-mcs-prefix=kosmos-e2e"]
    link = manifests.deployment(options, manifests.NETWORK_MANAGER)
    assert not any("mcs" in a for a in link["spec"]["template"]["spec"]["containers"][0]["args"])


def test_cluster_manager_may_write_mcs_objects():
    rules = manifests.CLUSTER_MANAGER.rules
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for resource in ("serviceexports", "serviceimports", "serviceimports/status"):
        assert (names.MCS_GROUP, resource, "patch") in granted
    assert ("discovery.k8s.io", "endpointslices", "delete") in granted
    assert ("", "services", "create") in granted
    assert ("", "namespaces", "watch") in granted


def test_the_endpoint_prober_only_reads_and_patches_serviceimports():
    options = InstallOptions()
    probe = deployments(options)["kosmos-eps-probe"]
    container = probe["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "eps-probe"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    roles = [b for r, b in manifests.install_objects(options) if r.kind == "ClusterRole"]
    (role,) = [b for b in roles if b["metadata"]["name"] == "kosmos-eps-probe"]
    assert role["rules"] == [
        {
            "apiGroups": ["multicluster.x-k8s.io"],
            "resources": ["serviceimports"],
            "verbs": ["get", "list", "watch", "patch"],
        }
    ]
    disabled = InstallOptions(enable_tree=False)
    assert "kosmos-eps-probe" not in deployments(disabled)
    assert any(
        b["metadata"]["name"] == "kosmos-eps-probe" for _, b in manifests.disabled_objects(disabled)
    )


def test_the_prober_can_be_placed_on_tainted_selected_nodes():
    placement = {"nodeSelector": {"a": "b"}, "tolerations": [{"key": "a", "operator": "Exists"}]}
    body = manifests.probe_deployment("kosmos-system", "img", placement)
    pod = body["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"a": "b"}
    assert pod["tolerations"][1:] == [{"key": "a", "operator": "Exists"}]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] == "kosmos.io/node"


def test_migration_rights_are_opt_in_and_removed_when_off():
    wide = "kosmos-cluster-manager-migration"
    default = {b["metadata"]["name"] for r, b in objects() if r == CLUSTERROLES}
    assert wide not in default
    opted = InstallOptions(namespace="kosmos-x", migration=True)
    roles = [b for r, b in objects(opted) if r == CLUSTERROLES and b["metadata"]["name"] == wide]
    assert len(roles) == 1 and roles[0]["rules"][0]["resources"] == ["*"]
    stale = manifests.disabled_objects(InstallOptions(namespace="kosmos-x"))
    assert wide in {b["metadata"]["name"] for _, b in stale}
    assert wide not in {b["metadata"]["name"] for _, b in manifests.disabled_objects(opted)}


def kosmos_args(options: InstallOptions) -> dict[str, list[list[str]]]:
    """Each Deployment's Kosmos-image containers' args (sidecars included)."""
    out: dict[str, list[list[str]]] = {}
    for name, body in deployments(options).items():
        pod = body["spec"]["template"]["spec"]
        containers = [*pod.get("initContainers", []), *pod["containers"]]
        out[name] = [c["args"] for c in containers if c["image"] == options.image]
    return out


def test_log_format_json_reaches_every_kosmos_component_and_text_adds_nothing():
    text = kosmos_args(OPTIONS)
    assert not any("--log-format" in " ".join(a) for args in text.values() for a in args)
    json_options = InstallOptions(**{**OPTIONS.__dict__, "log_format": "json"})
    logged = kosmos_args(json_options)
    assert set(logged) == set(text)
    for name, args in logged.items():
        assert args, f"{name} runs no Kosmos container"
        for each in args:
            assert each[-1] == "--log-format=json", (name, each)
    coredns = deployments(json_options)["kosmos-coredns"]["spec"]["template"]["spec"]
    assert not any(
        "--log-format=json" in c.get("args", [])
        for c in coredns["containers"]
        if c["image"] != json_options.image
    )
