import copy
import json

import pytest

from kosmos.api import names
from kosmos.clustertree.convert import (
    apply_converters,
    apply_policies,
    is_host_only_key,
    matching_policy,
    member_scheduling,
    node_requirements,
    require_node_labels,
    selector_matches,
)

REQ = "requiredDuringSchedulingIgnoredDuringExecution"
PREF = "preferredDuringSchedulingIgnoredDuringExecution"


def expr(key, operator, *values):
    out = {"key": key, "operator": operator}
    if values:
        out["values"] = list(values)
    return out


def required(*terms):
    return {"nodeAffinity": {REQ: {"nodeSelectorTerms": list(terms)}}}


def term(*exprs, fields=None):
    out = {"matchExpressions": list(exprs)}
    if fields:
        out["matchFields"] = fields
    return out


# -- selector_matches ---------------------------------------------------------------------

LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param({}, LABELS, True, id="empty-matches-all"),
        pytest.param({}, {}, True, id="empty-matches-unlabelled"),
        pytest.param(None, LABELS, False, id="none-matches-nothing"),
        pytest.param({"matchLabels": {"app": "web"}}, LABELS, True, id="matchLabels"),
        pytest.param({"matchLabels": {"app": "db"}}, LABELS, False, id="matchLabels-differs"),
        pytest.param(
            {"matchLabels": {"app": "web", "x": "y"}}, LABELS, False, id="matchLabels-all-must"
        ),
        pytest.param({"matchExpressions": [expr("app", "In", "a", "web")]}, LABELS, True, id="In"),
        pytest.param({"matchExpressions": [expr("app", "In", "a")]}, LABELS, False, id="In-miss"),
        pytest.param({"matchExpressions": [expr("zz", "In", "a")]}, LABELS, False, id="In-absent"),
        pytest.param(
            {"matchExpressions": [expr("app", "NotIn", "web")]}, LABELS, False, id="NotIn"
        ),
        pytest.param(
            {"matchExpressions": [expr("zz", "NotIn", "a")]}, LABELS, True, id="NotIn-absent-key"
        ),
        pytest.param({"matchExpressions": [expr("tier", "Exists")]}, LABELS, True, id="Exists"),
        pytest.param({"matchExpressions": [expr("zz", "Exists")]}, LABELS, False, id="Exists-no"),
        pytest.param(
            {"matchExpressions": [expr("zz", "DoesNotExist")]}, LABELS, True, id="DoesNotExist"
        ),
        pytest.param(
            {"matchExpressions": [expr("app", "DoesNotExist")]}, LABELS, False, id="DNE-present"
        ),
        pytest.param(
            {"matchLabels": {"app": "web"}, "matchExpressions": [expr("tier", "In", "back")]},
            LABELS,
            False,
            id="labels-and-expressions-ANDed",
        ),
        pytest.param({"matchExpressions": [expr("app", "In")]}, LABELS, False, id="In-no-values"),
        pytest.param(
            {"matchExpressions": [expr("app", "Exists", "web")]}, LABELS, False, id="Exists-values"
        ),
        pytest.param({"matchExpressions": [expr("app", "Gt", "1")]}, LABELS, False, id="bad-op"),
    ],
)
def test_selector_matches(selector, labels, expected):
    assert selector_matches(selector, labels) is expected


