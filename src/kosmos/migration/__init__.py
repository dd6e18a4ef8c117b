"""Application migration (PromotePolicy): a member namespace created without Kosmos becomes
managed from the host without restarting its pods, and can be rolled back. Before anything in
the member changes, every object of the migrated namespaces (and the cluster-scoped objects
they depend on) is collected (``collect``), packed into a verified, deterministic archive
(``archive``) and stored in Secrets of the host's kosmos-system (``store``), from which a
rollback, or a user with ``kosmosctl migration backup extract``, restores them.
"""
