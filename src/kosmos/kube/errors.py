"""Errors of the apiserver boundary: every HTTP failure becomes one of these, naming the cluster.

Callers branch on type (``except NotFound``), never on status codes or message text.
"""

from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """Base: something went wrong talking to cluster ``cluster``."""

    def __init__(self, cluster: str, message: str) -> None:
        super().__init__(f"cluster {cluster}: {message}")
        self.cluster = cluster


class KubeconfigError(KubeError):
    """Credentials could not be loaded (file missing, not YAML, unknown context, ...)."""


class ConnectError(KubeError):
    """The apiserver could not be reached (refused, DNS, TLS, timeout)."""


class ApiError(KubeError):
    """The apiserver answered with a failure ``Status``."""

    code = 0

    def __init__(
        self,
        cluster: str,
        message: str,
        *,
        code: int = 0,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(cluster, message)
        self.code = code or self.code
        self.reason = reason
        self.details = details or {}
        self.api_message = message


class BadRequest(ApiError):
    code = 400


class Unauthorized(ApiError):
    code = 401


class Forbidden(ApiError):
    code = 403


class NotFound(ApiError):
    code = 404


class MethodNotAllowed(ApiError):
    code = 405


class Conflict(ApiError):
    """Optimistic-concurrency failure (resourceVersion or UID precondition)."""

    code = 409


class AlreadyExists(Conflict):
    pass


class Gone(ApiError):
    """The resourceVersion is too old (compacted): relist."""

    code = 410


class Invalid(ApiError):
    """Validation failed; ``causes`` lists the apiserver's field errors."""

    code = 422

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list(self.details.get("causes", []))


class TooManyRequests(ApiError):
    code = 429


class ServerError(ApiError):
    code = 500


_BY_CODE: dict[int, type[ApiError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        Gone,
        Invalid,
        TooManyRequests,
    )
}


def from_status(cluster: str, code: int, status: dict[str, Any] | None, context: str) -> ApiError:
    """Map an HTTP code and the apiserver's ``Status`` body to the matching error type."""
    status = status or {}
    reason = str(status.get("reason", ""))
    message = str(status.get("message") or f"HTTP {code}")
    details = status.get("details") or {}
    cls: type[ApiError]
    if code == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    elif code == 410 or reason in {"Expired", "Gone"}:
        cls = Gone
    elif code >= 500:
        cls = ServerError
    else:
        cls = _BY_CODE.get(code, ApiError)
    return cls(cluster, f"{context}: {message}", code=code, reason=reason, details=details)
