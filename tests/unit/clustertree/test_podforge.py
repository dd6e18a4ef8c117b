import copy
import json

import orjson
import pytest

from kosmos.api import names
from kosmos.clustertree.placement import Placement
from kosmos.clustertree.podforge import (
    ANNOTATION_SYNCED_KEYS,
    Dependencies,
    HostContext,
    dependencies,
    host_uid,
    is_kosmos_pod,
    member_pod,
    member_status,
    mutable_patch,
)

UID = "1111-2222"
LEAF = "kosmos-m1"
WHOLE = Placement(cluster="m1", host_node=LEAF)
ONE = Placement(cluster="m1", host_node=LEAF, mode="one-to-one", member_node="worker-3")
GROUP = Placement(
    cluster="m1", host_node=LEAF, mode="group", node_selector={"matchLabels": {"pool": "a"}}
)
REQ = "requiredDuringSchedulingIgnoredDuringExecution"
TOKEN_MOUNT = {
    "name": "kube-api-access-abcde",
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    "readOnly": True,
}
TOKEN_VOLUME = {
    "name": "kube-api-access-abcde",
    "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "x"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "x"}}]}},
        ]
    },
}
DEFAULT_TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {"key": "kosmos.io/node", "operator": "Exists", "effect": "NoSchedule"},
]


