"""A small REST client for the real API server: JSON over HTTPS with a client certificate.

The launcher, the fake kubelet and the tests' helpers use it to create objects, write
statuses and watch. (The plugin under test uses the official `kubernetes` client; this is the
harness's own, small enough to read and free of the client's model layer.) Plain dicts in,
plain dicts out, the API server's Status on errors.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Mapping
from urllib.parse import quote, urlencode

from tests.cluster.managed_fields import HARNESS_MANAGER

__all__ = ["Rest", "RestError", "Resource", "RESOURCES", "resource"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
        if sub:
            base += f"/{sub}"
        return base


RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("", "v1", "pods", True, "Pod"),
        Resource("", "v1", "events", True, "Event"),
        Resource("", "v1", "secrets", True, "Secret"),
        Resource("", "v1", "configmaps", True, "ConfigMap"),
        Resource("", "v1", "services", True, "Service"),
        Resource("", "v1", "serviceaccounts", True, "ServiceAccount"),
        Resource("", "v1", "resourcequotas", True, "ResourceQuota"),
        Resource("", "v1", "namespaces", False, "Namespace"),
        Resource("", "v1", "nodes", False, "Node"),
        Resource("apps", "v1", "deployments", True, "Deployment"),
        Resource("apps", "v1", "replicasets", True, "ReplicaSet"),
        Resource("apps", "v1", "statefulsets", True, "StatefulSet"),
        Resource("apps", "v1", "daemonsets", True, "DaemonSet"),
        Resource("coordination.k8s.io", "v1", "leases", True, "Lease"),
        Resource("networking.k8s.io", "v1", "ingresses", True, "Ingress"),
        Resource("rbac.authorization.k8s.io", "v1", "roles", True, "Role"),
        Resource("rbac.authorization.k8s.io", "v1", "rolebindings", True, "RoleBinding"),
        Resource("rbac.authorization.k8s.io", "v1", "clusterroles", False, "ClusterRole"),
        Resource(
            "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False, "ClusterRoleBinding"
        ),
        Resource(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            False,
            "SelfSubjectAccessReview",
        ),
    )
}
_ALIASES = {"deploy": "deployments", "rs": "replicasets", "ns": "namespaces", "po": "pods"}


def resource(name: str) -> Resource:
    """A plural, a kind or a short name ("deploy", "Deployment", "deployments")."""
    key = _ALIASES.get(name, name)
    if key in RESOURCES:
        return RESOURCES[key]
    for r in RESOURCES.values():
        if r.kind.lower() == key.lower() or r.plural == key.lower() + "s":
            return r
    raise KeyError(f"unknown resource {name!r}")


class RestError(Exception):
    """A non-2xx answer; `status` is the HTTP code, `body` the Status object (or text)."""

    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{method} {path}: {status} {message}")

    @property
    def reason(self) -> str:
        return self.body.get("reason", "") if isinstance(self.body, dict) else ""


PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


class Rest:
    """HTTPS to one API server (or kubelet) with a client certificate; thread-safe."""

    def __init__(
        self,
        server: str,
        *,
        ca_file: str,
        cert_file: str,
        key_file: str,
        timeout: float = 30,
        user_agent: str = HARNESS_MANAGER,
    ) -> None:
        """`user_agent` up to its first "/" is the field manager the API server records for
        this client's writes."""
        import urllib3

        self.server = server.rstrip("/")
        self._agent = user_agent
        self._timeout = timeout
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.clear()

    # -- plain requests

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        url = self.server + path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "application/json", "User-Agent": self._agent}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        response = self._pool.request(
            method, url, body=data, headers=headers, timeout=self._timeout, retries=False
        )
        text = response.data.decode("utf-8", "replace")
        if response.status >= 300:
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            raise RestError(response.status, parsed, method, path)
        if raw:
            return text
        return json.loads(text) if text else None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any, **query: Any) -> Any:
        return self.request("POST", path, body, query=query or None)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: Any, patch_type: str = "strategic") -> Any:
        return self.request("PATCH", path, body, content_type=PATCH_TYPES[patch_type])

    def delete(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.request("DELETE", path, body, query=query or None)

    # -- watch

    def watch(
        self, path: str, resource_version: str, *, timeout_seconds: int = 300, **query: Any
    ) -> Iterator[tuple[str, dict]]:
        """(type, object) for each event of one watch request, until the server ends it."""
        import urllib3

        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
            **query,
        }
        response = self._pool.request(
            "GET",
            f"{self.server}{path}?{urlencode(params)}",
            headers={"Accept": "application/json", "User-Agent": self._agent},
            preload_content=False,
            timeout=urllib3.Timeout(connect=self._timeout, read=timeout_seconds + 30),
            retries=False,
        )
        try:
            if response.status >= 300:
                raise RestError(response.status, response.read().decode(), "WATCH", path)
            buffer = b""
            for chunk in response.stream(64 * 1024):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        yield event["type"], event["object"]
        finally:
            response.release_conn()
