"""Which HTTP proxy reaches the API server, as kubectl chooses it.

kubectl (client-go) takes the cluster's ``proxy-url`` from the kubeconfig; without one it
asks the environment the way Go's ``http.ProxyFromEnvironment`` does: ``HTTPS_PROXY`` for an
https:// server, ``HTTP_PROXY`` for http:// (upper case first, then lower case), never for
localhost or a loopback address, and not for a host that ``NO_PROXY`` names (``*``, an IP, a
CIDR, a domain and its subdomains, ``.domain`` for subdomains only, each with an optional
port). The kubernetes Python client reads none of these variables, so a user behind a
corporate proxy, for whom kubectl works, would get "cannot reach the API server" from us.

A proxy URL's ``user:password@`` becomes a ``Proxy-Authorization: Basic`` header, as Go's
transport sends it; the URL handed to the client and every message carry no credentials.

Pure: the environment is a mapping passed in.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import unquote, urlsplit

from kubectl_restart_backend.errors import UsageError
from kubectl_restart_backend.repo_url import redact_url

_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Proxy:
    """A proxy to send the API requests through."""

    url: str  # scheme://host:port, no credentials: what urllib3 connects to
    source: str  # "proxy-url" (the kubeconfig's) or the variable it came from
    basic_auth: Optional[str] = field(default=None, repr=False)  # "user:password", decoded

    @property
    def shown(self) -> str:
        """For messages: the URL and where it came from."""
        return f"{self.url} ({self.source})"

    @property
    def hint(self) -> str:
        """What to check when the proxy cannot be reached: where it came from."""
        if self.source == "proxy-url":
            return "check the cluster's proxy-url in the kubeconfig and that the proxy is running"
        return (
            f"check {self.source} and that the proxy is running (NO_PROXY lists the hosts to "
            "reach directly; kubectl reads the same variables)"
        )


def choose_proxy(server: str, proxy_url: Optional[str], env: Mapping[str, str]) -> Optional[Proxy]:
    """The kubeconfig's ``proxy-url`` wins; otherwise the environment's, if it applies to
    ``server`` (the cluster's URL)."""
    if proxy_url:
        return parse_proxy(proxy_url, "proxy-url")
    found = proxy_from_environment(server, env)
    if found is None:
        return None
    value, variable = found
    return parse_proxy(value, variable)


def proxy_from_environment(server: str, env: Mapping[str, str]) -> Optional[tuple[str, str]]:
    """(value, variable name) of the proxy variable that applies to ``server``, or None."""
    parts = urlsplit(server)
    scheme = (parts.scheme or "https").lower()
    names = ("HTTPS_PROXY", "https_proxy") if scheme == "https" else ("HTTP_PROXY", "http_proxy")
    variable = next((name for name in names if env.get(name, "").strip()), None)
    if variable is None:
        return None
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    if _is_loopback(host):
        return None
    no_proxy = env.get("NO_PROXY", "").strip() or env.get("no_proxy", "").strip()
    if bypassed(host, port, no_proxy):
        return None
    return env[variable].strip(), variable


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Does ``NO_PROXY`` exclude ``host:port``? Go's rules (golang.org/x/net/http/httpproxy)."""
    address = _ip(host)
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:  # a CIDR
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address is not None and address in network:
                return True
            continue
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        entry_ip = _ip(name)
        if entry_ip is not None:
            if address is not None and address == entry_ip:
                return True
            continue
        if name.startswith("*."):
            name = name[1:]
        if name.startswith("."):
            if host.endswith(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def parse_proxy(value: str, source: str) -> Proxy:
    """A proxy URL as Go reads one (no scheme: http://), refused unless http(s)."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    where = "the kubeconfig's proxy-url" if source == "proxy-url" else source
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if scheme not in _SCHEMES or not host:
        hint = (
            "use an http:// or https:// proxy (socks proxies are not supported)"
            if scheme.startswith("socks")
            else "write it as http://HOST:PORT"
        )
        raise UsageError(f"{where} is not an http(s) proxy URL: {redact_url(text)}", hint)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    auth = None
    if parts.username is not None:
        auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return Proxy(f"{scheme}://{netloc}", source, auth)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


def _ip(text: str) -> Optional[ipaddress._BaseAddress]:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _split_port(entry: str) -> tuple[str, Optional[int]]:
    """``host:port`` (``[v6]:port`` too) into its parts; a bare IPv6 address has no port."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None