def host_pod(**spec_changes):
    """A pod as the host apiserver returns it after admission and scheduling."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "generateName": "web-",
            "namespace": "apps",
            "uid": UID,
            "resourceVersion": "42",
            "generation": 1,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "deletionTimestamp": None,
            "labels": {"app": "web"},
            "annotations": {
                "team": "a",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
            "ownerReferences": [{"kind": "StatefulSet", "name": "web", "uid": "o"}],
            "finalizers": ["x/y"],
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "nodeName": LEAF,
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "priority": 0,
            "preemptionPolicy": "PreemptLowerPriority",
            "enableServiceLinks": True,
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1",
                    "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "volumeMounts": [TOKEN_MOUNT],
                }
            ],
            "volumes": [TOKEN_VOLUME],
            "tolerations": DEFAULT_TOLERATIONS,
        },
        "status": {"phase": "Pending", "hostIP": "10.0.0.9"},
    }
    pod["spec"].update(spec_changes)
    return copy.deepcopy(pod)


def forge(pod=None, placement=WHOLE, **ctx):
    return member_pod(pod or host_pod(), placement, HostContext(**ctx))


def container(pod, index=0, key="containers"):
    return pod["spec"][key][index]


# -- metadata -----------------------------------------------------------------------------


def test_metadata_keeps_identity_and_marks_the_copy():
    meta = forge()["metadata"]
    assert meta["name"] == "web-0" and meta["namespace"] == "apps"
    assert meta["labels"] == {
        "app": "web",
        names.LABEL_POD: "true",
        names.LABEL_MANAGED_BY: names.MANAGED_BY_KOSMOS,
    }
    annotations = dict(meta["annotations"])
    synced = json.loads(annotations.pop(ANNOTATION_SYNCED_KEYS))
    assert annotations == {
        "team": "a",
        names.ANNOTATION_HOST_POD_UID: UID,
        names.ANNOTATION_HOST_NODE: LEAF,
    }
    assert synced == {"annotations": sorted(annotations), "labels": sorted(meta["labels"])}


@pytest.mark.parametrize(
    "key",
    [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "ownerReferences",
        "managedFields",
        "finalizers",
        "deletionTimestamp",
        "generateName",
    ],
)
def test_host_metadata_is_dropped(key):
    assert key not in forge()["metadata"]


def test_host_values_of_kosmos_annotations_are_not_trusted():
    pod = host_pod()
    pod["metadata"]["annotations"][names.ANNOTATION_CONVERT_POLICY] = "forged"
    pod["metadata"]["annotations"][names.ANNOTATION_HOST_POD_UID] = "forged"
    annotations = forge(pod)["metadata"]["annotations"]
    assert names.ANNOTATION_CONVERT_POLICY not in annotations
    assert annotations[names.ANNOTATION_HOST_POD_UID] == UID


# -- spec ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placement", "spec_changes", "check"),
    [
        pytest.param(WHOLE, {}, lambda p: "status" not in p, id="status-dropped"),
        pytest.param(WHOLE, {}, lambda p: "nodeName" not in p["spec"], id="nodeName-cleared"),
        pytest.param(
            ONE, {}, lambda p: p["spec"]["nodeName"] == "worker-3", id="one-to-one-pinned"
        ),
        pytest.param(
            WHOLE,
            {"schedulerName": "kosmos-scheduler"},
            lambda p: "schedulerName" not in p["spec"],
            id="custom-scheduler-dropped",
        ),
        pytest.param(
            WHOLE,
            {},
            lambda p: p["spec"]["schedulerName"] == "default-scheduler",
            id="default-scheduler-kept",
        ),
        pytest.param(
            WHOLE,
            {"overhead": {"cpu": "10m"}, "priorityClassName": "high", "priority": 1000},
            lambda p: (
                not {"priority", "preemptionPolicy", "overhead"} & set(p["spec"])
                and p["spec"]["priorityClassName"] == "high"
            ),
            id="admission-computed-fields-dropped",
        ),
        pytest.param(
            WHOLE,
            {"ephemeralContainers": [{"name": "debug", "image": "busybox"}]},
            lambda p: "ephemeralContainers" not in p["spec"],
            id="ephemeral-containers-dropped",
        ),
        pytest.param(
            WHOLE,
            {"automountServiceAccountToken": False, "serviceAccountName": "robot"},
            lambda p: (
                p["spec"]["automountServiceAccountToken"] is False
                and p["spec"]["serviceAccountName"] == "robot"
            ),
            id="service-account-settings-kept",
        ),
    ],
)
def test_spec_rules(placement, spec_changes, check):
    assert check(member_pod(host_pod(**spec_changes), placement, HostContext()))


def test_host_token_volume_and_its_mounts_are_removed_everywhere():
    legacy = {"name": "default-token-x1", "secret": {"secretName": "default-token-x1"}}
    robot = {"name": "robot-token-x2", "secret": {"secretName": "robot-token-x2"}}
    data = {"name": "data", "emptyDir": {}}
    mounts = [TOKEN_MOUNT, {"name": "default-token-x1", "mountPath": "/l"}, {"name": "data"}]
    pod = host_pod(
        serviceAccountName="robot",
        volumes=[TOKEN_VOLUME, legacy, robot, data],
        initContainers=[{"name": "init", "image": "i", "volumeMounts": [TOKEN_MOUNT]}],
    )
    pod["spec"]["containers"][0]["volumeMounts"] = mounts
    spec = forge(pod)["spec"]
    assert spec["volumes"] == [data]
    assert container({"spec": spec})["volumeMounts"] == [{"name": "data"}]
    assert "volumeMounts" not in container({"spec": spec}, key="initContainers")


def test_user_projected_token_and_root_ca_stay():
    user = {
        "name": "vault-token",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"audience": "vault", "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt"}},
            ]
        },
    }
    ca = {"name": "ca", "configMap": {"name": "kube-root-ca.crt"}}
    pod = host_pod(volumes=[TOKEN_VOLUME, user, ca])
    pod["spec"]["containers"][0]["volumeMounts"] = [TOKEN_MOUNT, {"name": "vault-token"}]
    spec = forge(pod)["spec"]
    assert spec["volumes"] == [user, ca]
    assert container({"spec": spec})["volumeMounts"] == [{"name": "vault-token"}]


# -- environment --------------------------------------------------------------------------


def field(path):
    return {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}


@pytest.mark.parametrize(
    ("value_from", "expected"),
    [
        pytest.param(field("metadata.uid"), {"value": UID}, id="uid-resolved"),
        pytest.param(field("spec.nodeName"), {"value": LEAF}, id="nodeName-resolved"),
        *[
            pytest.param(field(path), {"valueFrom": field(path)}, id=f"{path}-kept")
            for path in (
                "metadata.name",
                "metadata.namespace",
                "metadata.labels['app']",
                "status.podIP",
                "status.hostIP",
                "spec.serviceAccountName",
            )
        ],
        pytest.param(
            {"configMapKeyRef": {"name": "cm", "key": "k"}},
            {"valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
            id="configMapKeyRef-kept",
        ),
        pytest.param(
            {"secretKeyRef": {"name": "s", "key": "k"}},
            {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            id="secretKeyRef-kept",
        ),
        pytest.param(
            {"resourceFieldRef": {"resource": "limits.cpu"}},
            {"valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            id="resourceFieldRef-kept",
        ),
    ],
)
def test_env_values_only_the_host_knows_are_resolved(value_from, expected):
    pod = host_pod()
    pod["spec"]["containers"][0]["env"] = [{"name": "V", "valueFrom": value_from}]
    pod["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "s"}}]
    out = container(forge(pod))
    assert out["env"] == [{"name": "V", **expected}]
    assert out["envFrom"] == [{"secretRef": {"name": "s"}}]


def service(name, ip, *ports, namespace="apps"):
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": list(ports)},
    }


REDIS = service(
    "redis-master",
    "10.96.0.7",
    {"name": "redis", "port": 6379, "protocol": "TCP"},
    {"name": "metrics", "port": 9121, "protocol": "UDP"},
)
REDIS_ENV = [
    ("REDIS_MASTER_SERVICE_HOST", "10.96.0.7"),
    ("REDIS_MASTER_SERVICE_PORT", "6379"),
    ("REDIS_MASTER_SERVICE_PORT_REDIS", "6379"),
    ("REDIS_MASTER_SERVICE_PORT_METRICS", "9121"),
    ("REDIS_MASTER_PORT", "tcp://10.96.0.7:6379"),
    ("REDIS_MASTER_PORT_6379_TCP", "tcp://10.96.0.7:6379"),
    ("REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"),
    ("REDIS_MASTER_PORT_6379_TCP_PORT", "6379"),
    ("REDIS_MASTER_PORT_6379_TCP_ADDR", "10.96.0.7"),
    ("REDIS_MASTER_PORT_9121_UDP", "udp://10.96.0.7:9121"),
    ("REDIS_MASTER_PORT_9121_UDP_PROTO", "udp"),
    ("REDIS_MASTER_PORT_9121_UDP_PORT", "9121"),
    ("REDIS_MASTER_PORT_9121_UDP_ADDR", "10.96.0.7"),
]


def env_pairs(c):
    return [(v["name"], v.get("value")) for v in c.get("env") or []]


@pytest.mark.parametrize(
    ("services", "enable", "expected"),
    [
        pytest.param([REDIS], None, REDIS_ENV, id="kubelet-format"),
        pytest.param([REDIS], False, [], id="links-disabled-by-user"),
        pytest.param(
            [service("db", "None", {"port": 5432}), service("ext", "", {"port": 1})],
            None,
            [],
            id="headless-and-external-skipped",
        ),
        pytest.param(
            [
                service(
                    "kubernetes", "10.96.0.1", {"name": "https", "port": 443}, namespace="default"
                )
            ],
            None,
            [],
            id="host-kubernetes-service-skipped",
        ),
        pytest.param([service("x", "10.0.0.1", {"port": 1}, namespace="other")], None, [], id="ns"),
        pytest.param(
            [service("v6", "fd00::7", {"port": 80})],
            None,
            [
                ("V6_SERVICE_HOST", "fd00::7"),
                ("V6_SERVICE_PORT", "80"),
                ("V6_PORT", "tcp://[fd00::7]:80"),
                ("V6_PORT_80_TCP", "tcp://[fd00::7]:80"),
                ("V6_PORT_80_TCP_PROTO", "tcp"),
                ("V6_PORT_80_TCP_PORT", "80"),
                ("V6_PORT_80_TCP_ADDR", "fd00::7"),
            ],
            id="ipv6-bracketed",
        ),
        pytest.param(
            [service("b", "10.0.0.2", {"port": 2}), service("a", "10.0.0.1", {"port": 1})],
            None,
            "sorted",
            id="sorted-by-name",
        ),
    ],
)
def test_service_links(services, enable, expected):
    changes = {} if enable is None else {"enableServiceLinks": enable}
    pod = forge(host_pod(**changes), services=services)
    assert pod["spec"]["enableServiceLinks"] is False
    if expected == "sorted":
        env = [n for n, _ in env_pairs(container(pod))]
        assert env.index("A_SERVICE_HOST") < env.index("B_SERVICE_HOST")
    else:
        assert env_pairs(container(pod)) == expected


def test_service_links_come_first_and_the_containers_own_env_wins():
    pod = host_pod(initContainers=[{"name": "init", "image": "i"}])
    pod["spec"]["containers"][0]["env"] = [
        {"name": "REDIS_MASTER_SERVICE_HOST", "value": "mine"},
        {"name": "URL", "value": "$(REDIS_MASTER_SERVICE_HOST):1"},
    ]
    out = forge(pod, services=[REDIS])
    pairs = env_pairs(container(out))
    assert pairs[-2:] == [
        ("REDIS_MASTER_SERVICE_HOST", "mine"),
        ("URL", "$(REDIS_MASTER_SERVICE_HOST):1"),
    ]
    assert [n for n, _ in pairs].count("REDIS_MASTER_SERVICE_HOST") == 1
    assert env_pairs(container(out, key="initContainers")) == REDIS_ENV


# -- scheduling, placement, policies ------------------------------------------------------


def test_scheduling_intent_without_annotation_prunes_host_keys():
    pod = host_pod(nodeSelector={"kosmos.io/node": "true", "disktype": "ssd"})
    spec = forge(pod)["spec"]
    assert spec["nodeSelector"] == {"disktype": "ssd"}
    assert spec["tolerations"] == DEFAULT_TOLERATIONS


def test_cluster_selector_annotation_replaces_fields():
    pod = host_pod(nodeSelector={"disktype": "ssd"})
    pod["metadata"]["annotations"][names.ANNOTATION_CLUSTER_SELECTOR] = json.dumps(
        {"nodeSelector": {"gpu": "yes"}, "tolerations": [{"key": "gpu", "operator": "Exists"}]}
    )
    spec = forge(pod)["spec"]
    assert spec["nodeSelector"] == {"gpu": "yes"}
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists"}]


def test_group_mode_requires_the_group_in_every_term():
    zone = {"key": "zone", "operator": "In", "values": ["z1"]}
    pod = host_pod(
        affinity={"nodeAffinity": {REQ: {"nodeSelectorTerms": [{"matchExpressions": [zone]}]}}}
    )
    terms = forge(pod, GROUP)["spec"]["affinity"]["nodeAffinity"][REQ]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [zone, {"key": "pool", "operator": "In", "values": ["a"]}]}
    ]


def pcp(name, converters, **spec):
    return {
        "metadata": {"name": name},
        "spec": {"labelSelector": {}, "converters": converters, **spec},
    }


def test_convert_policy_has_the_last_word_and_is_recorded():
    pod = host_pod(nodeSelector={"disktype": "ssd"})
    policies = [
        pcp(
            "a-other",
            {"nodeSelectorConverter": {"convertType": "remove"}},
            leafNodeSelector={"matchLabels": {"zone": "z9"}},
        ),
        pcp(
            "b-mine",
            {"nodeSelectorConverter": {"convertType": "replace", "nodeSelector": {"x": "y"}}},
        ),
    ]
    out = forge(pod, policies=policies, host_node_labels={"zone": "z1"})
    assert out["spec"]["nodeSelector"] == {"x": "y"}
    assert out["metadata"]["annotations"][names.ANNOTATION_CONVERT_POLICY] == "b-mine"


def test_policy_leaf_selector_falls_back_to_placement_labels():
    policies = [
        pcp(
            "p",
            {"schedulerNameConverter": {"convertType": "replace", "schedulerName": "s"}},
            leafNodeSelector={"matchLabels": {"zone": "z1"}},
        ),
    ]
    placement = Placement(cluster="m1", host_node=LEAF, node_labels={"zone": "z1"})
    assert forge(placement=placement, policies=policies)["spec"]["schedulerName"] == "s"
    assert forge(policies=policies)["spec"]["schedulerName"] == "default-scheduler"


def test_one_to_one_pin_beats_a_node_name_converter():
    policies = [pcp("p", {"nodeNameConverter": {"convertType": "replace", "nodeName": "other"}})]
    assert forge(placement=ONE, policies=policies)["spec"]["nodeName"] == "worker-3"
    assert forge(policies=policies)["spec"]["nodeName"] == "other"


def test_group_placement_survives_an_affinity_policy():
    policies = [pcp("p", {"affinityConverter": {"convertType": "replace", "affinity": {}}})]
    spec = forge(placement=GROUP, policies=policies)["spec"]
    assert spec["affinity"]["nodeAffinity"][REQ]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]}
    ]


# -- purity and determinism ---------------------------------------------------------------


def reversed_keys(value):
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


def test_deterministic_and_pure():
    pod = host_pod(nodeSelector={"kosmos.io/node": "true", "b": "1", "a": "2"})
    pod["metadata"]["labels"].update({"z": "1", "b": "2"})
    ctx = {"services": [REDIS, service("a", "10.0.0.1", {"port": 1})], "policies": []}
    before = copy.deepcopy(pod)
    first = orjson.dumps(forge(pod, GROUP, **ctx), option=orjson.OPT_SORT_KEYS)
    assert pod == before
    again = orjson.dumps(forge(pod, GROUP, **ctx), option=orjson.OPT_SORT_KEYS)
    shuffled = orjson.dumps(forge(reversed_keys(pod), GROUP, **ctx), option=orjson.OPT_SORT_KEYS)
    assert first == again == shuffled


# -- dependencies -------------------------------------------------------------------------


def deps_of(**spec):
    return dependencies(host_pod(**spec))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {},
            Dependencies(frozenset(), frozenset(), frozenset(), "default"),
            id="token-volume-and-root-ca-excluded",
        ),
        pytest.param(
            {
                "serviceAccountName": "robot",
                "volumes": [
                    {"name": "c", "configMap": {"name": "cm1"}},
                    {"name": "ca", "configMap": {"name": "kube-root-ca.crt"}},
                    {"name": "s", "secret": {"secretName": "s1"}},
                    {"name": "legacy", "secret": {"secretName": "robot-token-abc"}},
                    {"name": "robot-token-abc", "secret": {"secretName": "robot-token-abc"}},
                    {
                        "name": "p",
                        "projected": {
                            "sources": [
                                {"configMap": {"name": "cm2"}},
                                {"secret": {"name": "s2"}},
                                {"serviceAccountToken": {"path": "t"}},
                            ]
                        },
                    },
                    {"name": "v", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                    {"name": "k", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "s3"}}},
                    {"name": "r", "rbd": {"image": "i", "secretRef": {"name": "s4"}}},
                    {"name": "f", "cephfs": {"monitors": [], "secretRef": {"name": "s5"}}},
                    {"name": "e", "emptyDir": {}},
                ],
                "imagePullSecrets": [{"name": "pull"}],
            },
            Dependencies(
                configmaps=frozenset({"cm1", "cm2"}),
                secrets=frozenset({"s1", "robot-token-abc", "s2", "s3", "s4", "s5", "pull"}),
                pvcs=frozenset({"data", "web-0-scratch"}),
                service_account="robot",
            ),
            id="volumes",
        ),
        pytest.param(
            {
                "containers": [
                    {
                        "name": "a",
                        "env": [
                            {
                                "name": "A",
                                "valueFrom": {"configMapKeyRef": {"name": "cm1", "key": "k"}},
                            },
                            {
                                "name": "B",
                                "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}},
                            },
                            {"name": "C", "value": "x"},
                        ],
                    }
                ],
                "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cm2"}}]}],
                "ephemeralContainers": [{"name": "e", "envFrom": [{"secretRef": {"name": "s2"}}]}],
            },
            Dependencies(
                configmaps=frozenset({"cm1", "cm2"}),
                secrets=frozenset({"s1", "s2"}),
                pvcs=frozenset(),
                service_account="default",
            ),
            id="env-of-all-containers",
        ),
        pytest.param(
            {"serviceAccountName": None},
            Dependencies(frozenset(), frozenset(), frozenset(), "default"),
            id="service-account-defaults",
        ),
    ],
)
def test_dependencies(spec, expected):
    assert deps_of(**spec) == expected


# -- live member pods ---------------------------------------------------------------------


UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}


def as_created_in_member(pod):
    """What the member apiserver returns: defaults, its own token volume, its annotations."""
    live = copy.deepcopy(pod)
    live["metadata"].update(uid="m-uid", resourceVersion="7", creationTimestamp="now")
    live["metadata"]["annotations"]["cni.projectcalico.org/podIP"] = "10.1.0.5/32"
    live["metadata"]["labels"]["sidecar.istio.io/inject"] = "false"
    spec = live["spec"]
    spec.update(nodeName="worker-1", priority=0, dnsPolicy="ClusterFirst", restartPolicy="Always")
    spec.setdefault("volumes", []).append({**TOKEN_VOLUME, "name": "kube-api-access-zzzzz"})
    spec["tolerations"] = [*spec.get("tolerations", []), UNREACHABLE]
    for c in spec["containers"]:
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", "Always")
        c.setdefault("volumeMounts", []).append({**TOKEN_MOUNT, "name": "kube-api-access-zzzzz"})
    live["status"] = {"phase": "Running"}
    return live


@pytest.mark.parametrize("placement", [WHOLE, ONE, GROUP])
def test_member_defaulting_causes_no_patch(placement):
    desired = forge(placement=placement, services=[REDIS])
    assert mutable_patch(as_created_in_member(desired), desired) is None


def _set(path, value):
    def apply(obj):
        *parents, last = path
        for key in parents:
            obj = obj[key]
        obj[last] = value

    return apply


def synced(pod):
    return {ANNOTATION_SYNCED_KEYS: pod["metadata"]["annotations"][ANNOTATION_SYNCED_KEYS]}


def new_toleration(pod):
    return {"spec": {"tolerations": [*DEFAULT_TOLERATIONS, UNREACHABLE, {"key": "t"}]}}


@pytest.mark.parametrize(
    ("change", "live_change", "expected"),
    [
        pytest.param(
            _set(("spec", "containers", 0, "image"), "nginx:2"),
            None,
            {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}},
            id="image",
        ),
        pytest.param(
            _set(("spec", "initContainers"), [{"name": "init", "image": "i:2"}]),
            lambda live: live["spec"].update(initContainers=[{"name": "init", "image": "i:1"}]),
            {"spec": {"initContainers": [{"name": "init", "image": "i:2"}]}},
            id="init-image",
        ),
        pytest.param(
            _set(("spec", "activeDeadlineSeconds"), 60),
            None,
            {"spec": {"activeDeadlineSeconds": 60}},
            id="deadline-set",
        ),
        pytest.param(
            _set(("spec", "activeDeadlineSeconds"), 60),
            _set(("spec", "activeDeadlineSeconds"), 30),
            None,
            id="deadline-never-raised",
        ),
        pytest.param(
            _set(("spec", "tolerations"), [*DEFAULT_TOLERATIONS, {"key": "t", "value": ""}]),
            None,
            new_toleration,
            id="toleration-added-to-live-list",
        ),
        pytest.param(
            _set(("spec", "tolerations"), [{**DEFAULT_TOLERATIONS[1], "value": ""}]),
            None,
            None,
            id="toleration-removal-and-empty-fields-ignored",
        ),
        pytest.param(
            _set(("metadata", "labels"), {"app": "web", "v": "2"}),
            None,
            lambda pod: {"metadata": {"labels": {"v": "2"}, "annotations": synced(pod)}},
            id="label-added",
        ),
        pytest.param(
            _set(("metadata", "labels"), {}),
            None,
            lambda pod: {"metadata": {"labels": {"app": None}, "annotations": synced(pod)}},
            id="label-removed-member-labels-kept",
        ),
        pytest.param(
            _set(("metadata", "annotations"), {"team": "b"}),
            None,
            {"metadata": {"annotations": {"team": "b"}}},
            id="annotation-changed",
        ),
        pytest.param(
            _set(("spec", "nodeSelector"), {"disktype": "ssd"}),
            None,
            None,
            id="immutable-fields-ignored",
        ),
    ],
)
def test_mutable_patch(change, live_change, expected):
    live = as_created_in_member(forge())
    if live_change:
        live_change(live)
    changed = host_pod()
    change(changed)
    desired = forge(changed)
    if callable(expected):
        expected = expected(desired)
    assert mutable_patch(live, desired) == expected


def test_patch_removes_only_keys_kosmos_set():
    live = as_created_in_member(forge())
    changed = host_pod()
    changed["metadata"]["annotations"] = {}
    patch = mutable_patch(live, forge(changed))
    annotations = patch["metadata"]["annotations"]
    assert annotations["team"] is None
    assert "cni.projectcalico.org/podIP" not in annotations
    live_without_record = as_created_in_member(forge())
    del live_without_record["metadata"]["annotations"][ANNOTATION_SYNCED_KEYS]
    patch = mutable_patch(live_without_record, forge(changed))
    assert "team" not in patch["metadata"]["annotations"]


def test_topology_labels_belong_to_the_member_binding():
    """The host binding gives the host pod the leaf's zone and region; the member's binding
    gives the member pod its node's: neither copied nor patched back (a write per pod)."""
    host = host_pod()
    host["metadata"]["labels"].update(
        {names.LABEL_ZONE: LEAF, names.LABEL_REGION: "r1", "app": "web"}
    )
    desired = forge(host)
    assert names.LABEL_ZONE not in desired["metadata"]["labels"]
    assert names.LABEL_REGION not in desired["metadata"]["labels"]
    live = as_created_in_member(desired)
    live["metadata"]["labels"].update({names.LABEL_ZONE: "eu-west-1c", names.LABEL_REGION: "r2"})
    assert mutable_patch(live, desired) is None
    older = copy.deepcopy(live)  # made before: its record lists the topology labels
    keys = json.loads(older["metadata"]["annotations"][ANNOTATION_SYNCED_KEYS])
    keys["labels"] += [names.LABEL_REGION, names.LABEL_ZONE]
    older["metadata"]["annotations"][ANNOTATION_SYNCED_KEYS] = json.dumps(keys)
    patch = mutable_patch(older, desired)
    assert patch is not None
    assert "labels" not in patch["metadata"]  # only its record is rewritten, once


