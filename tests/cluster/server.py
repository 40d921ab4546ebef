"""The HTTP(S) layer of the simulated API server.

Per request: log it, add injected latency, authenticate the bearer token (401), apply injected
faults (they win over the store), route the path, authorize (403), then serve: discovery,
list/get/create/update/patch/delete, watch (chunked JSON lines), /scale, /status, /log and
SelfSubjectAccessReview. Every error is a `Status` body with the API server's reason and code.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from . import resources
from .apiserver import Api, ApiError, bad_request, status_body
from .auth import Attributes, Authorizer, User, forbidden_message
from .faults import Faults
from .patching import PATCH_CONTENT_TYPES
from .protobuf import ProtobufError, decode_self_subject_access_review
from .resources import ResourceType
from .selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from .store import Change, Expired
from .tables import TABLE_MEDIA, table_for

__all__ = ["RequestRecord", "ServerState", "SimHTTPServer", "make_ssl_context"]

_NON_RESOURCE_OK = ("/healthz", "/livez", "/readyz")
_UNSUPPORTED_MEDIA = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, "
    "application/strategic-merge-patch+json"
)
_UNSUPPORTED_BODY = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json, application/yaml (got {})"
)
_NOT_ALLOWED = "the server does not allow this method on the requested resource"
_DEFAULT_WATCH_TIMEOUT = 1800.0  # the API server picks 30-60 min when the client sets none
_CLIENT_CHECK_INTERVAL = 0.5


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it (headers lower-cased, Authorization redacted)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    content_type: str | None
    body: bytes
    json: Any
    user: str | None
    status: int
    groups: tuple[str, ...] = ()  # the user's groups (impersonated ones, with --as-group)

    @property
    def is_watch(self) -> bool:
        """A watch, however the client spells the flag (client 29-33 sends "True", 34+
        "true", kubectl "true"): as the API server reads it."""
        return _truthy(self.query.get("watch"))


@dataclass
class ServerState:
    """Everything the request handlers share; owned by SimCluster."""

    api: Api
    authorizer: Authorizer
    faults: Faults
    bookmark_interval: float = 5.0
    requests: list[RequestRecord] = field(default_factory=list)
    requests_lock: threading.Lock = field(default_factory=threading.Lock)
    server_address: str = "127.0.0.1:0"
    disabled_groups: frozenset[str] = frozenset()
    # Connections closed before a request could be read (no TLS handshake, nothing sent):
    # what happened, for a test that fails with a client-side TLS or connection error.
    dropped_connections: list[str] = field(default_factory=list)

    @property
    def registry(self) -> tuple[ResourceType, ...]:
        """The resources this cluster serves (an API group can be switched off)."""
        return tuple(rt for rt in resources.REGISTRY if rt.group not in self.disabled_groups)

    def record(self, record: RequestRecord) -> None:
        with self.requests_lock:
            self.requests.append(record)


@dataclass(frozen=True)
class ResourceRequest:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str
    proxy_path: str = ""  # pods/x/proxy/PATH, services/x/proxy/PATH: the PATH (decoded)


class _Streaming(Exception):
    """Raised when a watch ended after its headers went out (nothing more to send)."""


def make_ssl_context(
    cert_file: str, key_file: str, client_ca_file: str | None = None
) -> ssl.SSLContext:
    """The server's TLS; with `client_ca_file`, client certificates that CA signed are asked
    for (optional, like kube-apiserver's --client-ca-file) and authenticate their CN."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(client_ca_file)
    return context


class SimHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that does the TLS handshake in the worker thread and can close
    every open connection on stop (so a restart drops watches like a real one)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], state: ServerState, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.state = state
        self.ssl_context = ssl_context
        self.stopping = threading.Event()  # per server instance: a restart makes a new one
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is not None:
            if self.state.faults.take_handshake_drop():
                request.close()
                return
            try:
                request.settimeout(10)
                if _answered_plain_http(request):
                    return
                request = self.ssl_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ssl.SSLError) as err:
                self.state.dropped_connections.append(
                    f"{time.strftime('%H:%M:%S')} from port {client_address[1]}: "
                    f"{type(err).__name__}: {err}"
                )
                return
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self._connections_lock:
                self._connections.discard(request)
            if request is not None and self.ssl_context is not None:
                try:
                    request.close()
                except OSError:
                    pass

    def close_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# What Go's net/http (so kube-apiserver) answers to plain HTTP on its TLS port, and the
