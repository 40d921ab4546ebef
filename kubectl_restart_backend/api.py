"""The one module that talks to the API server.

Everything goes through the official ``kubernetes`` client (its auth, TLS and exec-plugin
handling), but we call the typed methods with ``_preload_content=False`` and decode the JSON
ourselves: callers get plain dicts exactly as the server sent them, the same across client
versions and without the cost of building model objects. Errors come back as ``ApiError``
with the server's own message; transient ones (429, 5xx, connection refused) are retried with
back-off inside the run's overall deadline.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Union

from kubectl_restart_backend.cancellation import checkpoint, pause
from kubectl_restart_backend.errors import ApiError
from kubectl_restart_backend.repo_url import redact_url
from kubectl_restart_backend.retry import (
    NOT_APPLIED_STATUSES,
    RETRYABLE_STATUSES,
    RetryBudget,
    compute_backoff,
    parse_retry_after,
)
from kubectl_restart_backend.verify import Reply

if TYPE_CHECKING:
    from kubectl_restart_backend.proxies import Proxy

# resource -> (API class, cluster-wide list method, namespaced list method, API group)
_LISTS = {
    "deployments": (
        "AppsV1Api",
        "list_deployment_for_all_namespaces",
        "list_namespaced_deployment",
        "apps",
    ),
    "statefulsets": (
        "AppsV1Api",
        "list_stateful_set_for_all_namespaces",
        "list_namespaced_stateful_set",
        "apps",
    ),
    "daemonsets": (
        "AppsV1Api",
        "list_daemon_set_for_all_namespaces",
        "list_namespaced_daemon_set",
        "apps",
    ),
    "replicasets": (
        "AppsV1Api",
        "list_replica_set_for_all_namespaces",
        "list_namespaced_replica_set",
        "apps",
    ),
    "controllerrevisions": (
        "AppsV1Api",
        "list_controller_revision_for_all_namespaces",
        "list_namespaced_controller_revision",
        "apps",
    ),
    "pods": ("CoreV1Api", "list_pod_for_all_namespaces", "list_namespaced_pod", ""),
    "events": ("CoreV1Api", "list_event_for_all_namespaces", "list_namespaced_event", ""),
    "services": ("CoreV1Api", "list_service_for_all_namespaces", "list_namespaced_service", ""),
    "ingresses": (
        "NetworkingV1Api",
        "list_ingress_for_all_namespaces",
        "list_namespaced_ingress",
        "networking.k8s.io",
    ),
}
# workload resource -> the AppsV1Api suffix of its read/patch methods
_WORKLOADS = {
    "deployments": "deployment",
    "statefulsets": "stateful_set",
    "daemonsets": "daemon_set",
}

DEFAULT_REQUEST_TIMEOUT = 30.0
NOTICE_AFTER = 2.0  # seconds of retrying after which the user is told why it is slow
NOTICE_EVERY = 5.0  # at most one retry notice per this many seconds
FIRST_CONTACT_TRIES = 3  # connection attempts before a never-reached server is given up
FIELD_MANAGER = "kubectl-restart-backend"


class WatchExpired(Exception):
    """The watch's resourceVersion is older than the server's history: list again."""


class PatchOutcomeUnknown(Exception):
    """The PATCH was sent but no answer says whether it was applied."""


@dataclass(frozen=True)
class Listing:
    items: list[dict]
    resource_version: str


@dataclass(frozen=True)
class _Failure:
    """What a failed call means for retrying it."""

    retryable: bool
    applied_unknown: bool  # the request may have reached storage
    retry_after: Optional[float]
    error: ApiError
    unreachable: bool = False  # no connection was made at all
    # No HTTP answer came (refused, reset, timed out): before the server has ever answered,
    # that is a wrong address, scheme or proxy far more often than a restart in progress.
    transport: bool = False
    timed_out: bool = False  # the request timeout passed: a slow server, said as such


class KubeApi:
    """Plain-dict access to the few API calls the plugin needs."""

    def __init__(
        self,
        api_client: Any,
        *,
        budget: RetryBudget,
        request_timeout: Optional[float] = None,
        on_retry: Optional[Callable[[str], None]] = None,
        sleep: Callable[[float], None] = pause,
        proxy: Optional[Proxy] = None,
    ) -> None:
        """``proxy``: the proxy the client was built with (``proxies.choose_proxy``), for
        messages."""
        self._client = api_client
        self._proxy_setting = proxy
        self._budget = budget
        # None: not given (our default); 0: no timeout at all, as kubectl's --request-timeout.
        self._timeout = DEFAULT_REQUEST_TIMEOUT if request_timeout is None else request_timeout
        self._on_retry = on_retry
        self._sleep = sleep
        self._apis: dict[str, Any] = {}
        # Until the server has answered once, a refused connection most likely means a wrong
        # address or a cluster that is down: say so quickly instead of retrying to the deadline.
        # Once it has answered, a refused connection is a restart worth waiting out.
        self._reached = False
        self._quiet_until = float("-inf")

    def extend_deadline(self, deadline: float) -> None:
        """Let retries go on until ``deadline`` at least: each wave of an ordered run gets
        its own --timeout, counted from its start (after any wait for other runs' locks,
        which is not taken from it), so the run's deadline moves with the waves."""
        current = self._budget.deadline
        if current is not None and deadline > current:
            self._budget = RetryBudget(deadline, self._budget.clock)

    @property
    def host(self) -> str:
        """The server's URL as it may be printed (credentials in it redacted)."""
        return redact_url(str(self._client.configuration.host))

    # -- reads ---------------------------------------------------------------------------

    def list(
        self,
        resource: str,
        namespace: Optional[str] = None,
        *,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
    ) -> Listing:
        api_name, all_ns, namespaced, _group = _LISTS[resource]
        kwargs = _selectors(label_selector, field_selector)
        if namespace is None:
            method = getattr(self._api(api_name), all_ns)
            body = self._json(f"list {resource}", lambda: method(**kwargs, **self._opts()))
        else:
            method = getattr(self._api(api_name), namespaced)
            body = self._json(
                f"list {resource}", lambda: method(namespace, **kwargs, **self._opts())
            )
        meta = body.get("metadata") or {}
        return Listing(body.get("items") or [], str(meta.get("resourceVersion") or ""))

    def get_workload(self, resource: str, namespace: str, name: str) -> dict:
        """GET one Deployment, StatefulSet or DaemonSet (``resource``: its plural)."""
        read = getattr(self._api("AppsV1Api"), f"read_namespaced_{_WORKLOADS[resource]}")
        return self._json(f"get {resource}", lambda: read(name, namespace, **self._opts()))

    def get_deployment(self, namespace: str, name: str) -> dict:
        return self.get_workload("deployments", namespace, name)

    def list_httproutes(self, namespace: str) -> list[dict]:
        """Gateway API routes; an absent API is an empty answer, not an error."""
        custom = self._api("CustomObjectsApi")
        try:
            body = self._json(
                "list httproutes",
                lambda: custom.list_namespaced_custom_object(
                    "gateway.networking.k8s.io", "v1", namespace, "httproutes", **self._opts()
                ),
                retry=False,
            )
        except ApiError as err:
            if err.status == 404:
                return []
            raise
        return body.get("items") or []

    def read_pod_log(
        self, namespace: str, pod: str, *, container: Optional[str], previous: bool, tail: int
    ) -> str:
        core = self._api("CoreV1Api")
        kwargs: dict[str, Any] = {"tail_lines": tail, "previous": previous}
        if container:
            kwargs["container"] = container
        data = self._raw(
            "get pods/log",
            lambda: core.read_namespaced_pod_log(pod, namespace, **kwargs, **self._opts()),
        )
        return data.decode("utf-8", errors="replace")

    def proxy_get(self, namespace: str, proxy_id: str, path: str, *, timeout: float) -> Reply:
        """GET ``path`` of a Service through the API server's proxy (``services/ID/proxy``),
        with the user's own credentials: the smoke check's one request.

        Never retried and never raised: whatever came back (the backend's answer passed on
        by the proxy, the API server's own Status, or no answer at all) is returned as a
        ``Reply`` for the check to judge. ``timeout`` bounds the whole answer. The URL is
        built here (the typed method would escape the path's ``/`` and drop its query).
        """
        from urllib.parse import parse_qsl, quote, urlsplit

        from kubernetes.client.exceptions import ApiException

        split = urlsplit(path)
        resource = (
            f"/api/v1/namespaces/{quote(namespace, safe='')}/services/"
            f"{quote(proxy_id, safe=':')}/proxy{quote(split.path or '/', safe=_PATH_CHARS)}"
        )
        query = parse_qsl(split.query, keep_blank_values=True)
        limit = max(0.1, timeout)
        try:
            status, data = _get_any_status(
                self._client, resource, query, (min(self._timeout or limit, limit), limit)
            )
        except ApiException as exc:  # status 0: the client's way of saying TLS failed
            return Reply(None, error=str(exc.reason))
        except Exception as exc:  # noqa: BLE001 - no answer: said, never raised
            return _no_answer(exc, self.host, self._proxy)
        body = _text(data)
        api_status = _api_status(body) if not 200 <= status <= 299 else None
        if api_status is not None:
            return Reply(status, api_status[1], api_reason=api_status[0])
        return Reply(status, body)

    def can_i(
        self, verb: str, resource: str, *, group: str, namespace: str, name: str = ""
    ) -> bool:
        """Ask the server (SelfSubjectAccessReview) whether we may do ``verb`` on ``resource``."""
        auth = self._api("AuthorizationV1Api")
        attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
        if name:
            attrs["name"] = name
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        body = self._json(
            "create selfsubjectaccessreviews",
            lambda: auth.create_self_subject_access_review(review, **self._opts()),
        )
        return bool((body.get("status") or {}).get("allowed"))

    # -- the restart lock (a coordination.k8s.io/v1 Lease per workload) ------------------

    def get_lease(self, namespace: str, name: str) -> Optional[dict]:
        """The Lease, or None when there is none (404)."""
        coordination = self._api("CoordinationV1Api")
        try:
            return self._json(
                "get leases",
                lambda: coordination.read_namespaced_lease(name, namespace, **self._opts()),
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def create_lease(self, namespace: str, body: dict) -> dict:
        """POST a new Lease; the API server answers 409 AlreadyExists if another run was first.

        Raises ``PatchOutcomeUnknown`` when it may have been created: read it back."""
        coordination = self._api("CoordinationV1Api")
        return self._json(
            "create leases",
            lambda: coordination.create_namespaced_lease(
                namespace, body, field_manager=FIELD_MANAGER, **self._opts()
            ),
            write=True,
        )

    def replace_lease(self, namespace: str, name: str, body: dict, *, retry: bool = True) -> dict:
        """PUT the Lease at the resourceVersion in ``body``: 409 Conflict if anyone wrote it
        since we read it (the optimistic concurrency the lock relies on). ``retry=False``:
        one attempt (a renewal is tried again anyway; a release must not hold up the exit).

        Raises ``PatchOutcomeUnknown`` when it may have been applied: read it back."""
        coordination = self._api("CoordinationV1Api")
        return self._json(
            "update leases",
            lambda: coordination.replace_namespaced_lease(
                name, namespace, body, field_manager=FIELD_MANAGER, **self._opts()
            ),
            write=True,
            retry=retry,
        )

    # -- the one write -------------------------------------------------------------------

    def patch_workload(
        self, resource: str, namespace: str, name: str, patch: Union[dict, list]
    ) -> dict:
        """Send one patch (a dict: strategic merge; a list: JSON patch) to a Deployment,
        StatefulSet or DaemonSet.

        Retried only when it surely was not applied.

        Raises ``PatchOutcomeUnknown`` when the request may have been applied: the caller
        reads the object back before deciding anything.
        """
        method = getattr(self._api("AppsV1Api"), f"patch_namespaced_{_WORKLOADS[resource]}")
        return self._json(
            f"patch {resource}",
            lambda: method(name, namespace, patch, field_manager=FIELD_MANAGER, **self._opts()),
            write=True,
        )

    def patch_deployment(self, namespace: str, name: str, patch: Union[dict, list]) -> dict:
        return self.patch_workload("deployments", namespace, name, patch)

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Delete one pod, and only the very pod we judged: the ``uid`` precondition makes
        the server refuse (409) if a pod of the same name replaced it meanwhile (StatefulSet
        pods keep their names). Not retried when the outcome is unknown: the watch shows
        whether it went."""
        core = self._api("CoreV1Api")
        body = {"preconditions": {"uid": uid}} if uid else {}
        self._raw(
            "delete pods",
            lambda: core.delete_namespaced_pod(name, namespace, body=body, **self._opts()),
            retry=False,
        )

    # -- watch ---------------------------------------------------------------------------

    def watch(
        self,
        resource: str,
        namespace: str,
        *,
        resource_version: str,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        timeout_seconds: int = 290,
        stop: Optional[threading.Event] = None,
    ) -> Iterator[dict]:
        """Yield watch events (``{"type", "object"}``) until the server ends the stream.

        Opening the stream is retried like any read (429/5xx/refused, honouring Retry-After,
        within the deadline); ``stop`` cuts a back-off short when the caller is done.
        Raises ``WatchExpired`` on 410 (as HTTP status or ERROR event) so the caller relists.
        """
        api_name, _all, namespaced, _group = _LISTS[resource]
        method = getattr(self._api(api_name), namespaced)
        kwargs = _selectors(label_selector, field_selector)
        if resource_version:
            kwargs["resource_version"] = resource_version

        def open_stream() -> Any:
            return method(
                namespace,
                watch=True,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                # (connect, read); with --request-timeout 0 the connect wait is bounded by the
                # read one (the 34+ client refuses None in the pair).
                _request_timeout=(self._timeout or timeout_seconds + 15, timeout_seconds + 15),
                **kwargs,
            )

        try:
            response = self._call(f"watch {resource}", open_stream, stop=stop)
        except ApiError as err:
            if err.status == 410:
                raise WatchExpired(err.message) from None
            raise
        try:
            yield from _decode_watch_stream(response, f"watch {resource}", self.host)
        finally:
            response.release_conn()

    # -- plumbing ------------------------------------------------------------------------

    def tell_retry(self, started: float, delay: float, message: str, action: str) -> None:
        """One notice per stretch of trouble, not one per call (three watches fail at once)."""
        now = self._budget.clock()
        if self._on_retry is None or now - started + delay <= NOTICE_AFTER:
            return
        if now < self._quiet_until:
            return
        self._quiet_until = now + NOTICE_EVERY
        self._on_retry(describe_retry(message, action, delay))

    @property
    def _proxy(self) -> Optional[Proxy]:
        if self._proxy_setting is not None:
            return self._proxy_setting
        proxy = getattr(self._client.configuration, "proxy", None)  # a client built elsewhere
        if not proxy:
            return None
        from kubectl_restart_backend.proxies import Proxy

        return Proxy(redact_url(str(proxy)), "proxy-url")

    def _api(self, name: str) -> Any:
        if name not in self._apis:
            from kubernetes import client

            self._apis[name] = getattr(client, name)(self._client)
        return self._apis[name]

    def _opts(self) -> dict[str, Any]:
        # A (connect, read) pair: the client silently ignores a float total timeout.
        if not self._timeout:
            return {"_preload_content": False}
        return {"_preload_content": False, "_request_timeout": (self._timeout, self._timeout)}

    def _json(self, action: str, call: Callable[[], Any], **kw: Any) -> dict:
        data = self._raw(action, call, **kw)
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise ApiError(
                f"the API server at {self.host} sent a response that is not JSON ({action})",
                "check that the kubeconfig's server address points at a Kubernetes API server",
            ) from None

    def _raw(self, action: str, call: Callable[[], Any], **kw: Any) -> bytes:
        response = self._call(action, call, **kw)
        try:
            return response.data
        finally:
            response.release_conn()

    def _call(
        self,
        action: str,
        call: Callable[[], Any],
        *,
        retry: bool = True,
        write: bool = False,
        stop: Optional[threading.Event] = None,
    ) -> Any:
        """Run ``call``; retry what may succeed later, while the deadline allows.

        A write is retried only when the server surely did not apply it (429/503, or the
        connection was never made); otherwise ``PatchOutcomeUnknown`` tells the caller to read
        the object back first.
        """
        attempt = 0
        started = self._budget.clock()
        while True:
            checkpoint()  # a cluster thread asked to stop stops here, before the next request
            try:
                response = call()
                self._reached = True
                return response
            except Exception as exc:  # translated below; nothing escapes untranslated
                failure = classify_failure(exc, action, self.host, self._proxy)
                if not failure.unreachable:
                    self._reached = True  # the server answered, if only with an error
                if write and failure.applied_unknown:
                    raise PatchOutcomeUnknown(failure.error.message) from None
                delay = compute_backoff(attempt, failure.retry_after)
                if not retry or not failure.retryable or not self._budget.allows(delay):
                    raise failure.error from None
                if attempt >= FIRST_CONTACT_TRIES and (
                    failure.timed_out or (failure.transport and not self._reached)
                ):
                    raise failure.error from None
                self.tell_retry(started, delay, failure.error.message, action)
                if stop is None:
                    self._sleep(delay)
                elif stop.wait(delay):
                    raise failure.error from None
                attempt += 1


_PATH_CHARS = "/:@!$&'()*+,;=-._~%"  # left as they are in a proxied path (RFC 3986 pchar)


def _text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return "" if data is None else str(data)


def _get_any_status(
    client: Any, resource: str, query: list, timeout: tuple[float, float]
) -> tuple[int, Any]:
    """(status, body) of a GET of ``resource`` with the client's authentication, whatever the
    status, on both client lines: up to 33.x ``call_api`` sends and raises ``ApiException``
    for a status outside 2xx; from 34 ``param_serialize`` + ``call_api`` return any status.
    Raises only when no answer came (an ``ApiException`` with status 0 for TLS)."""
    from kubernetes.client.exceptions import ApiException

    if hasattr(client, "param_serialize"):
        method, url, headers, body, post = client.param_serialize(
            "GET", resource, query_params=query, auth_settings=["BearerToken"]
        )
        response = client.call_api(method, url, headers, body, post, _request_timeout=timeout)
        try:
            return response.status, response.read()
        finally:
            response.response.release_conn()
    try:
        response = client.call_api(
            resource,
            "GET",
            query_params=query,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
            _return_http_data_only=True,
        )
    except ApiException as exc:
        if not exc.status:
            raise
        return exc.status, exc.body
    try:
        return response.status, response.data
    finally:
        response.release_conn()


def _no_answer(exc: Exception, host: str, proxy: Optional[Proxy]) -> Reply:
    """No HTTP answer: why, in the words of every other call; ``timed_out`` only when the API
    server took the request and the answer did not come (the backend, most likely, is slow)."""
    try:
        failure = classify_failure(exc, "get services/proxy", host, proxy)
    except Exception:  # noqa: BLE001 - not one the client raises: name it
        return Reply(None, error=f"{type(exc).__name__}: {exc}")
    slow = failure.timed_out and not failure.unreachable
    return Reply(None, error=failure.error.message, timed_out=slow)


def _api_status(body: str) -> Optional[tuple[str, str]]:
    """(reason, message) when ``body`` is the API server's own ``Status`` (not the backend's
    answer passed on by the proxy), else None."""
    if not body.startswith("{"):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or parsed.get("kind") != "Status":
        return None
    if parsed.get("apiVersion") != "v1":
        return None
    return str(parsed.get("reason") or "Unknown"), str(parsed.get("message") or "")


def describe_retry(message: str, action: str, delay: float) -> str:
    """The notice shown while a call keeps failing: what failed, and that we keep trying."""
    return f"{action}: {message.rstrip('.')}; retrying in {delay:.1f}s"


def _selectors(label_selector: Optional[str], field_selector: Optional[str]) -> dict[str, str]:
    kwargs = {}
    if label_selector:
        kwargs["label_selector"] = label_selector
    if field_selector:
        kwargs["field_selector"] = field_selector
    return kwargs


def _decode_watch_stream(response: Any, action: str, host: str) -> Iterator[dict]:
    """Split the chunked body into JSON lines; ERROR events become exceptions."""
    pending = b""
    try:
        for chunk in response.stream(amt=None, decode_content=False):
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    yield _watch_event(line, action, host)
    except Exception as exc:
        failure = classify_failure(exc, action, host)
        raise failure.error from None
    if pending.strip():
        yield _watch_event(pending, action, host)


def _watch_event(line: bytes, action: str, host: str) -> dict:
    try:
        event = json.loads(line)
    except ValueError:
        raise ApiError(
            f"the API server at {host} sent a malformed watch event ({action})"
        ) from None
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        if status.get("code") == 410:
            raise WatchExpired(status.get("message") or "resource version too old")
        code = status.get("code")
        raise ApiError(
            status.get("message") or f"{action} failed",
            _hint_for(int(code or 0), action),
            status=code,
            reason=status.get("reason") or "",
            retryable=code in RETRYABLE_STATUSES,
        )
    return event


def classify_failure(
    exc: BaseException, action: str, host: str, proxy: Optional[Proxy] = None
) -> _Failure:
    """Turn whatever the client raised into an ``ApiError`` and a retry decision."""
    failure = _classify(exc, action, host, proxy)
    failure.error.retryable = failure.retryable
    return failure


def _classify(exc: BaseException, action: str, host: str, proxy: Optional[Proxy]) -> _Failure:
    from kubernetes.client.exceptions import ApiException
    from urllib3 import exceptions as http

    if isinstance(exc, ApiError):
        return _Failure(exc.retryable, False, None, exc)
    if isinstance(exc, ApiException) and not exc.status and str(exc.reason).startswith("SSL"):
        # the client turns SSLError into status 0
        return _tls_failure(str(exc.reason), host, action)
    if isinstance(exc, ApiException):
        return _from_api_exception(exc, action, host)
    if isinstance(exc, http.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, http.ProxyError):
        return _proxy_failure(exc, host, proxy)
    if isinstance(exc, http.SSLError):
        return _tls_failure(str(exc), host, action)
    if isinstance(exc, http.NewConnectionError):  # before timeouts: a subclass in urllib3 1.x
        return _Failure(
            True,
            False,
            None,
            ApiError(
                f"cannot reach the API server at {host}",
                "check that the cluster is running and that --context/--kubeconfig point at it",
            ),
            unreachable=True,
            transport=True,
        )
    if isinstance(exc, (http.ConnectTimeoutError, http.ReadTimeoutError)):
        connecting = isinstance(exc, http.ConnectTimeoutError)
        message = (
            f"timed out connecting to the API server at {host} ({action})"
            if connecting
            else f"the API server at {host} timed out: no answer to {action} in time"
        )
        return _Failure(
            True,
            not connecting,
            None,
            ApiError(
                message,
                "the server is slow or overloaded: try again, or allow longer with "
                "--request-timeout (kubectl get --raw /readyz tells whether it is healthy)",
            ),
            unreachable=connecting,
            transport=True,
            timed_out=True,
        )
    if isinstance(exc, (http.ProtocolError, ConnectionError)):
        return _Failure(
            True,
            True,
            None,
            ApiError(
                f"the connection to the API server at {host} broke during {action}",
                "check the network to the cluster, then run the command again",
            ),
            transport=True,
        )
    if isinstance(exc, OSError):
        return _Failure(
            True,
            False,
            None,
            ApiError(
                f"cannot talk to the API server at {host}: {exc.strerror or exc}",
                "check the kubeconfig's server address and the network to the cluster",
            ),
            transport=True,
        )
    if isinstance(exc, http.HTTPError):  # e.g. LocationParseError: nothing to retry
        return _Failure(
            False,
            False,
            None,
            ApiError(
                f"cannot send {action} to the API server at {host}: {type(exc).__name__}",
                "check the kubeconfig's server address",
            ),
        )
    raise exc


_TUNNEL_REFUSED = re.compile(r"Tunnel connection failed: (\d{3})(?: ([^\n'\"]*))?")


def _proxy_failure(exc: BaseException, host: str, proxy: Optional[Proxy]) -> _Failure:
    """The proxy was not reached (retried like a refused connection), or it answered the
    CONNECT with an error: 407 (wrong or missing credentials) and other 4xx are said as such
    and not retried, 5xx is retried."""
    shown = proxy.shown if proxy is not None else ""
    hint = proxy.hint if proxy is not None else "check that the proxy is running"
    refused = _TUNNEL_REFUSED.search(str(exc))
    if refused is None:
        return _Failure(
            True,
            False,
            None,
            ApiError(
                f"cannot reach the API server at {host} through the proxy {shown}".rstrip(),
                hint,
            ),
            unreachable=True,
            transport=True,
        )
    status = int(refused.group(1))
    answer = f"{status} {refused.group(2) or ''}".strip()
    if status == 407:
        hint = "check the user and password in the proxy URL (user:password@ before the host)"
    return _Failure(
        status >= 500,
        False,
        None,
        ApiError(
            f"the proxy {shown} refused the connection to the API server at {host}: {answer}",
            hint,
        ),
        unreachable=True,
        transport=True,
    )


def _tls_failure(text: str, host: str, action: str) -> _Failure:
    """A certificate problem is never retried and never answered with "skip verification";
    a handshake the server (or a load balancer before it) cut short is a broken connection,
    retried like one: calling it a certificate problem would send the user to fix a
    kubeconfig that is right."""
    upper = text.upper()
    if any(marker in upper for marker in _NOT_TLS_MARKERS):
        return _Failure(
            False,
            False,
            None,
            ApiError(
                f"the server at {host} does not speak TLS (https://), though the kubeconfig "
                "says so",
                "check the port in server: of the kubeconfig; if the server really is plain "
                "HTTP, write http:// (tokens then travel unencrypted)",
            ),
        )
    if any(marker in upper for marker in _CERTIFICATE_MARKERS):
        return _Failure(
            False,
            False,
            None,
            ApiError(
                f"TLS verification failed for the API server at {host}: {_ssl_reason(text)}",
                "check the cluster's certificate-authority and server address in your "
                "kubeconfig (verification stays on)",
            ),
        )
    if any(marker in upper for marker in _HANDSHAKE_CUT_MARKERS):
        return _Failure(
            True,
            False,  # no request goes out before the handshake is done
            None,
            ApiError(
                f"the API server at {host} closed the connection during the TLS handshake "
                f"({action})",
                "the server or a load balancer in front of it dropped the connection: check "
                "that the API server is up (kubectl get --raw /readyz), then run the command "
                "again",
            ),
            transport=True,
        )
    return _Failure(
        False,
        False,
        None,
        ApiError(
            f"the TLS handshake with the API server at {host} failed: {_openssl_words(text)}",
            "check the server address in your kubeconfig and that the server accepts TLS 1.2 "
            "or newer (verification stays on)",
        ),
    )


# OpenSSL's and Python's words for a certificate the CA or the host name does not vouch for.
_CERTIFICATE_MARKERS = (
    "CERTIFICATE_VERIFY_FAILED",
    "CERTIFICATE VERIFY FAILED",
    "HOSTNAME MISMATCH",
    "DOESN'T MATCH",
)
# ... and for a connection closed or reset before the handshake finished.
_HANDSHAKE_CUT_MARKERS = (
    "UNEXPECTED_EOF",
    "EOF OCCURRED",
    "HANDSHAKE OPERATION TIMED OUT",
    "CONNECTION RESET",
    "ECONNRESET",
    "TLS/SSL CONNECTION HAS BEEN CLOSED",
)
# OpenSSL's words when the other end answers a TLS hello in plain HTTP.
_NOT_TLS_MARKERS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")
# Go's net/http answer (with status 400) to plain HTTP on a TLS port: kube-apiserver says it.
_HTTP_TO_HTTPS = "Client sent an HTTP request to an HTTPS server"


def _from_api_exception(exc: Any, action: str, host: str = "") -> _Failure:
    status = int(exc.status or 0)
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if status == 400 and body and _HTTP_TO_HTTPS in body:
        return _Failure(
            False,
            False,
            None,
            ApiError(
                f"the API server at {host} speaks HTTPS, but the kubeconfig says http://",
                "write https:// in server: of the kubeconfig (kubectl config set-cluster NAME "
                "--server=https://HOST:PORT)",
                status=400,
            ),
        )
    message, reason = "", str(exc.reason or "")
    try:
        parsed = json.loads(body) if body else {}
        if isinstance(parsed, dict) and parsed.get("kind") == "Status":
            message = parsed.get("message") or ""
            reason = parsed.get("reason") or reason
    except ValueError:
        pass
    headers = exc.headers or {}
    retry_after = parse_retry_after(headers.get("Retry-After") if hasattr(headers, "get") else None)
    if not message:
        message = f"{action} failed: HTTP {status} {exc.reason or ''}".strip()
    error = ApiError(message, _hint_for(status, action, message), status=status, reason=reason)
    retryable = status in RETRYABLE_STATUSES
    return _Failure(retryable, retryable and status not in NOT_APPLIED_STATUSES, retry_after, error)


def _hint_for(status: int, action: str, message: str = "") -> str:
    verb, _, resource = action.partition(" ")
    if status == 403 and 'User "system:anonymous"' in message:
        # The server saw no credentials it accepts: more permissions would not help.
        return (
            "the API server treated you as anonymous: your kubeconfig user sent no credentials "
            "it accepts (an invalid or expired token?); log in again (kubectl auth whoami)"
        )
    if status == 401:
        return (
            "your credentials were rejected: log in again or refresh the token in your "
            "kubeconfig (kubectl auth whoami shows who you are)"
        )
    if status == 403:
        return (
            f"ask a cluster admin for permission to {verb} {resource} "
            "(the README's 'Permissions' section has the minimal Role)"
        )
    if status == 404:
        return "check the namespace and name (kubectl get deployments -A)"
    if status == 429 or status >= 500:
        return "the API server is overloaded or restarting: try again in a minute"
    return "check the request and try again"


def _openssl_words(text: str) -> str:
    """The last line of the client's text without the ``(_ssl.c:NNN)`` source position."""
    line = (text.strip().splitlines() or [""])[-1]
    return line.split("(_ssl")[0].strip(" '\")(") or "unknown TLS error"


