"""Where the restarted backend can be reached: the spec's ``deployedUrls``, found from objects.

Pure: the caller lists Services, Ingresses and HTTPRoutes in the Deployment's namespace and
passes them in as plain dicts; nothing here talks to the API server. Order of precedence:

1. the Deployment's ``restart-backend/urls`` annotation (comma-separated) wins outright;
2. Ingress rules (networking.k8s.io/v1) whose backend Service selects the Deployment's pods:
   ``https://`` when a ``tls[].hosts`` entry covers the host (``*.example.com`` covers one label),
   the path kept (``/`` dropped); a rule without a host uses the Ingress's load-balancer address;
   ``defaultBackend`` names no host and is ignored;
3. Gateway API HTTPRoutes with ``spec.hostnames`` whose backendRefs name such a Service: https,
   unless every parentRef's ``sectionName`` mentions ``http`` but not ``https`` (a listener named
   ``http``/``web-http``); we do not read the Gateway itself, so this is a documented guess;
4. LoadBalancer Services selecting the pods: ``http://<ip or hostname>[:port]`` (``:80`` omitted;
   port 443 becomes ``https://`` without a port).

A Service "selects the Deployment's pods" when its non-empty ``spec.selector`` is a subset of the
pod template's labels. Objects from another namespace are ignored. Results keep this order,
each URL once.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable, Mapping, Optional, Sequence

URLS_ANNOTATION = "restart-backend/urls"

# Characters that start regex syntax in an ImplementationSpecific path: keep the literal prefix.
_REGEX_START = re.compile(r"[()\[\]*$^?+|\\{]")


def describe_no_urls(name: str) -> str:
    """What the URL line says when nothing routes to the Deployment."""
    return f"none (no Ingress, HTTPRoute or LoadBalancer Service routes to {name})"


def discover_urls(
    deployment: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]],
    ingresses: Sequence[Mapping[str, Any]],
    httproutes: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """The URLs that reach the Deployment's pods, annotation first, deduplicated, stable order."""
    annotated = _annotated_urls(deployment)
    if annotated:
        return annotated
    namespace = _namespace(deployment)
    labels = _template_labels(deployment)
    selecting = {
        _name(svc): svc
        for svc in services
        if _same_namespace(svc, namespace) and selects(svc, labels)
    }
    found: list[str] = []
    for ingress in ingresses:
        if _same_namespace(ingress, namespace):
            found += _ingress_urls(ingress, selecting)
    for route in httproutes:
        if _same_namespace(route, namespace):
            found += _httproute_urls(route, selecting)
    for svc in selecting.values():
        found += _load_balancer_urls(svc)
    return _unique(found)


