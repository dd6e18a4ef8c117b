"""The metrics-server step of `local up`: how it explains an APIService that is not Available."""

from __future__ import annotations

from kosmos.local import metrics_server
from kosmos.ops.local_metrics import not_available


def api_service(status, reason="FailedDiscoveryCheck", message="no route to host"):
    condition = {"type": "Available", "status": status, "reason": reason, "message": message}
    return {"metadata": {"name": metrics_server.API_SERVICE}, "status": {"conditions": [condition]}}


def test_an_unavailable_api_service_is_explained_in_the_apiservers_words():
    assert not_available(api_service("True")) == ""
    why = not_available(api_service("False"))
    assert "FailedDiscoveryCheck: no route to host" in why
    assert "not found" in not_available(None)
    assert "no Available condition" in not_available({"metadata": {}, "status": {}})
