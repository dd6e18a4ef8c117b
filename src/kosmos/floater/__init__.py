"""``kosmos floater``: the responder netdoctor checks reach, one per node (a DaemonSet).

It answers HTTP ``GET /`` with ``OK`` and echoes UDP datagrams on one port, so a check from
another floater proves the path both ways. ``probe`` is the UDP client run inside a floater
by ``kosmosctl netdoctor``; it imports only the standard library, since every check pays for
its start. Kept free of imports here for the same reason.
"""
