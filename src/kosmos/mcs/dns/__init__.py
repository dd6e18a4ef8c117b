"""DNS for multi-cluster services: the ``clusterset.local`` zone CoreDNS serves.

Why CoreDNS's stock ``file`` plugin fed by a zone file (and not the ``kubernetes`` or ``etcd``
plugin): the kubernetes plugin can only answer names of real Services, so ``<svc>.<ns>`` would
have to be the derived Service's hashed name; etcd needs a datastore in every cluster. A zone
file rendered from one pure record builder (:mod:`.records`, :mod:`.zone`) is swapped
atomically, so A and AAAA always come from the same snapshot (one SOA serial), and the whole
record set is testable without a resolver. :mod:`.writer` (``kosmos mcs-dns``) renders it from
the local cluster's ServiceImports and MCS EndpointSlices.
"""
