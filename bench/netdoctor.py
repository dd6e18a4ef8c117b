"""netdoctor: how long a check of every node pair takes, and what each pair costs.

An environment of its own (``--port-base``, default 19000; ``KOSMOS_LOCAL_DIR`` under
~/.kosmos/bench-netdoctor): one cluster, one kwok node (the least ``local up`` makes; floaters
avoid it), ``--real-nodes`` real nodes (default 8, so ``node`` mode has 64 pairs, self pairs
included as the seed's table shows), no Kosmos control plane: netdoctor needs only the
floater image, which ``local up`` imports into every real node.

Arms, on the same nodes, same pairs, same concurrency (``--max-num``), order alternated per
repetition:
  * cold: ``kosmosctl netdoctor clean`` then ``check``: the floater DaemonSet is created,
    waited for, and every pair checked; the wall time of the command is what a user waits;
  * warm: ``check`` again with the floaters running (autoClean off): the checks alone;
    per pair, the time of its exec as netdoctor measured it (``seconds`` in ``-o json``);
  * kubectl (baseline): the same ``curl`` in the same floater pods through ``kubectl exec``,
    one process per pair, ``--max-num`` at a time: what a script around kubectl does;
  * physical: the same ``curl`` run in each node's network namespace directly
    (``ip netns exec``): no apiserver, kubelet or container runtime in the way.

Every repetition is printed, then medians and spread. Needs root (network namespaces).

Usage: .venv/bin/python bench/netdoctor.py [--real-nodes 8] [--reps 3] [--max-num 3]
       [--keep] (leave the environment up; `kosmosctl local down` with the same
       KOSMOS_LOCAL_DIR takes it down)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kosmos.local import images

sys.path.insert(0, str(Path(__file__).parent))

from _stats import summary

ROOT = Path(__file__).parents[1]
KOSMOSCTL = str(ROOT / ".venv" / "bin" / "kosmosctl")
STATE = Path.home() / ".kosmos" / "bench-netdoctor"
NAMESPACE = "kosmos-system"
FLOATER_HOST = "kosmos-floater-host"
PORT = 8889
TIMEOUT = 5


def sh(
    argv: list[str], env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if check and out.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def up(env: dict[str, str], nodes: int, port_base: int) -> None:
    argv = [KOSMOSCTL, "local", "up", "--members", "0", "--nodes", "1"]
    argv += ["--real-nodes", str(nodes), "--port-base", str(port_base), "--without-kosmos"]
    started = time.monotonic()
    sh(argv, env)
    print(f"environment: {nodes} real nodes up in {time.monotonic() - started:.1f}s")


def config(workdir: Path, max_num: int) -> Path:
    path = workdir / "config.json"
    body = {
        "namespace": NAMESPACE,
        "version": images.TAG,
        "mode": "node",
        "protocol": "tcp",
        "podWaitTime": 120,
        "port": str(PORT),
        "maxNum": max_num,
        "cmdTimeout": TIMEOUT,
        "srcKubeConfig": str(STATE / "kubeconfig" / "host-kubeconfig"),
        "srcImageRepository": "docker.io/kosmos",
    }
    path.write_text(json.dumps(body, indent=2))
    return path


def netdoctor(env: dict[str, str], verb: str, cfg: Path) -> tuple[float, list[dict[str, Any]]]:
    argv = [KOSMOSCTL, "netdoctor", verb, "--config", str(cfg)]
    if verb == "check":
        argv += ["--resume-file", str(cfg.parent / "resume.json"), "-o", "json"]
    started = time.monotonic()
    out = sh(argv, env)
    elapsed = time.monotonic() - started
    rows = json.loads(out.stdout) if verb == "check" else []
    failed = [r for r in rows if r["result"] != "SUCCEEDED"]
    if failed:
        print(f"  ! {len(failed)} pair(s) did not succeed: {failed[:2]}")
    return elapsed, rows


def kubectl(env: dict[str, str], *args: str) -> str:
    return sh(["kubectl", "--context", "host", *args], env).stdout


def floaters(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """node -> (host floater pod, node IP)."""
    selector = f"app.kubernetes.io/name={FLOATER_HOST}"
    listed = kubectl(env, "get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json")
    pods = json.loads(listed)["items"]
    return {p["spec"]["nodeName"]: (p["metadata"]["name"], p["status"]["podIP"]) for p in pods}


def curl(ip: str) -> list[str]:
    return ["curl", "-sS", "-g", "-m", str(TIMEOUT), f"http://{ip}:{PORT}/"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.startswith("OK"):
        print(f"  ! {' '.join(argv[-3:])}: {out.returncode} {out.stderr.strip()[:120]}")
    return time.monotonic() - started


def fan_out(argvs: list[list[str]], env: dict[str, str], width: int) -> tuple[float, list[float]]:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=width) as pool:
        each = list(pool.map(lambda a: timed(a, env), argvs))
    return time.monotonic() - started, each


def by_kubectl(env: dict[str, str], width: int) -> tuple[float, list[float]]:
    pods = floaters(env)
    argvs = [
        ["kubectl", "--context", "host", "exec", "-n", NAMESPACE, pod, "--", *curl(ip)]
        for pod, _ in pods.values()
        for _, ip in pods.values()
    ]
    return fan_out(argvs, env, width)


def physical(env: dict[str, str], width: int, port_base: int) -> tuple[float, list[float]]:
    pods = floaters(env)
    argvs = [
        ["ip", "netns", "exec", f"kosmos-{port_base}-{node}", *curl(ip)]
        for node in pods
        for _, ip in pods.values()
    ]
    return fan_out(argvs, env, width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-nodes", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-num", type=int, default=3)
    parser.add_argument("--port-base", type=int, default=19000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ, KOSMOS_LOCAL_DIR=str(STATE))
    env["KUBECONFIG"] = str(STATE / "kubeconfig" / "config")
    env["PATH"] = f"{Path.home() / '.cache' / 'kosmos' / 'bin'}:{env['PATH']}"
    workdir = STATE / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    up(env, args.real_nodes, args.port_base)
    cfg = config(workdir, args.max_num)
    try:
        netdoctor(env, "check", cfg)  # warm-up: image layers unpacked, floaters placed
        walls: dict[str, list[float]] = {a: [] for a in ("cold", "warm", "kubectl", "physical")}
        pairs: dict[str, list[list[float]]] = {a: [] for a in ("warm", "kubectl", "physical")}
        arms = {
            "cold": lambda: (netdoctor(env, "clean", cfg), netdoctor(env, "check", cfg))[1],
            "warm": lambda: netdoctor(env, "check", cfg),
            "kubectl": lambda: by_kubectl(env, args.max_num),
            "physical": lambda: physical(env, args.max_num, args.port_base),
        }
        order = list(arms)
        for rep in range(args.reps):
            for arm in order if rep % 2 == 0 else order[::-1]:
                wall, each = arms[arm]()
                values = [r["seconds"] for r in each] if arm in ("cold", "warm") else each
                walls[arm].append(wall)
                if arm in pairs:
                    pairs[arm].append(values)
                print(f"rep {rep + 1} {arm}: {len(values)} pairs in {wall:.2f}s")
        print(f"\n{args.real_nodes} real nodes, node mode, tcp, maxNum {args.max_num}:")
        for arm, values in walls.items():
            print(
                f"  {arm}: wall median {statistics.median(values):.2f}s"
                f" (spread {min(values):.2f}..{max(values):.2f})"
            )
        for arm, per_rep in pairs.items():
            print("\n".join(summary(f"{arm} per pair", per_rep)))
        warm, phys = statistics.median(walls["warm"]), statistics.median(walls["physical"])
        kube = statistics.median(walls["kubectl"])
        print(f"  ratios (wall): warm/kubectl {warm / kube:.2f}, warm/physical {warm / phys:.1f}")
    finally:
        if not args.keep:
            sh([KOSMOSCTL, "local", "down"], env, check=False)


if __name__ == "__main__":
    main()
