"""The node-agent: a small TLS server on a node that re-points its kubelet for kubenest.

The operations and their wire format are in :mod:`kosmos.api.nodeagent`; what they do on a
node is a backend's (:class:`kosmos.api.nodeagent.NodeBackend`); ``kosmos node-agent``
composes the two (:mod:`kosmos.launcher.nodeagent`).
"""
