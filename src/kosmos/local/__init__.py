"""The local multi-cluster environment: a host and member clusters as processes on loopback.

Real kube-apiserver, kube-controller-manager, kube-scheduler and etcd per cluster, built from
Go modules (:mod:`kosmos.local.toolchain`), started by kwokctl's binary runtime, with kwok
simulating nodes and pod lifecycles. Used by developers, the test fixtures and the README's
first command; never by a production component.
"""