# -- small accessors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "kosmos", "uid"),
    [
        (forge(), True, UID),
        ({"metadata": {"labels": {names.LABEL_POD: "false"}}}, False, None),
        ({"metadata": {}}, False, None),
        ({}, False, None),
    ],
)
def test_accessors(pod, kosmos, uid):
    assert is_kosmos_pod(pod) is kosmos
    assert host_uid(pod) == uid


def test_member_status_is_a_copy_of_the_member_status():
    member = {"status": {"phase": "Running", "podIP": "10.1.0.5", "hostIP": "192.168.0.3"}}
    status = member_status(member, host_pod())
    assert status == member["status"] and status is not member["status"]
    assert member_status({}, host_pod()) == {}


# -- central DNS (--no-multi-cluster-service) ----------------------------------------------


def test_central_dns_points_cluster_first_pods_at_the_host_dns():
    spec = forge(host_dns="10.96.0.10")["spec"]
    assert spec["dnsPolicy"] == "None"
    assert spec["dnsConfig"] == {
        "nameservers": ["10.96.0.10"],
        "searches": ["apps.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        "options": [{"name": "ndots", "value": "5"}],
    }
    assert "dnsConfig" not in forge()["spec"]  # off: the member's own DNS


def test_central_dns_keeps_the_pods_own_dns_config_after_ours():
    own = {
        "searches": ["corp.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
    }
    pod = host_pod(dnsPolicy="ClusterFirstWithHostNet", hostNetwork=True, dnsConfig=own)
    config = forge(pod, host_dns="10.96.0.10")["spec"]["dnsConfig"]
    assert config["searches"][-1] == "corp.example"
    assert config["options"] == [{"name": "ndots", "value": "5"}, {"name": "edns0"}]


def test_central_dns_leaves_default_none_and_host_network_cluster_first_alone():
    for changes in (
        {"dnsPolicy": "Default"},
        {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"]}},
        {"dnsPolicy": "ClusterFirst", "hostNetwork": True},
    ):
        spec = forge(host_pod(**changes), host_dns="10.96.0.10")["spec"]
        assert spec["dnsPolicy"] == changes["dnsPolicy"]
        assert spec.get("dnsConfig") == changes.get("dnsConfig")
