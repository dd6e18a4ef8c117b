"""What a real node runs: our binaries, the host's container runtime, and the images.

kubelet, kube-proxy and flanneld come from the toolchain (built from Go modules, linked in
``paths.bin_dir()``). containerd 1.6, runc and the CNI plugins are Debian packages
(``scripts/bootstrap`` installs them). The pause, shell, http and metrics-server images are ours
(:mod:`kosmos.local.images`), imported into every node's containerd.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kosmos.local import images, paths

Progress = Callable[[str], None]

#: images every real node gets (all we build): Kosmos runs in-cluster on real nodes (its image and
#: kosmos-scheduler's kube-scheduler; ClusterLink's agent DaemonSet), metrics-server on the
#: host's, CoreDNS as every cluster's DNS and kosmos-coredns, etcd/kube-apiserver/
#: kube-controller-manager/kwok for kubenest's in-cluster tenant control planes; imported
#: because nothing here pulls from a registry (once per image digest)
NODE_IMAGES = images.ALL
#: binary -> Debian package that provides it
HOST_TOOLS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "ip": "iproute2",
    "iptables": "iptables",
    "conntrack": "conntrack",
}
CNI_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
OUR_BINARIES = ("kubelet", "kube-proxy", "flanneld")


class ArtifactError(RuntimeError):
    """Something a real node needs is missing; the message says what and how to get it."""


@dataclass(frozen=True)
class Artifacts:
    kubelet: Path
    kube_proxy: Path
    flanneld: Path
    containerd: Path
    ctr: Path
    runc: Path
    cni_bin_dir: Path
    images: dict[str, images.Image]

    @property
    def sandbox_image(self) -> str:
        return self.images["pause"].ref


def host_tools() -> dict[str, Path]:
    """The runtime and kernel tools from the host; raises naming the packages to install."""
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    for tool, package in HOST_TOOLS.items():
        where = shutil.which(tool, path=search)
        if where:
            found[tool] = Path(where)
        else:
            missing[tool] = package
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        raise ArtifactError(
            f"real nodes need {', '.join(sorted(missing))}: "
            f"apt-get install --no-install-recommends {packages} (scripts/bootstrap does)"
        )
    return found


def cni_bin_dir() -> Path:
    for directory in CNI_DIRS:
        if all((directory / plugin).exists() for plugin in CNI_PLUGINS):
            return directory
    raise ArtifactError(
        f"real nodes need the CNI plugins {', '.join(CNI_PLUGINS)} in "
        f"{' or '.join(map(str, CNI_DIRS))}: apt-get install containernetworking-plugins"
    )


def _binaries() -> dict[str, Path]:
    base = paths.bin_dir()
    found = {name: base / name for name in OUR_BINARIES}
    missing = [name for name, path in found.items() if not path.exists()]
    if missing:
        raise ArtifactError(
            f"{', '.join(missing)} missing in {base}: run `kosmosctl local toolchain`"
        )
    return found


def image_refs() -> dict[str, str]:
    """The reference of each node image, as pods name it (nothing is built)."""
    return {key: images.REFS[key] for key in NODE_IMAGES}


def ensure(progress: Progress) -> Artifacts:
    """Everything a real node needs, built or found; raises ``ArtifactError`` naming what
    is missing before any node is touched."""
    tools = host_tools()
    ours = _binaries()
    return Artifacts(
        kubelet=ours["kubelet"],
        kube_proxy=ours["kube-proxy"],
        flanneld=ours["flanneld"],
        containerd=tools["containerd"],
        ctr=tools["ctr"],
        runc=tools["runc"],
        cni_bin_dir=cni_bin_dir(),
        images=images.ensure_images(progress, keys=NODE_IMAGES),
    )
