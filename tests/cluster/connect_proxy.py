"""A forward proxy for tests: HTTP CONNECT tunnels, as corporate proxies (squid) offer them.

Clients reach an https:// API server through it the way kubectl does behind a proxy: CONNECT
host:port, then TLS end to end through the tunnel. The proxy resolves names itself (`hosts`
maps a name to an address, e.g. "kubernetes.default.svc" -> "127.0.0.1"), so a test can give
the cluster a name that only the proxy knows: a client that bypassed it could not connect at
all. With `credentials` ("user:password") it answers 407 to a CONNECT without the matching
`Proxy-Authorization: Basic`. Every CONNECT is recorded.
"""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import Mapping, Optional

__all__ = ["ConnectProxy", "Tunnel"]


@dataclass(frozen=True)
class Tunnel:
    """One CONNECT the proxy was asked for."""

    target: str  # host:port as the client sent it
    status: int  # 200, 407, 502
    authorization: Optional[str]  # the Proxy-Authorization header, as sent


class ConnectProxy:
    """`with ConnectProxy(...) as proxy:` serves on 127.0.0.1:`proxy.port`."""

    def __init__(
        self, hosts: Optional[Mapping[str, str]] = None, credentials: Optional[str] = None
    ) -> None:
        self.hosts = dict(hosts or {})
        self.credentials = credentials
        self.tunnels: list[Tunnel] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConnectProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, tunnel: Tunnel) -> None:
        with self._lock:
            self.tunnels.append(tunnel)

    def _handle(self, client: socket.socket) -> None:
        head = _read_head(client)
        if head is None:
            return
        request_line, headers = head
        method, _, rest = request_line.partition(" ")
        target = rest.partition(" ")[0]
        authorization = headers.get("proxy-authorization")
        if method.upper() != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self.credentials is not None and authorization != _basic(self.credentials):
            self._record(Tunnel(target, 407, authorization))
            client.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        try:
            upstream = socket.create_connection((self.hosts.get(host, host), int(port)), 10)
        except (OSError, ValueError):
            self._record(Tunnel(target, 502, authorization))
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self._record(Tunnel(target, 200, authorization))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _relay(client, upstream)


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


def _read_head(conn: socket.socket) -> Optional[tuple[str, dict[str, str]]]:
    """The request line and headers (lower-case names), or None if the client went away."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [], 60)
            if not readable:
                continue
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()
