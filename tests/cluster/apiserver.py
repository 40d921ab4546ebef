"""The API server's semantics without the HTTP: what create/get/list/update/patch/delete do.

`server.py` maps requests onto these operations (after authentication, faults and
authorization); `cluster.py` calls them directly for test helpers, so helper-made objects get
exactly the defaulting, validation and garbage collection that API-made ones get, without
showing up in the request log. Errors are `ApiError`s carrying the `Status` body to send.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
from typing import Any, Callable

from . import defaults
from .auth import Attributes, Authorizer, User
from .managed_fields import update_managed_fields
from .patching import PatchError, apply_patch
from .resources import REGISTRY, ResourceType, by_plural
from .selectors import SelectorError
from .service_proxy import ProxyRefused, pod_port, service_endpoints, split_proxy_id
from .store import Conflict, NotFound, Store, deep_copy, format_timestamp

__all__ = ["ApiError", "Api", "status_body", "LogReader", "HttpAnswerer"]

LogReader = Callable[[str, str, "str | None", bool, "int | None"], str]
# (namespace, pod, port) -> the container's answer (kubelet.HttpAnswer), None: nothing listens
HttpAnswerer = Callable[[str, str, int], Any]


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A `Status` failure body as the API server writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


JSON_PATCH_NOT_APPLIED = "the server rejected our request due to an error in our request"


class ApiError(Exception):
    """An error answer: HTTP code, Status reason, message and details."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.retry_after = details, retry_after

    def body(self) -> dict:
        return status_body(self.code, self.reason, self.message, self.details)


def _details(rt: ResourceType, name: str | None = None, **extra: Any) -> dict:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details.update(extra)
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid with the API server's `Kind.group "name" is invalid: field: msg` wording."""
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    summary = ", ".join(f"{field}: {message}" for field, message in causes)
    details = {
        "name": name,
        **({"group": rt.group} if rt.group else {}),
        "kind": rt.kind,
        "causes": [
            {"reason": "FieldValueInvalid", "message": message, "field": field}
            for field, message in causes
        ],
    }
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)