def test_node_requirements_turn_match_labels_into_in_sorted_by_key():
    selector = {"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [expr("c", "Exists")]}
    assert node_requirements(selector) == [
        expr("a", "In", "1"),
        expr("b", "In", "2"),
        expr("c", "Exists"),
    ]
    assert node_requirements(None) == [] and node_requirements({}) == []


@pytest.mark.parametrize(
    ("key", "host_only"),
    [
        ("kosmos.io/node", True),
        ("kosmos-io/anything", True),
        ("kubernetes.io/role", True),
        ("node-role.kubernetes.io/agent", True),
        ("kubernetes.io/hostname", True),
        ("topology.kubernetes.io/zone", False),
        ("kubernetes.io/os", False),
        ("disktype", False),
    ],
)
def test_host_only_keys(key, host_only):
    assert is_host_only_key(key) is host_only


# -- member_scheduling --------------------------------------------------------------------

ZONE = expr("topology.kubernetes.io/zone", "In", "z1")
LEAF = expr("kosmos.io/node", "In", "true")
HOSTNAME = expr("kubernetes.io/hostname", "In", "kosmos-m1")
POD_AFFINITY = {
    "podAntiAffinity": {
        REQ: [{"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {}}}]
    }
}
TSC = [
    {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}
]
TOLERATIONS = [{"key": "kosmos.io/node", "operator": "Exists", "effect": "NoSchedule"}]


@pytest.mark.parametrize(
    ("spec", "annotations", "expected"),
    [
        pytest.param(
            {"nodeSelector": {"kosmos.io/node": "true", "disktype": "ssd"}},
            {},
            {"nodeSelector": {"disktype": "ssd"}},
            id="nodeSelector-host-keys-dropped",
        ),
        pytest.param(
            {"nodeSelector": {"kubernetes.io/role": "agent", "node-role.kubernetes.io/x": ""}},
            {},
            {},
            id="nodeSelector-emptied-is-removed",
        ),
        pytest.param(
            {"affinity": required(term(LEAF, ZONE))},
            {},
            {"affinity": required(term(ZONE))},
            id="required-term-keeps-member-keys",
        ),
        pytest.param(
            {"affinity": required(term(LEAF), term(HOSTNAME))},
            {},
            {},
            id="all-terms-host-only-required-removed",
        ),
        pytest.param(
            {"affinity": required(term(HOSTNAME), term(ZONE))},
            {},
            {},
            id="one-term-host-only-disjunction-true",
        ),
        pytest.param(
            {"affinity": required(term(ZONE, fields=[expr("metadata.name", "In", "kosmos-m1")]))},
            {},
            {"affinity": required(term(ZONE))},
            id="matchFields-host-node-names-dropped",
        ),
        pytest.param(
            {
                "affinity": {
                    "nodeAffinity": {
                        PREF: [
                            {"weight": 5, "preference": term(LEAF)},
                            {"weight": 3, "preference": term(HOSTNAME, ZONE)},
                        ]
                    }
                }
            },
            {},
            {"affinity": {"nodeAffinity": {PREF: [{"weight": 3, "preference": term(ZONE)}]}}},
            id="preferred-pruned-and-emptied-dropped",
        ),
        pytest.param(
            {"affinity": {**required(term(LEAF)), **POD_AFFINITY}},
            {},
            {"affinity": POD_AFFINITY},
            id="pod-affinity-kept-node-affinity-pruned",
        ),
        pytest.param(
            {"topologySpreadConstraints": TSC, "tolerations": TOLERATIONS},
            {},
            {"topologySpreadConstraints": TSC, "tolerations": TOLERATIONS},
            id="topology-and-tolerations-kept",
        ),
        pytest.param(
            {"nodeSelector": {"disktype": "ssd"}, "tolerations": TOLERATIONS},
            {
                names.ANNOTATION_CLUSTER_SELECTOR: json.dumps(
                    {"nodeSelector": {"gpu": "a100"}, "affinity": required(term(HOSTNAME))}
                )
            },
            {
                "nodeSelector": {"gpu": "a100"},
                "affinity": required(term(HOSTNAME)),
                "tolerations": TOLERATIONS,
            },
            id="cluster-selector-replaces-present-keys-verbatim",
        ),
        pytest.param(
            {"nodeSelector": {"kosmos.io/node": "true", "disktype": "ssd"}, "tolerations": []},
            {names.ANNOTATION_CLUSTER_SELECTOR: json.dumps({"tolerations": [{"key": "t"}]})},
            {"nodeSelector": {"disktype": "ssd"}, "tolerations": [{"key": "t"}]},
            id="cluster-selector-others-still-pruned",
        ),
        pytest.param(
            {"tolerations": TOLERATIONS},
            {names.ANNOTATION_CLUSTER_SELECTOR: json.dumps({"tolerations": None})},
            {},
            id="cluster-selector-null-clears",
        ),
        pytest.param(
            {"nodeSelector": {"disktype": "ssd"}},
            {names.ANNOTATION_CLUSTER_SELECTOR: "{not json"},
            {"nodeSelector": {"disktype": "ssd"}},
            id="cluster-selector-unreadable-ignored",
        ),
    ],
)
def test_member_scheduling(spec, annotations, expected):
    before = copy.deepcopy(spec)
    assert member_scheduling(spec, annotations) == expected
    assert spec == before


@pytest.mark.parametrize(
    ("spec", "selector", "expected"),
    [
        pytest.param({}, None, {}, id="no-selector-no-change"),
        pytest.param(
            {},
            {"matchLabels": {"pool": "a"}},
            {"affinity": required(term(expr("pool", "In", "a")))},
            id="creates-a-term",
        ),
        pytest.param(
            {"affinity": required(term(ZONE), term(expr("gpu", "Exists")))},
            {"matchLabels": {"pool": "a"}, "matchExpressions": [expr("x", "NotIn", "1")]},
            {
                "affinity": required(
                    term(ZONE, expr("pool", "In", "a"), expr("x", "NotIn", "1")),
                    term(expr("gpu", "Exists"), expr("pool", "In", "a"), expr("x", "NotIn", "1")),
                )
            },
            id="ANDed-into-every-term",
        ),
        pytest.param(
            {"affinity": required(term(expr("pool", "In", "a")))},
            {"matchLabels": {"pool": "a"}},
            {"affinity": required(term(expr("pool", "In", "a")))},
            id="idempotent",
        ),
    ],
)
def test_require_node_labels(spec, selector, expected):
    before = copy.deepcopy(spec)
    assert require_node_labels(spec, selector) == expected
    assert spec == before


# -- convert policies ---------------------------------------------------------------------


def policy(name, converters, label_selector=None, leaf_selector=None):
    spec = {"labelSelector": {} if label_selector is None else label_selector}
    if converters is not None:
        spec["converters"] = converters
    if leaf_selector is not None:
        spec["leafNodeSelector"] = leaf_selector
    return {"metadata": {"name": name}, "spec": spec}


ADD_SCHED = {"schedulerNameConverter": {"convertType": "add", "schedulerName": "s"}}


@pytest.mark.parametrize(
    ("policies", "pod_labels", "node_labels", "expected"),
    [
        pytest.param([], {}, {}, None, id="none"),
        pytest.param([policy("a", ADD_SCHED)], {}, {}, "a", id="empty-selector-matches"),
        pytest.param(
            [policy("a", ADD_SCHED, {"matchLabels": {"app": "db"}}), policy("b", ADD_SCHED)],
            {"app": "web"},
            {},
            "b",
            id="label-selector-must-match",
        ),
        pytest.param(
            [policy("a", ADD_SCHED), policy("b", ADD_SCHED)], {}, {}, "a", id="first-wins"
        ),
        pytest.param(
            [policy("a", None), policy("b", {}), policy("c", ADD_SCHED)],
            {},
            {},
            "c",
            id="policies-without-converters-skipped",
        ),
        pytest.param(
            [
                policy("a", ADD_SCHED, leaf_selector={"matchLabels": {"zone": "z2"}}),
                policy("b", ADD_SCHED, leaf_selector={"matchLabels": {"zone": "z1"}}),
            ],
            {},
            {"zone": "z1"},
            "b",
            id="leaf-node-selector",
        ),
        pytest.param(
            [{"metadata": {"name": "a"}, "spec": {"converters": ADD_SCHED}}],
            {},
            {},
            None,
            id="missing-label-selector-matches-nothing",
        ),
    ],
)
def test_matching_policy(policies, pod_labels, node_labels, expected):
    found = matching_policy(policies, pod_labels, node_labels)
    assert (found["metadata"]["name"] if found else None) == expected


def conv(key, convert_type, field, value=None):
    out = {"convertType": convert_type}
    if value is not None:
        out[field] = value
    return {key: out}


HOST_ALIASES = [{"ip": "10.0.0.1", "hostnames": ["db"]}]


@pytest.mark.parametrize(
    ("spec", "converters", "expected"),
    [
        pytest.param(
            {},
            conv("schedulerNameConverter", "add", "schedulerName", "s"),
            {"schedulerName": "s"},
            id="add-sets-absent",
        ),
        pytest.param(
            {"schedulerName": "mine"},
            conv("schedulerNameConverter", "add", "schedulerName", "s"),
            {"schedulerName": "mine"},
            id="add-keeps-present",
        ),
        pytest.param(
            {"nodeSelector": {}},
            conv("nodeSelectorConverter", "add", "nodeSelector", {"a": "b"}),
            {"nodeSelector": {"a": "b"}},
            id="add-sets-empty",
        ),
        pytest.param(
            {"nodeName": "n1"},
            conv("nodeNameConverter", "replace", "nodeName", "n2"),
            {"nodeName": "n2"},
            id="replace-nodeName",
        ),
        pytest.param(
            {"tolerations": TOLERATIONS},
            conv("tolerationConverter", "remove", "tolerations"),
            {},
            id="remove-tolerations",
        ),
        pytest.param(
            {"affinity": POD_AFFINITY},
            conv("affinityConverter", "replace", "affinity", required(term(ZONE))),
            {"affinity": required(term(ZONE))},
            id="replace-affinity",
        ),
        pytest.param(
            {"affinity": POD_AFFINITY},
            conv("topologySpreadConstraintsConverter", "add", "topologySpreadConstraints", TSC),
            {"affinity": POD_AFFINITY, "topologySpreadConstraints": TSC},
            id="add-topology-checks-its-own-field",
        ),
        pytest.param(
            {},
            conv("hostAliasesConverter", "add", "hostAliases", HOST_ALIASES),
            {"hostAliases": HOST_ALIASES},
            id="add-hostAliases",
        ),
        pytest.param(
            {"schedulerName": "x"},
            conv("schedulerNameConverter", "replace", "schedulerName"),
            {"schedulerName": "x"},
            id="replace-without-payload-does-nothing",
        ),
        pytest.param(
            {"nodeName": "a"},
            {
                **conv("nodeNameConverter", "remove", "nodeName"),
                **conv("schedulerNameConverter", "replace", "schedulerName", "s"),
                **conv("nodeSelectorConverter", "replace", "nodeSelector", {"k": "v"}),
            },
            {"schedulerName": "s", "nodeSelector": {"k": "v"}},
            id="several-converters",
        ),
    ],
)
def test_apply_converters(spec, converters, expected):
    before = copy.deepcopy(spec)
    assert apply_converters(spec, converters) == expected
    assert spec == before


def test_apply_policies_rewrites_a_copy_and_names_the_policy():
    pod = {"metadata": {"labels": {"app": "web"}}, "spec": {"schedulerName": "x"}}
    before = copy.deepcopy(pod)
    replace = {"schedulerNameConverter": {"convertType": "replace", "schedulerName": "y"}}
    policies = [policy("p", replace, {"matchExpressions": [expr("app", "In", "web")]})]
    out, name = apply_policies(pod, policies, {})
    assert name == "p" and out["spec"]["schedulerName"] == "y"
    assert pod == before
    unchanged, none = apply_policies(pod, [], {})
    assert none is None and unchanged == pod and unchanged is not pod