def selects(service: Mapping[str, Any], pod_labels: Mapping[str, str]) -> bool:
    """True when the Service's selector is non-empty and matched by these pod labels."""
    selector = (service.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


# --------------------------------------------------------------------------- sources


def _annotated_urls(deployment: Mapping[str, Any]) -> list[str]:
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(URLS_ANNOTATION) or ""
    return _unique(part.strip() for part in raw.split(",") if part.strip())


def _ingress_urls(ingress: Mapping[str, Any], services: Mapping[str, Any]) -> list[str]:
    """URLs of the Ingress rules whose paths send traffic to one of ``services``."""
    spec = ingress.get("spec") or {}
    tls_hosts = [h for entry in spec.get("tls") or [] for h in entry.get("hosts") or []]
    urls = []
    for rule in spec.get("rules") or []:
        paths = [
            p.get("path") or "/"
            for p in (rule.get("http") or {}).get("paths") or []
            if ((p.get("backend") or {}).get("service") or {}).get("name") in services
        ]
        if not paths:
            continue
        host = rule.get("host") or ""
        if host.startswith("*"):
            continue  # a wildcard rule names no single address
        if host:
            hosts = [host]
            scheme = "https" if any(_tls_covers(t, host) for t in tls_hosts) else "http"
        else:
            hosts = _status_addresses(ingress)
            scheme = "http"
        urls += [_url(scheme, h, None, path) for h in hosts for path in paths]
    return urls


def _httproute_urls(route: Mapping[str, Any], services: Mapping[str, Any]) -> list[str]:
    """URLs of an HTTPRoute whose rules send traffic to one of ``services``."""
    spec = route.get("spec") or {}
    hostnames = [h for h in spec.get("hostnames") or [] if h and not h.startswith("*")]
    scheme = _route_scheme(spec.get("parentRefs") or [])
    urls = []
    for rule in spec.get("rules") or []:
        if not any(_is_our_service(ref, route, services) for ref in rule.get("backendRefs") or []):
            continue
        paths = [(m.get("path") or {}).get("value") or "/" for m in rule.get("matches") or []] or [
            "/"
        ]
        urls += [_url(scheme, host, None, path) for host in hostnames for path in paths]
    return urls


def _load_balancer_urls(service: Mapping[str, Any]) -> list[str]:
    spec = service.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return []
    addresses = _status_addresses(service)
    ports = [p.get("port") for p in spec.get("ports") or [] if p.get("port")] or [80]
    urls = []
    for address in addresses:
        for port in ports:
            if port == 443:
                urls.append(_url("https", address, None, "/"))
            else:
                urls.append(_url("http", address, None if port == 80 else port, "/"))
    return urls


# --------------------------------------------------------------------------- helpers


def _is_our_service(
    ref: Mapping[str, Any], route: Mapping[str, Any], services: Mapping[str, Any]
) -> bool:
    """A backendRef to a core Service (the default kind) in the route's namespace."""
    if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
        return False
    if ref.get("namespace") and ref.get("namespace") != _namespace(route):
        return False
    return ref.get("name") in services


def _route_scheme(parent_refs: Iterable[Mapping[str, Any]]) -> str:
    """http only when every parent listener is named like a plain-http one; else https."""
    sections = [str(ref.get("sectionName") or "").lower() for ref in parent_refs]
    plain = bool(sections) and all("http" in s and "https" not in s for s in sections)
    return "http" if plain else "https"


def _tls_covers(tls_host: str, host: str) -> bool:
    """Exact match, or ``*.example.com`` covering exactly one more label (as certificates do)."""
    tls_host, host = tls_host.lower(), host.lower()
    if tls_host == host:
        return True
    if tls_host.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == tls_host[2:]
    return False


def _status_addresses(obj: Mapping[str, Any]) -> list[str]:
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [
        entry.get("ip") or entry.get("hostname")
        for entry in ingress
        if entry.get("ip") or entry.get("hostname")
    ]


def _url(scheme: str, host: str, port: Optional[int], path: str) -> str:
    shown = f"[{host}]" if _is_ipv6(host) else host
    if port is not None:
        shown = f"{shown}:{port}"
    path = _literal_path(path)
    return f"{scheme}://{shown}{'' if path in ('', '/') else path}"


def _literal_path(path: str) -> str:
    """The literal prefix of a path (regex paths like ``/api(/|$)(.*)`` become ``/api``)."""
    match = _REGEX_START.search(path)
    if match:
        path = path[: match.start()]
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _template_labels(deployment: Mapping[str, Any]) -> Mapping[str, str]:
    template = (deployment.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def _same_namespace(obj: Mapping[str, Any], namespace: Optional[str]) -> bool:
    """Objects without a namespace are taken as listed from the Deployment's namespace."""
    theirs = _namespace(obj)
    return namespace is None or theirs is None or theirs == namespace


def _namespace(obj: Mapping[str, Any]) -> Optional[str]:
    return (obj.get("metadata") or {}).get("namespace") or None


def _name(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def _unique(urls: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for url in urls:
        seen.setdefault(url, None)
    return list(seen)
