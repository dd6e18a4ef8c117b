"""Real worker nodes in the local environment: kubelet, containerd, flannel and kube-proxy.

A real node is a network namespace on its cluster's network (a bridge in a namespace of its
own, joined by the host), a pinned mount namespace and a cgroup subtree, in which containerd
(with runc and the CNI plugins), kubelet, flanneld (vxlan) and kube-proxy (iptables) run as
processes of this machine. Pods on it run real containers from images we build
(:mod:`kosmos.local.images`), imported into each node's containerd. kwok nodes stay beside
them: kwok manages only nodes carrying its label.

Modules: ``plan`` (names and addresses, pure), ``configs`` (the processes' configuration,
pure), ``layout`` (the node's directory), ``pki`` (its credentials), ``isolation`` (cgroups,
mount namespace), ``launch`` (its processes), ``network`` (cluster networks, flannel's
ConfigMap), ``relay`` (apiserver access from the nodes), ``node`` (one node's steps),
``agentsetup`` (each node's node-agent: credentials, command, the cluster's Secret),
``agent`` (the node-agent's backend: lend the node to a tenant's apiserver and back),
``teardown`` (``down``), ``lifecycle`` (what ``kosmosctl local`` calls).
"""

from kosmos.local.images import ImageError
from kosmos.local.nodes.artifacts import ArtifactError
from kosmos.local.nodes.isolation import IsolationError
from kosmos.local.nodes.node import NodeError
from kosmos.local.nodes.pki import PkiError
from kosmos.local.nodes.relay import RelayError
from kosmos.net.errors import NetError

#: what ``up`` may raise about real nodes; each message names what failed and where to look
REAL_NODE_FAILURES = (
    ArtifactError,
    ImageError,
    IsolationError,
    NodeError,
    PkiError,
    RelayError,
    NetError,
)
