"""``kosmos agent``: one per node; programs the node's kernel to match its NodeConfig.

``desired`` turns a NodeConfig spec into kernel objects (pure), ``reconciler`` converges the
kernel to it through ``kosmos.net`` and reports in the NodeConfig's status, ``detect`` fills
the node's NIC and addresses into its ClusterNode, ``elector`` competes for its cluster's
gateway role, ``keys`` derives tunnel keys.
"""
