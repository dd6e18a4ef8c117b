"""Errors of the kernel door.

    NetError
    ├── CommandError   an external tool (iptables-restore, ipset, sysctl) failed
    ├── DeviceMissing  a device the configuration names does not exist (e.g. a bind device)
    └── KernelError    a netlink request failed (carries errno and the operation)

Each names the object it was about, so the agent can report it item by item.
"""

from __future__ import annotations


class NetError(Exception):
    def __init__(self, message: str, *, item: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.item = item


class CommandError(NetError):
    pass


class DeviceMissing(NetError):
    pass


class KernelError(NetError):
    def __init__(self, message: str, *, item: str = "", errno: int = 0) -> None:
        super().__init__(message, item=item)
        self.errno = errno
