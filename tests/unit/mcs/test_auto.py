import pytest

from kosmos.mcs.auto import wants_export
from kosmos.mcs.hub import Options
from kosmos.mcs.sync import subset

OPTIONS = Options(auto_prefixes=("test",))


def svc(namespace="default", annotations=None, labels=None):
    meta = {"name": "web", "namespace": namespace, "annotations": annotations or {}}
    meta["labels"] = labels or {}
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("service", "want"),
    [
        (svc(annotations={"kosmos.io/auto-create-mcs": "true"}), True),
        (svc(annotations={"kosmos.io/auto-create-mcs": "yes"}), True),
        (svc(annotations={"kosmos.io/auto-create-mcs": "false"}), False),
        (svc("test-a"), True),
        (svc("test-a", annotations={"kosmos.io/auto-create-mcs": "False"}), False),
        (svc("prod"), False),
        (svc("kube-system", annotations={"kosmos.io/auto-create-mcs": "true"}), False),
        (svc("kosmos-system", annotations={"kosmos.io/auto-create-mcs": "true"}), False),
        (svc("test-a", labels={"app.kubernetes.io/managed-by": "kosmos"}), False),
        (svc("test-a", annotations={"kosmos.io/service-import": "test-a/x"}), False),
    ],
)
def test_wants_export(service, want):
    assert wants_export(service, OPTIONS) is want


def test_subset_ignores_server_defaults_but_not_list_length():
    want = {"spec": {"ports": [{"name": "a", "port": 80}]}}
    have = {"spec": {"ports": [{"name": "a", "port": 80, "targetPort": 80}], "clusterIP": "x"}}
    assert subset(want, have)
    assert not subset({"spec": {"ports": []}}, have)
    assert not subset({"spec": {"ports": [{"name": "b", "port": 80}]}}, have)
