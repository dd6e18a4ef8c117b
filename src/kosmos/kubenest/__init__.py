"""kubenest: ``kosmos virtual-cluster-operator``, tenant control planes (VirtualClusters) that
borrow whole host nodes from the GlobalNode pool.

``pool`` decides which host nodes are in the pool and which go to which VirtualCluster (pure);
``globalnodes`` keeps one GlobalNode per pool node; ``app`` is the command.
``pki`` and ``kubeconfig`` make a tenant's certificates and kubeconfigs (pure); ``provider`` is
what runs a tenant's control plane, ``local`` the provider that runs it as processes here
(``components``: their command lines, ``ports``, ``processes``).
"""
