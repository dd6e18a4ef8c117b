"""The cluster-manager killed (SIGKILL) at random points of ten migrations and rollbacks:
every one still ends Completed or RolledBack, no member pod is replaced, none duplicated."""

from __future__ import annotations

import random
import time

from tests.fixtures.tree import TreeEnv
from tests.integration.migration.test_promote import (
    TIMEOUT,
    app,
    ask_rollback,
    phase,
    policy,
    running_pods,
)
from tests.support import apply, wait_for

RUNS = 10


def _kill_and_start(tree: TreeEnv, rng: random.Random) -> None:
    time.sleep(rng.uniform(0.0, 2.5))
    tree.kill()
    tree.start()


def test_killed_at_random_points_every_migration_completes_or_rolls_back(tree: TreeEnv):
    rng = random.Random(17)
    cluster = tree.env.members[0]
    member, host = tree.member(cluster), tree.host
    namespaces = [f"chaos-{i}-{rng.randrange(16**4):04x}" for i in range(RUNS)]
    try:
        for i, ns in enumerate(namespaces):
            member.run("create", "namespace", ns)
            apply(member, *app(ns))
            before = wait_for(lambda ns=ns: running_pods(member, ns), 60, f"{ns}'s pod")
            name = f"chaos-{ns}"
            apply(host, policy(name, ns, cluster))
            _kill_and_start(tree, rng)
            wait_for(
                lambda n=name: phase(host, n) in ("Completed", "RolledBack"),
                TIMEOUT,
                f"{name} to finish after a kill",
            )
            assert running_pods(member, ns) == before, f"{ns}: a pod replaced or duplicated"
            if i % 2:
                ask_rollback(host, name)
                _kill_and_start(tree, rng)
                wait_for(
                    lambda n=name: phase(host, n) == "RolledBack",
                    TIMEOUT,
                    f"{name} rolled back after a kill",
                )
                wait_for(
                    lambda ns=ns, b=before: running_pods(member, ns) == b,
                    TIMEOUT,
                    f"{ns} as it was",
                )
                assert member.ok("get", "deployment", "nginx", "-n", ns)
    finally:
        for ns in namespaces:
            host.run(
                "delete",
                "promotepolicy",
                f"chaos-{ns}",
                "-n",
                "default",
                "--ignore-not-found",
                "--wait=false",
            )
            for kubectl in (host, member):
                kubectl.run("delete", "namespace", ns, "--ignore-not-found", "--wait=false")