def _require_resource_version(rt: ResourceType, name: str, obj: dict) -> None:
    """A type whose strategy refuses unconditional updates (Leases): the generic registry's
    422, which names the resource, not the kind."""
    if obj["metadata"].get("resourceVersion"):
        return
    field, message = (
        "metadata.resourceVersion",
        "Invalid value: 0: must be specified for an update",
    )
    raise ApiError(
        422,
        "Invalid",
        f'{rt.group_resource} "{name}" is invalid: {field}: {message}',
        {"name": name, **({"group": rt.group} if rt.group else {}), "kind": rt.plural,
         "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]},
    )  # fmt: skip


def _strip_type_meta(obj: dict) -> dict:
    """List items of built-in types carry no kind/apiVersion on the wire."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _encode_continue(resource_version: int, after: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": after})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from exc


def _key(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class Api:
    """Resource operations over a Store; thread-safe (multi-step ones hold the store lock)."""

    def __init__(
        self,
        store: Store,
        authorizer: Authorizer,
        read_log: LogReader | None = None,
        delete_pod: Callable[[str, str], bool] | None = None,
        answer_http: HttpAnswerer | None = None,
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.read_log_hook = read_log
        # what a pod's container answers a proxied request, if simulated
        self.answer_http_hook = answer_http
        self._endpoint_choice = random.Random()
        # graceful Pod deletion (deletionTimestamp, then the kubelet removes it), if simulated
        self.delete_pod_hook = delete_pod
        self._cluster_ips = itertools.count(10)

    # ----------------------------------------------------------------- reads

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict:
        """The stored object (shared, read-only) or 404."""
        obj = self.store.get_shared(rt.plural, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict:
        """A `<Kind>List` body (items shared, read-only), paginated like the API server."""
        with self.store.lock:
            try:
                items = self.store.select(rt.plural, namespace, label_selector, field_selector)
            except SelectorError as exc:
                raise bad_request(str(exc)) from exc
            resource_version = self.store.resource_version
        if continue_token:
            resource_version, after = _decode_continue(continue_token)
            items = [item for item in items if _key(item) > after]
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        if limit and len(items) > limit:
            metadata["continue"] = _encode_continue(resource_version, _key(items[limit - 1]))
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": [_strip_type_meta(item) for item in items],
        }

    # ----------------------------------------------------------------- writes

    def create(
        self, rt: ResourceType, namespace: str | None, body: Any, manager: str | None = None
    ) -> dict:
        """Default, validate and store a new object; returns a copy of what was stored.
        `manager` (the field manager) gets the object's managedFields entry."""
        obj = self._checked_body(rt, namespace, body)
        meta = obj["metadata"]
        name = meta.get("name") or meta.get("generateName", "")
        if not meta.get("name") and not meta.get("generateName"):
            raise invalid(rt, "", [("metadata.name", "Required value: name or generateName is "
                                                       "required")])  # fmt: skip
        if rt.namespaced:
            self._require_namespace(namespace or "")
        defaults.apply_defaults(rt.plural, obj, cluster_ip=self._next_cluster_ip(rt))
        causes = defaults.validate(rt.plural, obj)
        if causes:
            raise invalid(rt, name, causes)
        status = defaults.initial_status(rt.plural, obj)
        obj.pop("status", None)
        if status is not None:
            obj["status"] = status
        self._manage(None, obj, manager, "")
        try:
            return self.store.create(rt.plural, obj)
        except Conflict as exc:
            raise ApiError(409, "AlreadyExists", str(exc), _details(rt, name)) from exc

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str = "",
        manager: str | None = None,
    ) -> dict:
        """PUT: replace the object (or its status, or its scale), checking resourceVersion."""
        if subresource == "scale":
            return self._update_scale(rt, namespace, name, body)
        obj = self._checked_body(rt, namespace, body)
        if obj["metadata"].get("name") != name:
            raise bad_request(
                f"the name of the object ({obj['metadata'].get('name')}) does not match the "
                f"name on the URL ({name})"
            )
        with self.store.lock:
            current = self.store.get_shared(rt.plural, namespace, name)
            if current is not None and not rt.unconditional_update and not subresource:
                _require_resource_version(rt, name, obj)
            self._manage(current, obj, manager, subresource)
            return self._write(rt, obj, subresource)

    def creates_on_update(
        self, rt: ResourceType, namespace: str | None, name: str, subresource: str = ""
    ) -> bool:
        """Whether a PUT of this object would create it (AllowCreateOnUpdate: Leases)."""
        return (
            rt.create_on_update
            and not subresource
            and self.store.get_shared(rt.plural, namespace, name) is None
        )

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str,
        subresource: str = "",
        manager: str | None = None,
    ) -> dict:
        """PATCH (strategic, merge or json) the object, its status or its scale."""
        with self.store.lock:
            current = self.get(rt, namespace, name)
            if subresource == "scale":
                scale = self._apply(rt, self.scale_of(rt, current), patch, patch_type)
                return self._update_scale(rt, namespace, name, scale)
            patched = self._apply(rt, current, patch, patch_type)
            problem = defaults.decode_problem(rt.plural, patched)
            if problem:
                raise bad_request(problem)
            meta = patched.get("metadata") or {}
            if meta.get("name") != name or (rt.namespaced and meta.get("namespace") != namespace):
                raise bad_request("a patch cannot change metadata.name or metadata.namespace")
            self._manage(current, patched, manager, subresource)
            return self._write(rt, patched, subresource)

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: dict | None = None
    ) -> dict:
        """Delete with background propagation: dependents (ownerReferences) go too.
        `options` is the DeleteOptions body: its `preconditions` (uid, resourceVersion) must
        match the object, else 409 Conflict with the API server's words."""
        with self.store.lock:
            self._check_preconditions(rt, namespace, name, (options or {}).get("preconditions"))
            if rt.plural == "pods" and self.delete_pod_hook is not None:
                if not self.delete_pod_hook(namespace or "", name):
                    raise not_found(rt, name)
                terminating = self.store.get("pods", namespace, name)
                if terminating is not None:
                    return terminating
            gone = self.store.delete(rt.plural, namespace, name)
            if gone is None:
                raise not_found(rt, name)
            if rt.plural == "namespaces":
                self._delete_namespace_contents(name)
            elif rt.namespaced:
                self._collect_dependents(namespace or "", gone["metadata"]["uid"])
        if rt.plural in ("pods", "namespaces"):
            return gone
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": _details(rt, name, uid=gone["metadata"]["uid"]),
        }

    def _check_preconditions(
        self, rt: ResourceType, namespace: str | None, name: str, wanted: dict | None
    ) -> None:
        if not wanted:
            return
        current = self.get(rt, namespace, name)
        meta = current["metadata"]
        for field, key in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if wanted.get(field) and wanted[field] != meta.get(field):
                message = (
                    f'Operation cannot be fulfilled on {rt.group_resource} "{name}": '
                    f"Precondition failed: {key} in precondition: {wanted[field]}, {key} in "
                    f"object meta: {meta.get(field)}"
                )
                raise ApiError(409, "Conflict", message, _details(rt, name))

    # ----------------------------------------------------------------- subresources

    @staticmethod
    def scale_of(rt: ResourceType, obj: dict) -> dict:
        """The autoscaling/v1 Scale view of a Deployment, ReplicaSet or StatefulSet."""
        meta = obj["metadata"]
        selector = defaults.selector_string((obj.get("spec") or {}).get("selector"))
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in meta
            },
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": selector,
            },
        }

    def read_log(
        self,
        namespace: str,
        name: str,
        container: str | None,
        previous: bool,
        tail_lines: int | None,
    ) -> str:
        """Container log text from the simulation; 404 for a missing pod, 400 otherwise."""
        pods = by_plural("pods")
        pod = self.get(pods, namespace, name)
        if self.read_log_hook is None:
            names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
            if container and container not in names:
                raise bad_request(f"container {container} is not valid for pod {name}")
            return ""
        try:
            return self.read_log_hook(namespace, name, container, previous, tail_lines)
        except LookupError as exc:
            message = exc.args[0] if exc.args else str(exc)
            if getattr(exc, "code", 400) == 404:
                raise ApiError(404, "NotFound", message, {"name": name, "kind": "pods"}) from exc
            raise bad_request(message) from exc

    def proxy(self, rt: ResourceType, namespace: str, proxy_id: str) -> Any:
        """The answer of the pod a ``services/ID/proxy`` or ``pods/ID/proxy`` request reaches
        (a random ready endpoint of the Service, as kube-apiserver picks one); the API
        server's own errors (404, 503 no endpoints, 503 nothing listening) as ``ApiError``.
        Only the choosing holds the store lock: the answer may take its time."""
        try:
            _scheme, name, port = split_proxy_id(proxy_id)
            with self.store.lock:
                obj = self.get(rt, namespace, name)
                if rt.plural == "services":
                    endpoints = service_endpoints(obj, self.store.select("pods", namespace), port)
                    target = self._endpoint_choice.choice(endpoints)
                else:
                    target = pod_port(obj, port)
        except ProxyRefused as exc:
            raise ApiError(exc.code, exc.reason, exc.message) from exc
        hook = self.answer_http_hook
        answer = hook(namespace, target.pod, target.port) if hook is not None else None
        if answer is None:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {target.ip}:{target.port}: "
                "connect: connection refused",
            )
        return answer

    def access_review(self, user: User, body: Any) -> dict:
        """SelfSubjectAccessReview answered from the same rules that authorize requests."""
        spec = (body or {}).get("spec") or {}
        attrs_in = spec.get("resourceAttributes")
        if attrs_in:
            attrs = Attributes(
                verb=attrs_in.get("verb", ""),
                group=attrs_in.get("group", ""),
                resource=attrs_in.get("resource", ""),
                subresource=attrs_in.get("subresource", ""),
                namespace=attrs_in.get("namespace", ""),
                name=attrs_in.get("name", ""),
            )
            allowed = self.authorizer.allowed(user, attrs)
        else:
            allowed = any("*" in r.verbs and "*" in r.resources for r in user.rules)
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = f'RBAC: allowed for User "{user.name}"'
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    # ----------------------------------------------------------------- internals

    def _next_cluster_ip(self, rt: ResourceType) -> str | None:
        if rt.plural != "services":
            return None
        number = next(self._cluster_ips)
        return f"10.96.{number // 250}.{number % 250 + 1}"

    @staticmethod
    def _checked_body(rt: ResourceType, namespace: str | None, body: Any) -> dict:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        kind = body.get("kind")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind of the object ({kind}) does not match {rt.kind}")
        obj = deep_copy(body)
        problem = defaults.decode_problem(rt.plural, obj)
        if problem:
            raise bad_request(problem)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        return obj

    def _require_namespace(self, namespace: str) -> None:
        if self.store.get_shared("namespaces", None, namespace) is None:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )

    def _manage(self, old: dict | None, new: dict, manager: str | None, subresource: str) -> None:
        """Record `manager`'s write in `new`'s managedFields (not for status writes)."""
        if not manager or subresource:
            if old is not None:
                kept = (old.get("metadata") or {}).get("managedFields")
                if kept is not None:
                    new.setdefault("metadata", {})["managedFields"] = kept
            return
        meta = new.setdefault("metadata", {})
        stamp = format_timestamp(self.store.clock())
        meta["managedFields"] = update_managed_fields(old, new, manager, stamp)

    @staticmethod
    def _apply(rt: ResourceType, obj: dict, patch: Any, patch_type: str) -> dict:
        try:
            return apply_patch(obj, patch, patch_type)
        except PatchError as exc:
            if exc.status == 422 and patch_type == "json":
                # kube-apiserver 1.37 keeps why a JSON patch could not be applied (a failed
                # `test`, a missing path) to itself: a bare 422, as measured on the real tier.
                raise ApiError(422, "Invalid", JSON_PATCH_NOT_APPLIED, {}) from exc
            if exc.status == 422:
                raise ApiError(
                    422, "Invalid", str(exc), _details(rt, obj["metadata"].get("name"))
                ) from exc
            raise ApiError(exc.status, "BadRequest", str(exc)) from exc

    def _write(self, rt: ResourceType, obj: dict, subresource: str) -> dict:
        name = obj["metadata"]["name"]
        if subresource == "status":
            try:
                return self.store.update_status(rt.plural, obj, check_resource_version=True)
            except NotFound as exc:
                raise not_found(rt, name) from exc
            except Conflict as exc:
                raise ApiError(409, "Conflict", str(exc), _details(rt, name)) from exc
        defaults.apply_defaults(rt.plural, obj)
        causes = defaults.validate(rt.plural, obj)
        if causes:
            raise invalid(rt, name, causes)
        try:
            return self.store.update(rt.plural, obj, check_resource_version=True)
        except NotFound as exc:
            raise not_found(rt, name) from exc
        except Conflict as exc:
            raise ApiError(409, "Conflict", str(exc), _details(rt, name)) from exc

    def _update_scale(self, rt: ResourceType, namespace: str | None, name: str, body: Any) -> dict:
        if "scale" not in {sub.name for sub in rt.subresources}:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        replicas = ((body or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(rt, name, [("spec.replicas", f"Invalid value: {replicas}: must be "
                                                        "greater than or equal to 0")])  # fmt: skip
        with self.store.lock:
            obj = deep_copy(self.get(rt, namespace, name))
            obj["spec"]["replicas"] = replicas
            updated = self.store.update(rt.plural, obj)
        return self.scale_of(rt, updated)

    def _collect_dependents(self, namespace: str, owner_uid: str) -> None:
        """Background cascading deletion through ownerReferences (the garbage collector)."""
        pending = [owner_uid]
        while pending:
            uid = pending.pop()
            for plural in ("replicasets", "pods"):
                for obj in self.store.select(plural, namespace):
                    owners = obj["metadata"].get("ownerReferences") or []
                    if not any(ref.get("uid") == uid for ref in owners):
                        continue
                    name = obj["metadata"]["name"]
                    if plural == "pods" and self.delete_pod_hook is not None:
                        self.delete_pod_hook(namespace, name)
                        continue
                    gone = self.store.delete(plural, namespace, name)
                    if gone is not None:
                        pending.append(gone["metadata"]["uid"])

    def _delete_namespace_contents(self, namespace: str) -> None:
        for rt in REGISTRY:
            if rt.namespaced:
                for obj in self.store.select(rt.plural, namespace):
                    self.store.delete(rt.plural, namespace, obj["metadata"]["name"])