# request starts it recognises as HTTP.
_PLAIN_HTTP_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
)
_HTTP_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO", b"PATCH", b"DELET")


def _answered_plain_http(conn: socket.socket) -> bool:
    """Plain HTTP sent to the TLS port gets Go's 400 (True); anything else goes on to TLS."""
    start = conn.recv(5, socket.MSG_PEEK)
    if not start.startswith(_HTTP_STARTS):
        return False
    with contextlib.suppress(OSError):
        conn.sendall(_PLAIN_HTTP_ANSWER)
        conn.shutdown(socket.SHUT_WR)
    conn.close()
    return True


# ---------------------------------------------------------------------- routing (pure)


def parse_resource_path(parts: list[str]) -> tuple[str, str, list[str]] | None:
    """Split `/api/v1/...` or `/apis/<g>/<v>/...` into (group, version, rest), or None."""
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def route_resource(
    group: str, version: str, rest: list[str], disabled_groups: frozenset[str] = frozenset()
) -> ResourceRequest | None:
    """Map the rest of a resource path to (resource, namespace, name, subresource)."""
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespaced_rt = resources.lookup(group, version, rest[2])
        is_namespace_sub = group == "" and rest[2] in ("status", "finalize")
        if namespaced_rt is not None and namespaced_rt.namespaced and not is_namespace_sub:
            namespace, rest = rest[1], rest[2:]
    if not rest or group in disabled_groups:
        return None
    rt = resources.lookup(group, version, rest[0])
    if rt is None or (namespace is not None and not rt.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and subresource not in {s.name for s in rt.subresources}:
        return None
    if subresource == "proxy":  # the rest of the path is the backend's (decoded, as Go does)
        path = "/" + "/".join(unquote(part) for part in rest[3:])
        return ResourceRequest(rt, namespace, unquote(name or ""), subresource, path)
    if len(rest) > 3:
        return None
    return ResourceRequest(rt, namespace, name, subresource)


def verb_of(method: str, req: ResourceRequest, query: dict[str, str]) -> str | None:
    if method == "GET":
        if req.name:
            return "get"
        return "watch" if _truthy(query.get("watch")) else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if req.name else "deletecollection",
    }.get(method)


