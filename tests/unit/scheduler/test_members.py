"""The extender's member set: which Clusters it watches, and the Warning when it cannot."""

import base64

from kosmos.api.names import ROOT_CLUSTER_NAME as HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import Forbidden
from kosmos.scheduler.members import registry


class Host:
    def __init__(self, error=None, secret=None):
        self.error, self.secret = error, secret

    async def get(self, resource, name, namespace):
        if self.error is not None:
            raise self.error
        return self.secret


class Manager:
    name = "kosmos-scheduler-extender"

    def __init__(self, host):
        self.host = host
        self.cluster_names = [HOST]
        self.added = []

    def client(self, name):
        return self.host

    def add_cluster(self, name, client):
        self.added.append(name)
        self.cluster_names.append(name)


class Clusters:
    def __init__(self, *clusters):
        self.store = {c["metadata"]["name"]: c for c in clusters}


class Recorder:
    def __init__(self):
        self.events = []

    async def record(self, obj, type_, reason, message):
        self.events.append((obj["metadata"]["name"], type_, reason, message))


def cluster(name, *, tree=True, kubeconfig=None):
    spec = {"clusterTreeOptions": {"enable": tree}}
    if kubeconfig is None:
        spec["kubeconfigSecretRef"] = {"name": f"{name}-kubeconfig"}
    else:
        spec["kubeconfig"] = base64.b64encode(kubeconfig.encode()).decode()
    return {"metadata": {"name": name, "resourceVersion": "1"}, "spec": spec}


async def reconcile(host, *clusters, name="m1"):
    manager, recorder = Manager(host), Recorder()
    members = registry(manager, Clusters(*clusters), recorder, (50.0, 100))
    return await members(Request(HOST, "", name)), manager, recorder


async def test_an_unreadable_kubeconfig_secret_is_a_warning_and_a_retry():
    error = Forbidden(HOST, 'secrets "m1-kubeconfig" is forbidden')
    result, manager, recorder = await reconcile(Host(error), cluster("m1"))
    assert result == Result(requeue_after=30.0)
    assert manager.added == []
    [(name, kind, reason, message)] = recorder.events
    assert (name, kind, reason) == ("m1", "Warning", "MemberUnavailable")
    assert message.startswith("kosmos-scheduler-extender cannot watch this member (")
    assert "forbidden" in message
    assert message.endswith("its leaf nodes are not checked for true capacity until it can")


async def test_a_kubeconfig_that_is_no_kubeconfig_is_a_warning_and_a_retry():
    result, _, recorder = await reconcile(Host(), cluster("m1", kubeconfig="just: text"))
    assert result == Result(requeue_after=30.0)
    assert [reason for _, _, reason, _ in recorder.events] == ["MemberUnavailable"]


async def test_clusters_without_clustertree_and_the_root_cluster_are_not_watched():
    host = Host(Forbidden(HOST, "never read"))
    for found in (cluster("m1", tree=False), cluster(HOST)):
        result, manager, recorder = await reconcile(host, found, name=found["metadata"]["name"])
        assert (result, manager.added, recorder.events) == (None, [], [])
