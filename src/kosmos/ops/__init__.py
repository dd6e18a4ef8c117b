"""Operations on clusters: install, join, unjoin, uninstall and the local environment's set-up.

What ``kosmosctl`` does, without click: the commands in :mod:`kosmos.cli` parse flags, call
one of these and print the outcome; the local environment, the test fixtures and the
benchmarks call the same functions directly. The objects an operation applies are built by
pure functions here too (``manifests``, ``rbac``, ``scheduling``, ``membership``), so they can
be unit-tested without a cluster. An operation reports its steps through a ``progress``
callable and fails with :class:`kosmos.ops.errors.OperationError` (one line for the user) or
the :class:`kosmos.kube.errors.KubeError` the apiserver answered.
"""