def _truthy(value: str | None) -> bool:
    """Go's strconv.ParseBool, which the API server uses for query flags ("True" included)."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _accepts_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "g=apidiscovery.k8s.io" in accept


# ---------------------------------------------------------------------- the handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sim-kube-apiserver"
    sys_version = ""
    server: SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the request log is the record."""

    def setup(self) -> None:
        """Send small writes at once, as the real (Go) API server does: without TCP_NODELAY
        every response waits ~40 ms for the client's delayed ACK."""
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Read once per connection: a watch's socket may be shut down while it is served.
        self.peer_certificate: dict | None = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.peer_certificate = self.connection.getpeercert() or None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ------------------------------------------------------------ request pipeline

    def _handle(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        self.req_path = split.path.rstrip("/") or "/"
        self.req_query = dict(parse_qsl(split.query, keep_blank_values=True))
        self.req_method = method
        self.req_body = self._read_body()
        self.req_user: User | None = None
        self.recorded = False
        try:
            if state.faults.latency:
                time.sleep(state.faults.latency)
            self._serve(method, split)
        except _Streaming:
            self.close_connection = True
        except ApiError as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
            self._send_json(exc.code, exc.body(), headers=headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # a bug in the simulator: say so, loudly
            traceback.print_exc(file=sys.stderr)
            body = status_body(500, "InternalError", f"Internal error occurred: {exc!r}")
            self._send_json(500, body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json_body(self) -> Any:
        content_type = (self.headers.get("Content-Type") or "application/json").lower()
        if "protobuf" in content_type and self.req_path.endswith("/selfsubjectaccessreviews"):
            try:
                return decode_self_subject_access_review(self.req_body)
            except ProtobufError as exc:
                raise bad_request(str(exc)) from exc
        if self.req_method in ("POST", "PUT") and "json" not in content_type:
            raise ApiError(415, "UnsupportedMediaType", _UNSUPPORTED_BODY.format(content_type))
        try:
            return json.loads(self.req_body or b"null")
        except ValueError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from exc

    def _serve(self, method: str, split: Any) -> None:
        state = self.server.state
        subject = self._client_certificate_subject()
        if subject is not None:  # x509 first, as kube-apiserver's authenticator chain
            user: User | None = state.authorizer.user_named(*subject)
        else:
            user = state.authorizer.authenticate(self._bearer_token())
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        self.req_user = user
        self.req_user = user = self._impersonated(user)
        target = split.path + (f"?{split.query}" if split.query else "")
        state.faults.run_before(method, target)
        failure = state.faults.take_failure(method, target)
        if failure is not None:
            raise _injected_error(failure)
        parts = [p for p in self.req_path.split("/") if p]
        if self._serve_non_resource(method, parts):
            return
        parsed = parse_resource_path(parts)
        if parsed is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, rest = parsed
        if not rest:
            self._serve_group_version(group, version)
            return
        req = route_resource(group, version, rest, state.disabled_groups)
        if req is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = verb_of(method, req, self.req_query)
        allowed = set(req.rt.verbs)
        if req.subresource:
            allowed = set(next(s for s in req.rt.subresources if s.name == req.subresource).verbs)
        if verb is None or verb not in allowed:
            raise ApiError(405, "MethodNotAllowed", _NOT_ALLOWED)
        attrs = Attributes(verb, req.rt.group, req.rt.plural, req.subresource,
                           req.namespace or "", req.name or "")  # fmt: skip
        if req.rt.plural != "selfsubjectaccessreviews" and not state.authorizer.allowed(
            user, attrs
        ):
            raise ApiError(
                403,
                "Forbidden",
                forbidden_message(user, attrs, req.rt.group_resource),
                {**({"name": req.name} if req.name else {}),
                 **({"group": req.rt.group} if req.rt.group else {}), "kind": req.rt.plural},
            )  # fmt: skip
        self._serve_resource(verb, req)

    def _impersonated(self, user: User) -> User:
        """Impersonate-User / Impersonate-Group, each checked with the `impersonate` verb on
        `users` / `groups` (by name), as kube-apiserver does; the request then runs as that
        user with those groups."""
        name = self.headers.get("Impersonate-User")
        groups = self.headers.get_all("Impersonate-Group") or []
        if not name:
            if groups:
                raise bad_request("requested impersonation of groups without impersonating a user")
            return user
        authorizer = self.server.state.authorizer
        wanted = [Attributes("impersonate", "", "users", name=name)]
        wanted += [Attributes("impersonate", "", "groups", name=group) for group in groups]
        for attrs in wanted:
            if not authorizer.allowed(user, attrs):
                raise ApiError(
                    403,
                    "Forbidden",
                    forbidden_message(user, attrs, attrs.resource),
                    {"name": attrs.name, "kind": attrs.resource},
                )
        return authorizer.user_named(name, tuple(groups))

    def _client_certificate_subject(self) -> tuple[str, tuple[str, ...]] | None:
        """(CN, Os) of a verified client certificate, if the client sent one."""
        cert = self.peer_certificate
        if not cert:
            return None
        attributes = [pair for rdn in cert.get("subject", ()) for pair in rdn]
        names = [value for key, value in attributes if key == "commonName"]
        groups = tuple(value for key, value in attributes if key == "organizationName")
        return (names[0], groups) if names else None

    def _bearer_token(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return None

    # ------------------------------------------------------------ discovery

    def _serve_non_resource(self, method: str, parts: list[str]) -> bool:
        state = self.server.state
        path = "/" + "/".join(parts)
        accept = self.headers.get("Accept") or ""
        if method != "GET":
            return False
        if path == "/version":
            self._send_json(200, resources.version_doc())
        elif path in _NON_RESOURCE_OK:
            self._send_text(200, "ok")
        elif path == "/api" and _accepts_aggregated(accept):
            body = resources.aggregated_discovery_doc(True, state.registry)
            self._send_json(200, body, content_type=resources.AGGREGATED_CONTENT_TYPE)
        elif path == "/api":
            self._send_json(200, resources.api_versions_doc(state.server_address))
        elif path == "/apis" and _accepts_aggregated(accept):
            body = resources.aggregated_discovery_doc(False, state.registry)
            self._send_json(200, body, content_type=resources.AGGREGATED_CONTENT_TYPE)
        elif path == "/apis":
            self._send_json(200, resources.api_group_list_doc(state.registry))
        elif len(parts) == 2 and parts[0] == "apis":
            group = resources.api_group_list_doc(state.registry)
            match = [g for g in group["groups"] if g["name"] == parts[1]]
            if not match:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send_json(200, {"kind": "APIGroup", "apiVersion": "v1", **match[0]})
        else:
            return False
        return True

    def _serve_group_version(self, group: str, version: str) -> None:
        doc = resources.api_resource_list_doc(group, version, self.server.state.registry)
        if doc is None or self.req_method != "GET":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._send_json(200, doc)

    # ------------------------------------------------------------ resources

    def _serve_resource(self, verb: str, req: ResourceRequest) -> None:
        api = self.server.state.api
        rt, ns, name, sub = req.rt, req.namespace, req.name, req.subresource
        if rt.plural == "selfsubjectaccessreviews":
            assert self.req_user is not None
            self._send_json(201, api.access_review(self.req_user, self._json_body()))
        elif verb == "watch":
            self._watch(req)
        elif verb == "list":
            self._list(req)
        elif verb == "get" and sub == "log":
            self._log(req)
        elif sub == "proxy":
            self._proxy(verb, req)
        elif verb == "get" and sub == "scale":
            self._send_json(200, api.scale_of(rt, api.get(rt, ns, name or "")))
        elif verb == "get":
            self._send_object(api.get(rt, ns, name or ""))
        elif verb == "create":
            self._send_json(201, api.create(rt, ns, self._json_body(), self._field_manager()))
        elif verb == "update" and api.creates_on_update(rt, ns, name or "", sub):
            self._authorize_create_on_update(req)
            self._send_json(201, api.create(rt, ns, self._json_body(), self._field_manager()))
        elif verb == "update":
            body = self._json_body()
            self._send_json(200, api.update(rt, ns, name or "", body, sub, self._field_manager()))
        elif verb == "patch":
            self._send_json(200, self._patch(req))
        elif verb == "delete":
            options = self._json_body() if self.req_body else None
            options = options if isinstance(options, dict) else None
            self._send_json(200, api.delete(rt, ns, name or "", options))
        else:
            self._delete_collection(req)

    def _authorize_create_on_update(self, req: ResourceRequest) -> None:
        """A PUT that creates needs `create` too (the update handler's withAuthorization)."""
        state = self.server.state
        assert self.req_user is not None
        attrs = Attributes("create", req.rt.group, req.rt.plural, "", req.namespace or "",
                           req.name or "")  # fmt: skip
        if not state.authorizer.allowed(self.req_user, attrs):
            raise ApiError(
                403,
                "Forbidden",
                forbidden_message(self.req_user, attrs, req.rt.group_resource),
                {"name": req.name, **({"group": req.rt.group} if req.rt.group else {}),
                 "kind": req.rt.plural},
            )  # fmt: skip

    def _send_object(self, obj: dict) -> None:
        accept = self.headers.get("Accept") or ""
        if TABLE_MEDIA in accept:
            rt = resources.by_plural(_plural_of(obj))
            self._send_json(200, table_for(rt, [obj], time.time(), self.req_query))
        else:
            self._send_json(200, obj)

    def _list(self, req: ResourceRequest) -> None:
        api, query = self.server.state.api, self.req_query
        if query.get("resourceVersionMatch") == "Exact":
            wanted = int(query.get("resourceVersion") or 0)
            if wanted != api.store.resource_version:
                raise ApiError(
                    410, "Expired", "The resourceVersion for the provided list is too old."
                )
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
        body = api.list(req.rt, req.namespace, query.get("labelSelector"),
                        query.get("fieldSelector"), limit, query.get("continue"))  # fmt: skip
        if TABLE_MEDIA in (self.headers.get("Accept") or ""):
            table = table_for(req.rt, body["items"], time.time(), query)
            table["metadata"] = body["metadata"]
            self._send_json(200, table)
        else:
            self._send_json(200, body)

    def _patch(self, req: ResourceRequest) -> dict:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        patch_type = PATCH_CONTENT_TYPES.get(content_type)
        if patch_type is None:
            raise ApiError(415, "UnsupportedMediaType", _UNSUPPORTED_MEDIA)
        api = self.server.state.api
        return api.patch(req.rt, req.namespace, req.name or "", self._json_body(), patch_type,
                         req.subresource, self._field_manager())  # fmt: skip

    def _field_manager(self) -> str:
        """`fieldManager`, else the User-Agent up to its first "/" (the API server's rule)."""
        given = self.req_query.get("fieldManager")
        if given:
            return given
        agent = (self.headers.get("User-Agent") or "").split("/", 1)[0].strip()
        return agent or "unknown"

    def _log(self, req: ResourceRequest) -> None:
        query = self.req_query
        tail = query.get("tailLines")
        if tail is not None and not tail.lstrip("-").isdigit():
            raise bad_request(f"tailLines: invalid value {tail!r}")
        text = self.server.state.api.read_log(
            req.namespace or "",
            req.name or "",
            query.get("container") or None,
            _truthy(query.get("previous")),
            int(tail) if tail is not None else None,
        )
        self._send_text(200, text)

    def _proxy(self, verb: str, req: ResourceRequest) -> None:
        """The backend's answer, passed through as it came (status, body, text/plain), after
        the time the backend takes; the API server's own errors are Status bodies."""
        if verb != "get":
            raise ApiError(405, "MethodNotAllowed", "the simulated API server proxies GET only")
        answer = self.server.state.api.proxy(req.rt, req.namespace or "", req.name or "")
        if answer.delay:
            time.sleep(answer.delay)
        self._send_bytes(answer.status, answer.body.encode(), "text/plain; charset=utf-8", None)

    def _delete_collection(self, req: ResourceRequest) -> None:
        api = self.server.state.api
        body = api.list(req.rt, req.namespace, self.req_query.get("labelSelector"),
                        self.req_query.get("fieldSelector"))  # fmt: skip
        for item in body["items"]:
            try:
                api.delete(req.rt, item["metadata"].get("namespace"), item["metadata"]["name"])
            except ApiError:
                pass
        self._send_json(200, body)

    # ------------------------------------------------------------ watch

    def _watch(self, req: ResourceRequest) -> None:
        state, query = self.server.state, self.req_query
        send_initial_param = query.get("sendInitialEvents")
        rv_param = query.get("resourceVersion", "")
        if send_initial_param is not None:
            if state.faults.watch_list_disabled:
                raise ApiError(
                    422, "Invalid",
                    "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: "
                    "sendInitialEvents is forbidden for watch unless the WatchList feature gate "
                    "is enabled",
                    {"kind": "ListOptions", "group": "meta.k8s.io", "causes": [
                        {"reason": "FieldValueForbidden", "field": "sendInitialEvents",
                         "message": "Forbidden: sendInitialEvents is forbidden for watch unless "
                                    "the WatchList feature gate is enabled"}]},
                )  # fmt: skip
            if query.get("resourceVersionMatch") != "NotOlderThan":
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: '
                               "resourceVersionMatch: Forbidden: sendInitialEvents requires "
                               "setting resourceVersionMatch to NotOlderThan")  # fmt: skip
        send_initial = _truthy(send_initial_param) or (
            send_initial_param is None and rv_param in ("", "0")
        )
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        try:
            label_reqs = parse_label_selector(query.get("labelSelector"))
            field_reqs = parse_field_selector(query.get("fieldSelector"), req.rt.plural)
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        timeout_param = query.get("timeoutSeconds", "")
        timeout = float(timeout_param) if timeout_param.isdigit() else _DEFAULT_WATCH_TIMEOUT

        def matches(obj: dict | None) -> bool:
            if obj is None:
                return False
            meta = obj["metadata"]
            if req.namespace and req.rt.namespaced and meta.get("namespace") != req.namespace:
                return False
            if label_reqs and not labels_match(label_reqs, meta.get("labels") or {}):
                return False
            return not field_reqs or fields_match(field_reqs, obj)

        store = state.api.store
        expired: str | None = None
        initial: list[dict] = []
        with store.lock:
            if send_initial:
                initial = [o for o in store.select(req.rt.plural, req.namespace) if matches(o)]
                start_rv = store.resource_version
            else:
                start_rv = int(rv_param) if rv_param.isdigit() else store.resource_version
                try:
                    store.history_since(start_rv)
                except Expired as exc:
                    expired = str(exc)
        if expired is not None and state.faults.expired_watch_as_http:
            raise ApiError(410, "Expired", expired)
        self._start_stream()
        if state.faults.cut_watches:  # a proxy ending the stream at once: 200, zero events
            self._end_stream()
            return
        if expired is not None:
            self._send_event("ERROR", status_body(410, "Expired", expired))
            self._end_stream()
            return
        epoch = state.faults.watch_epoch
        for obj in initial:
            self._send_event("ADDED", obj)
        if _truthy(send_initial_param) and bookmarks:
            self._send_bookmark(req.rt, start_rv, initial_events_end=True)
        self._stream_changes(req, matches, start_rv, epoch, timeout, bookmarks)

    def _stream_changes(
        self,
        req: ResourceRequest,
        matches: Callable[[dict | None], bool],
        last_rv: int,
        epoch: int,
        timeout: float,
        bookmarks: bool,
    ) -> None:
        state = self.server.state
        store, faults = state.api.store, state.faults
        now = time.monotonic()
        deadline = now + timeout
        next_bookmark = now + state.bookmark_interval if bookmarks else float("inf")
        while not self.server.stopping.is_set() and faults.watch_epoch == epoch:
            try:
                changes = store.history_since(last_rv)
            except Expired as exc:
                self._send_event("ERROR", status_body(410, "Expired", str(exc)))
                break
            for change in changes:
                last_rv = change.resource_version
                event = _event_for(change, req.rt.plural, matches)
                if event is not None:
                    self._send_event(event, change.obj)
                    faults.watch_event_sent()
                    if faults.watch_epoch != epoch:
                        break
            now = time.monotonic()
            if now >= deadline or faults.watch_epoch != epoch:
                break
            if now >= next_bookmark:
                self._send_bookmark(req.rt, last_rv)
                next_bookmark = now + state.bookmark_interval
            if self._client_gone():
                raise _Streaming()
            wait = min(deadline, next_bookmark, now + _CLIENT_CHECK_INTERVAL) - now
            store.wait_for_change(
                last_rv,
                max(wait, 0.0),
                lambda: self.server.stopping.is_set() or faults.watch_epoch != epoch,
            )
        if self.server.stopping.is_set():
            raise _Streaming()
        self._end_stream()

    def _client_gone(self) -> bool:
        """During a watch the client sends nothing; readable means it hung up."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _send_bookmark(self, rt: ResourceType, resource_version: int, *,
                       initial_events_end: bool = False) -> None:  # fmt: skip
        meta: dict[str, Any] = {"resourceVersion": str(resource_version), "creationTimestamp": None}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        self._send_event("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                      "metadata": meta})  # fmt: skip

    # ------------------------------------------------------------ writing

    def _record(self, status: int) -> None:
        if self.recorded:
            return
        self.recorded = True
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "authorization" in headers:
            headers["authorization"] = headers["authorization"].split(" ", 1)[0] + " <redacted>"
        try:
            parsed = json.loads(self.req_body) if self.req_body else None
        except ValueError:
            parsed = None
        self.server.state.record(
            RequestRecord(
                method=self.req_method,
                path=self.req_path,
                query=dict(self.req_query),
                headers=headers,
                content_type=self.headers.get("Content-Type"),
                body=self.req_body,
                json=parsed,
                user=self.req_user.name if self.req_user else None,
                status=status,
                groups=self.req_user.groups if self.req_user else (),
            )
        )

    def _send_json(self, code: int, body: Any, *, content_type: str = "application/json",
                   headers: dict[str, str] | None = None) -> None:  # fmt: skip
        data = json.dumps(body, separators=(",", ":")).encode()
        self._send_bytes(code, data, content_type, headers)

    def _send_text(self, code: int, text: str) -> None:
        self._send_bytes(code, text.encode(), "text/plain", None)

    def _send_bytes(self, code: int, data: bytes, content_type: str,
                    headers: dict[str, str] | None) -> None:  # fmt: skip
        self._record(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_stream(self) -> None:
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def _send_event(self, event_type: str, obj: dict) -> None:
        line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n"
        data = line.encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (OSError, ssl.SSLError) as exc:
            raise _Streaming() from exc

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, ssl.SSLError) as exc:
            raise _Streaming() from exc


def _plural_of(obj: dict) -> str:
    kind = obj.get("kind", "")
    for rt in resources.REGISTRY:
        if rt.kind == kind:
            return rt.plural
    raise ApiError(500, "InternalError", f"unknown kind {kind!r}")


def _event_for(change: Change, plural: str, matches: Callable[[dict | None], bool]) -> str | None:
    """The watch event type a selective watch sends for one change, or None."""
    if change.resource != plural:
        return None
    now_matches = change.type != "DELETED" and matches(change.obj)
    was_matching = matches(change.prev)
    if change.type == "DELETED":
        return "DELETED" if was_matching else None
    if change.type == "ADDED":
        return "ADDED" if now_matches else None
    if now_matches and was_matching:
        return "MODIFIED"
    if now_matches:
        return "ADDED"
    return "DELETED" if was_matching else None


def _injected_error(failure: Any) -> ApiError:
    reasons = {
        429: ("TooManyRequests", "Too many requests, please try again later."),
        500: ("InternalError", "Internal error occurred: injected fault"),
        503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
        504: ("Timeout", "The request timed out"),
        409: ("Conflict", "injected conflict"),
        410: ("Expired", "too old resource version"),
        403: ("Forbidden", "injected forbidden"),
    }
    reason, message = reasons.get(failure.status, ("InternalError", "injected fault"))
    details = {"retryAfterSeconds": failure.retry_after} if failure.retry_after else None
    return ApiError(failure.status, reason, failure.message or message, details,
                    failure.retry_after)  # fmt: skip
