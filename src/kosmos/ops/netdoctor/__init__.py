"""``kosmosctl netdoctor``: network checks between floater pods, and the agents' kernel state.

``config`` (config.json: the seed's keys, validated), ``floater`` (the DaemonSets, waiting,
cleaning), ``plan`` (which pairs, which command; pure), ``run`` (the execs, at most
``maxNum`` at once), ``report`` (tables, resume.json, JSON; pure), ``check`` (check and
resume end to end), ``analyze`` (each node's kernel against its NodeConfig).
"""