def _ssl_reason(text: str) -> str:
    for marker in ("certificate verify failed: ", "doesn't match", "hostname mismatch"):
        if marker in text:
            start = text.index(marker)
            return text[start:].split("(_ssl")[0].rstrip(" ')\"")
    return "certificate verify failed"


# -- the -v trace ----------------------------------------------------------------------------

TRACE_REQUESTS, TRACE_HEADERS, TRACE_BODIES = 6, 7, 8  # kubectl's -v levels for the same
_TRACE_BODY_CHARS = 2000
_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")


def request_tracer(
    level: int, write: Optional[Callable[[str], None]] = None
) -> Optional[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """From ``-v 6`` on, a wrapper for the client's request function that says on stderr
    what was asked and answered, as kubectl's ``-v`` does: method, URL, status and time (6),
    the request headers (7), the request body (8). Credentials are never printed:
    Authorization is masked and URLs are redacted."""
    if level < TRACE_REQUESTS:
        return None
    say = write or _write_stderr

    def wrap(request: Callable[..., Any]) -> Callable[..., Any]:
        def traced(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            shown_url = _trace_url(url, kwargs.get("query_params"))
            if level >= TRACE_HEADERS:
                for name, value in _header_items(kwargs.get("headers")):
                    masked = "<masked>" if name.lower() in _SECRET_HEADERS else value
                    say(f"trace: {method} {shown_url} header {name}: {masked}")
            if level >= TRACE_BODIES and kwargs.get("body") is not None:
                say(f"trace: {method} {shown_url} body: {_trace_body(kwargs['body'])}")
            started = time.monotonic()
            try:
                response = request(method, url, *args, **kwargs)
            except Exception as exc:
                answer = getattr(exc, "status", None) or type(exc).__name__
                say(f"trace: {method} {shown_url} {answer} in {_ms(started)} ms")
                raise
            reason = getattr(response, "reason", "") or ""
            say(f"trace: {method} {shown_url} {response.status} {reason} in {_ms(started)} ms")
            return response

        return traced

    return wrap


def _trace_url(url: str, query: Any) -> str:
    """The URL with its query; only the credentials of the authority part are redacted."""
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(url)
    text = redact_url(f"{parts.scheme}://{parts.netloc}") + parts.path
    pairs = [p for p in (parts.query, urlencode(query) if query else "") if p]
    return f"{text}?{'&'.join(pairs)}" if pairs else text


def _header_items(headers: Any) -> list[tuple[str, str]]:
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(name), " ".join(str(value).split())) for name, value in items]


def _trace_body(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= _TRACE_BODY_CHARS else text[: _TRACE_BODY_CHARS - 1] + "…"


def trace_proxy(
    level: int, proxy: Optional[Proxy], write: Optional[Callable[[str], None]] = None
) -> None:
    """From ``-v 6`` on, say which proxy the requests go through and which setting chose
    it: with several proxy variables and NO_PROXY about, that is the usual question."""
    if level >= TRACE_REQUESTS and proxy is not None:
        (write or _write_stderr)(f"trace: requests go through the proxy {proxy.shown}")


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _write_stderr(line: str) -> None:
    import sys

    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
