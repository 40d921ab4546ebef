"""How failures of API calls are read: retry or not, applied or not, and what to tell the user.

The table pins ``classify_failure`` over the exceptions the client and urllib3 really raise;
the rest drives ``KubeApi`` against the simulated cluster with a short deadline.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3 import exceptions as http

from kubectl_restart_backend.api import classify_failure
from kubectl_restart_backend.errors import ApiError
from kubectl_restart_backend.session import ConnectOptions, open_session

HOST = "https://127.0.0.1:6443"


def api_exception(status, message="", reason="", retry_after=None):
    exc = ApiException(status=status, reason=reason or "Error")
    body = {"kind": "Status", "code": status, "message": message, "reason": reason}
    exc.body = json.dumps(body).encode()
    exc.headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return exc


@pytest.mark.parametrize(
    "exc, retryable, applied_unknown, retry_after, words",
    [
        (api_exception(429, "Too many requests", retry_after="3"), True, False, 3.0, "Too many"),
        (api_exception(503, "unavailable"), True, False, None, "unavailable"),
        (api_exception(500, "etcd timeout"), True, True, None, "etcd timeout"),
        (api_exception(504, "timeout"), True, True, None, "timeout"),
        (api_exception(401, "Unauthorized"), False, False, None, "Unauthorized"),
        (
            api_exception(403, 'User "dev" cannot patch resource "deployments"'),
            False,
            False,
            None,
            "cannot patch",
        ),
        (api_exception(404, "not found"), False, False, None, "not found"),
        (api_exception(409, "conflict"), False, False, None, "conflict"),
        (api_exception(422, "invalid"), False, False, None, "invalid"),
        (
            ApiException(status=0, reason="SSLError\n[SSL: CERTIFICATE_VERIFY_FAILED] x"),
            False,
            False,
            None,
            "TLS verification failed",
        ),
        (
            http.SSLError("certificate verify failed: Hostname mismatch, not valid for 'x'"),
            False,
            False,
            None,
            "TLS verification failed",
        ),
        (
            ApiException(
                status=0,
                reason="SSLError\n[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in "
                "violation of protocol (_ssl.c:1006)",
            ),
            True,
            False,
            None,
            "closed the connection during the TLS handshake",
        ),
        (
            http.SSLError("_ssl.c:990: The handshake operation timed out"),
            True,
            False,
            None,
            "closed the connection during the TLS handshake",
        ),
        (
            http.SSLError(
                "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1006)"
            ),
            False,
            False,
            None,
            "6443 failed: [SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version",
        ),
        (http.NewConnectionError(None, "refused"), True, False, None, "cannot reach"),
        (http.ReadTimeoutError(None, "/", "read timed out"), True, True, None, "timed out"),
        (http.ConnectTimeoutError("timed out"), True, False, None, "timed out connecting"),
        (
            http.ProxyError("Unable to connect to proxy", OSError("refused")),
            True,
            False,
            None,
            "through the proxy",
        ),
        (
            http.ProxyError(
                "Unable to connect to proxy",
                OSError("Tunnel connection failed: 407 Proxy Authentication Required"),
            ),
            False,
            False,
            None,
            "refused the connection to the API server at https://127.0.0.1:6443: 407 Proxy "
            "Authentication Required",
        ),
        (
            http.ProxyError(
                "Unable to connect to proxy", OSError("Tunnel connection failed: 503 Unavailable")
            ),
            True,
            False,
            None,
            "503 Unavailable",
        ),
        (
            http.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"),
            False,
            False,
            None,
            "does not speak TLS",
        ),
        (
            ApiException(
                http_resp=type(
                    "R",
                    (),
                    {
                        "status": 400,
                        "reason": "Bad Request",
                        "data": b"Client sent an HTTP request to an HTTPS server.\n",
                        "getheaders": lambda self: {},  # client <= 33.x
                        "headers": {},  # client 34+
                    },
                )()
            ),
            False,
            False,
            None,
            "speaks HTTPS",
        ),
        (
            api_exception(403, 'pods is forbidden: User "system:anonymous" cannot list'),
            False,
            False,
            None,
            "system:anonymous",
        ),
        (http.LocationParseError("https://[x"), False, False, None, "cannot send"),
        (http.ProtocolError("Connection aborted"), True, True, None, "broke"),
        (ConnectionResetError(104, "reset"), True, True, None, "broke"),
        (OSError(113, "No route to host"), True, False, None, "No route to host"),
    ],
    ids=[
        "429-retry-after",
        "503-not-applied",
        "500-maybe-applied",
        "504-maybe-applied",
        "401",
        "403",
        "404",
        "409",
        "422",
        "ssl-from-client",
        "ssl-from-urllib3",
        "handshake-eof",
        "handshake-timeout",
        "handshake-alert",
        "refused",
        "read-timeout",
        "connect-timeout",
        "proxy-unreachable",
        "proxy-407",
        "proxy-503",
        "https-to-http-port",
        "http-to-https-port",
        "anonymous",
        "unparseable-url",
        "protocol-error",
        "reset",
        "oserror",
    ],
)
def test_failures_are_classified_for_retry_and_for_writes(
    exc, retryable, applied_unknown, retry_after, words
):
    failure = classify_failure(exc, "patch deployments", HOST)
    assert failure.retryable is retryable
    assert failure.applied_unknown is applied_unknown
    assert failure.retry_after == retry_after
    assert words in failure.error.message
    assert failure.error.hint
    assert failure.error.retryable is retryable


@pytest.mark.parametrize(
    "status, message, verb_and_resource",
    [
        (403, "x", "patch deployments"),
        (403, 'deployments.apps is forbidden: User "system:anonymous" cannot', "log in again"),
        (401, "x", "log in again"),
        (503, "x", "try again"),
    ],
)
def test_hints_say_what_to_do(status, message, verb_and_resource):
    failure = classify_failure(api_exception(status, message), "patch deployments", HOST)
    assert verb_and_resource in failure.error.hint


def test_anonymous_is_not_told_to_ask_for_permissions():
    exc = api_exception(403, 'deployments.apps is forbidden: User "system:anonymous" cannot list')
    assert "ask a cluster admin" not in classify_failure(exc, "list deployments", HOST).error.hint


def test_tls_hint_never_offers_to_skip_verification():
    failure = classify_failure(http.SSLError("certificate verify failed: x"), "get", HOST)
    assert "insecure" not in (failure.error.message + failure.error.hint).lower()


def session_for(kubeconfig, seconds):
    return open_session(
        ConnectOptions(kubeconfig=kubeconfig), {}, deadline=time.monotonic() + seconds
    )


def test_errors_that_outlast_the_deadline_end_in_the_error(cluster):
    cluster.faults.fail_next(1000, "GET", r"/deployments", status=503)
    session = session_for(cluster.kubeconfig, 4)
    # Room for a retry counted from now: opening the session imports the client (~0.5 s with
    # the 34+ line, seconds on a machine busy with parallel tests).
    session.api.extend_deadline(time.monotonic() + 4)
    with pytest.raises(ApiError) as raised:
        session.api.list("deployments", "shop")
    assert raised.value.status == 503
    assert len([r for r in cluster.requests if r.status == 503]) > 1  # it did retry


def test_a_server_never_reached_is_given_up_long_before_the_deadline(tmp_path, cluster):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = open(cluster.kubeconfig).read().replace(cluster.url, f"https://127.0.0.1:{port}")
    kubeconfig = tmp_path / "closed-port"
    kubeconfig.write_text(text)
    session = session_for(str(kubeconfig), 600)  # pytest-timeout would catch a wait this long
    with pytest.raises(ApiError) as raised:
        session.api.list("deployments", "shop")
    assert "cannot reach the API server" in raised.value.message


def test_a_server_that_never_answers_is_tried_three_more_times_then_said_to_time_out(
    tmp_path, silent_server
):
    config = tmp_path / "silent"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "contexts: [{name: c, context: {cluster: c}}]\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{silent_server.port}'}}}}]\n"
    )
    session = open_session(
        ConnectOptions(kubeconfig=str(config), request_timeout=0.2),
        {},
        deadline=time.monotonic() + 600,  # pytest-timeout would catch a wait this long
    )
    with pytest.raises(ApiError) as raised:
        session.api.list("deployments", "shop")
    assert "timed out" in raised.value.message
    # The first try and at most three more, then the error: not retried until the deadline.
    assert 1 <= len(silent_server.accepted) <= 4


def test_connections_keep_tcp_alive_as_client_go_does(cluster):
    """kubectl's dialer sets a 30 s TCP keep-alive, so a quiet watch keeps its NAT or load
    balancer entry; the kubernetes client sets none. Read from the very socket a request
    went over."""
    session = session_for(cluster.kubeconfig, 30)
    session.api.list("deployments", "default")
    pools = session.api._client.rest_client.pool_manager.pools
    sockets = [
        conn.sock
        for key in pools.keys()
        for conn in list(pools[key].pool.queue)
        if conn is not None and conn.sock is not None
    ]
    assert sockets
    for sock in sockets:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # urllib3's own
