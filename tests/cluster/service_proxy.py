"""Where the API server's proxy sends a request: pure rules over Services and Pods.

``GET /api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH`` reaches one ready
endpoint of the Service; ``.../pods/[SCHEME:]NAME[:PORT]/proxy/PATH`` one Pod. As
kube-apiserver resolves them (pkg/registry/core/service/storage ``ResourceLocation``, over the
Endpoints the endpoints controller keeps):

- a port *number* is the Service port with that ``port``, and stands for its name (none:
  503 ``no service port N found for service "x"``); a port name is taken as it is; no port
  means the Service's unnamed port;
- the endpoints are the Pods the Service's selector matches that are Ready and not being
  deleted (the controller lists only those as ready addresses), each at the Service port's
  ``targetPort``: a number, or a name looked up in that Pod's container ports (a Pod without
  that name is no endpoint for the port), or, absent, the Service port's own number;
- no endpoint for the port: 503 ``no endpoints available for service "x"``.

The doing (picking one endpoint at random, asking the kubelet, the HTTP answer) is in
``apiserver.Api.proxy`` and ``server.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["ProxyTarget", "split_proxy_id", "service_endpoints", "pod_port", "ProxyRefused"]


class ProxyRefused(Exception):
    """The API server's own answer instead of the backend's: HTTP code, reason, message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass(frozen=True)
class ProxyTarget:
    """One endpoint: the Pod's name and IP, and the container port the request goes to."""

    pod: str
    ip: str
    port: int


def split_proxy_id(proxy_id: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` -> (scheme, name, port), as utilnet.SplitSchemeNamePort."""
    parts = proxy_id.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        raise ProxyRefused(400, "BadRequest", f'invalid service request "{proxy_id}"')
    if not name or scheme not in ("", "http", "https"):
        raise ProxyRefused(400, "BadRequest", f'invalid service request "{proxy_id}"')
    return scheme, name, port


def service_endpoints(
    service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], port: str
) -> list[ProxyTarget]:
    """The ready endpoints of ``service`` for ``port`` (a number, a name or ""), in pod name
    order; ProxyRefused with the API server's 503 when there are none."""
    name = (service.get("metadata") or {}).get("name") or ""
    spec = service.get("spec") or {}
    service_port = _service_port(spec.get("ports") or [], port, name)
    selector = spec.get("selector") or {}
    targets = []
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name") or ""):
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            continue
        ip = (pod.get("status") or {}).get("podIP")
        if meta.get("deletionTimestamp") or not ip or not _ready(pod):
            continue
        target = _target_port(service_port, pod) if service_port is not None else None
        if target is not None:
            targets.append(ProxyTarget(meta.get("name") or "", ip, target))
    if not targets:
        raise ProxyRefused(
            503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
        )
    return targets


def pod_port(pod: Mapping[str, Any], port: str) -> ProxyTarget:
    """Where ``pods/NAME[:PORT]/proxy`` goes: the given port, else the first declared one."""
    meta = pod.get("metadata") or {}
    ip = (pod.get("status") or {}).get("podIP") or ""
    if not ip:
        raise ProxyRefused(400, "BadRequest", "address not allowed")
    if port:
        if not port.isdigit():
            raise ProxyRefused(400, "BadRequest", f'invalid pod request "{meta.get("name")}"')
        return ProxyTarget(meta.get("name") or "", ip, int(port))
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            return ProxyTarget(meta.get("name") or "", ip, int(declared["containerPort"]))
    return ProxyTarget(meta.get("name") or "", ip, 80)


def _service_port(
    ports: Sequence[Mapping[str, Any]], port: str, service: str
) -> Mapping[str, Any] | None:
    """The Service port the request names; a number that is no port of the Service is the
    API server's 503, a name it does not have simply finds no endpoint (None)."""
    if port.isdigit():
        for candidate in ports:
            if candidate.get("port") == int(port):
                return candidate
        raise ProxyRefused(
            503, "ServiceUnavailable", f'no service port {port} found for service "{service}"'
        )
    return next((p for p in ports if (p.get("name") or "") == port), None)


def _target_port(service_port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == target:
                return int(declared["containerPort"])
    return None


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
