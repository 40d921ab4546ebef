"""Which cluster, user and namespace: kubectl's kubeconfig rules, then an API client.

The official Python client merges several ``KUBECONFIG`` files differently from kubectl
(its last ``current-context`` wins), falls back to in-cluster config wrongly, has no
``--cluster``/``--user`` overrides and writes refreshed tokens back into the user's files.
So the merge and the overrides are ours (a pure core over plain dicts, following client-go's
``clientcmd`` loader), and the client only ever sees one small, already-resolved config dict.

client-go rules we follow:

* files: ``--kubeconfig`` alone if given (it must exist); else ``KUBECONFIG`` split on
  ``os.pathsep`` (empties and duplicates dropped, missing files skipped); else ``~/.kube/config``.
* maps (clusters, users, contexts): the first file that defines a name wins, whole entry;
  a name twice in one file is an error. ``current-context``: the first file that sets it.
* relative paths (certificate-authority, client-certificate, client-key, tokenFile, and an
  exec command containing a path separator) are relative to the file that defined them.
* no usable config, no ``--kubeconfig`` and ``KUBERNETES_SERVICE_HOST`` set: in-cluster config.

Credentials never appear in messages or reprs: errors name files, lines and entry names only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import logging
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, MutableMapping, Sequence
from urllib.parse import urlsplit

import yaml

if TYPE_CHECKING:
    from .proxies import Proxy

from .client_tls import (
    TLS_KEYS_OF_CLUSTER,
    TLS_KEYS_OF_USER,
    build_ssl_context,
    use_ssl_context,
    without_tls_files,
)
from .errors import RefusedError, UsageError, shown
from .exec_plugin import ExecCredential, refreshing_hook, run_exec_plugin
from .repo_url import redact_url
from .safe_yaml import safe_load, usage_error

SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))
_CLUSTER_PATH_KEYS = ("certificate-authority",)
_USER_PATH_KEYS = ("client-certificate", "client-key", "tokenFile")
_SECRET_USER_KEYS = ("token", "password", "client-key-data", "client-certificate-data")
_MAX_NAMES_SHOWN = 10


@dataclass(frozen=True)
class ResolvedConfig:
    """The connection to use, after files, merge and flag overrides (display-safe repr)."""

    context_name: str | None
    cluster_name: str | None
    user_name: str | None
    namespace: str
    config_dict_for_client: dict = field(default_factory=dict, repr=False, compare=False)
    server: str = ""  # redacted, for messages
    namespace_source: str = "default"  # "--namespace", "context", "serviceaccount", "default"
    in_cluster: bool = False
    impersonate_user: str | None = None  # --as, or the user entry's "as"
    impersonate_groups: tuple[str, ...] = ()  # --as-group, or the user entry's "as-groups"
    token_override: str | None = field(default=None, repr=False, compare=False)  # in-cluster


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def kubeconfig_paths(flag: str | None, env: Mapping[str, str]) -> list[str]:
    """The files kubectl would read, in precedence order."""
    if flag:
        return [flag]
    raw = env.get("KUBECONFIG", "")
    if raw:
        paths: list[str] = []
        for path in raw.split(os.pathsep):
            if path and path not in paths:
                paths.append(path)
        if paths:
            return paths
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".kube", "config")]


def load_files(paths: Sequence[str], *, explicit: bool = False) -> list[tuple[str, dict]]:
    """Read and parse each file; missing ones skipped unless ``explicit`` (``--kubeconfig``).

    An empty file is an empty config, as in kubectl. Anything that is not a kubeconfig
    mapping is a ``UsageError`` naming the file (and line, for YAML syntax errors).
    """
    loaded = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            if explicit:
                raise UsageError(
                    f"kubeconfig file {path} does not exist",
                    "Check the --kubeconfig path (kubectl config view --kubeconfig PATH)",
                ) from None
            continue
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "unreadable"
            raise UsageError(
                f"Cannot read kubeconfig file {path}: {reason}",
                "Check the file's permissions and encoding",
            ) from None
        loaded.append((path, _parse_kubeconfig(path, text)))
    return loaded


def _parse_kubeconfig(path: str, text: str) -> dict:
    """YAML to dict; errors carry the file and line but never the line's content."""
    try:
        doc = safe_load(text)
    except yaml.YAMLError as err:
        raise usage_error(
            err,
            f"kubeconfig file {path}",
            "Fix the file, or point KUBECONFIG/--kubeconfig at a valid one",
        ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(
            f"kubeconfig file {path} is not a kubeconfig (expected a mapping at the top)",
            "Point KUBECONFIG/--kubeconfig at a kubeconfig file",
        )
    for section, body_key in _SECTIONS:
        entries = doc.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get(body_key, {}), (dict, type(None)))
            for e in entries
        ):
            raise UsageError(
                f"kubeconfig file {path}: '{section}' is not a list of named {body_key}s",
                "Fix the file (kubectl config view shows the expected shape)",
            )
        names = [e.get("name") for e in entries]
        duplicates = sorted({str(n) for n in names if names.count(n) > 1})
        if duplicates:
            raise UsageError(
                f"kubeconfig file {path}: {section} has duplicate name {shown(duplicates[0])}",
                "Remove or rename one of them",
            )
    return doc


# ---------------------------------------------------------------------------------------
# Merge (pure)
# ---------------------------------------------------------------------------------------


def merge_kubeconfigs(files: Sequence[tuple[str, Mapping[str, Any]]]) -> dict:
    """Merge parsed files as kubectl does; relative paths become absolute per file.

    Returns a kubeconfig-shaped dict (lists of named entries, first file's entries first).
    """
    merged: dict[str, dict[str, dict]] = {section: {} for section, _ in _SECTIONS}
    current_context = ""
    for path, doc in files:
        base = os.path.dirname(os.path.abspath(path))
        for section, body_key in _SECTIONS:
            for entry in doc.get(section) or []:
                name = entry.get("name") if isinstance(entry, Mapping) else None
                if not isinstance(name, str) or name in merged[section]:
                    continue
                body = copy.deepcopy(dict(entry.get(body_key) or {}))
                merged[section][name] = _resolve_paths(body_key, body, base)
        if not current_context and isinstance(doc.get("current-context"), str):
            current_context = doc["current-context"]
    result: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    for section, body_key in _SECTIONS:
        result[section] = [{"name": n, body_key: b} for n, b in merged[section].items()]
    result["current-context"] = current_context
    return result


def _resolve_paths(body_key: str, body: dict, base: str) -> dict:
    """Make file references absolute against the defining file's directory (client-go)."""
    keys = _CLUSTER_PATH_KEYS if body_key == "cluster" else ()
    if body_key == "user":
        keys = _USER_PATH_KEYS
        exec_conf = body.get("exec")
        if isinstance(exec_conf, dict):
            command = exec_conf.get("command")
            # PATH-looked-up commands ("aws") stay as they are; "./bin/x" is file-relative.
            if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
                exec_conf["command"] = os.path.normpath(os.path.join(base, command))
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            body[key] = os.path.normpath(os.path.join(base, value))
    return body


# ---------------------------------------------------------------------------------------
# Overrides (pure)
# ---------------------------------------------------------------------------------------


def resolve_config(
    merged: Mapping[str, Any],
    *,
    context: str | None = None,
    cluster: str | None = None,
    user: str | None = None,
    namespace: str | None = None,
    token: str | None = None,
    impersonate_user: str | None = None,
    impersonate_groups: Sequence[str] = (),
) -> ResolvedConfig:
    """Apply ``--context``/``--cluster``/``--user``/``--namespace``/``--token``/``--as``/
    ``--as-group`` to a merged config, and check what the client would trip over.

    ``--cluster``/``--user`` replace the context's (a synthetic context, as kubectl builds);
    unknown names are ``UsageError``s listing the names that exist. ``--token`` replaces the
    user's credentials (token, tokenFile, exec, auth-provider, client certificate).
    """
    contexts = _named(merged, "contexts", "context")
    clusters = _named(merged, "clusters", "cluster")
    users = _named(merged, "users", "user")

    context_name = context or merged.get("current-context") or None
    if context_name is not None and context_name not in contexts:
        raise UsageError(
            f"Context {shown(context_name)} is not in the kubeconfig",
            f"Available contexts: {_names(contexts)}; choose one with --context NAME",
        )
    if context_name is None and not cluster:
        raise UsageError(
            "No current context is set in the kubeconfig",
            f"Pass --context NAME (available: {_names(contexts)}) or run "
            "kubectl config use-context NAME",
        )
    ctx = contexts.get(context_name, {}) if context_name else {}

    cluster_name = cluster or ctx.get("cluster")
    if not cluster_name:
        raise UsageError(
            f"Context {shown(context_name)} names no cluster",
            f"Pass --cluster NAME (available: {_names(clusters)})",
        )
    if cluster_name not in clusters:
        raise UsageError(
            f"Cluster {shown(cluster_name)} is not in the kubeconfig",
            f"Available clusters: {_names(clusters)}",
        )
    cluster_body = check_cluster(cluster_name, clusters[cluster_name])
    server = cluster_body["server"]

    user_name = user or ctx.get("user") or None
    if user_name is not None and user_name not in users:
        raise UsageError(
            f"User {shown(user_name)} is not in the kubeconfig",
            f"Available users: {_names(users)}",
        )
    user_body = users.get(user_name) if user_name else None
    if token is not None and not token.strip():
        raise UsageError("--token is empty", "Pass the bearer token: --token TOKEN")
    if token is not None:
        user_name = user_name or "restart-backend-token"
        user_body = {"token": token}
    user_body = check_user(user_name, user_body)
    impersonate = _impersonation(user_body, impersonate_user, impersonate_groups)

    if namespace:
        ns, ns_source = namespace, "--namespace"
    elif ctx.get("namespace"):
        ns, ns_source = str(ctx["namespace"]), "context"
    else:
        ns, ns_source = "default", "default"
    check_namespace(ns, ns_source, context_name)

    return ResolvedConfig(
        context_name=context_name,
        cluster_name=cluster_name,
        user_name=user_name,
        namespace=ns,
        config_dict_for_client=_client_dict(
            context_name or "restart-backend",
            cluster_name,
            cluster_body,
            user_name,
            user_body,
            ns,
        ),
        server=redact_url(server),
        namespace_source=ns_source,
        impersonate_user=impersonate[0],
        impersonate_groups=impersonate[1],
    )


# kubectl 1.26+ removed these in-tree auth providers; the Python client would half-support
# them (gcp needs google-auth, which the binary does not ship) and fail with a traceback.
_REMOVED_AUTH_PROVIDERS = {
    "gcp": "gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)",
    "azure": "kubelogin (az aks install-cli, then kubelogin convert-kubeconfig)",
}


def _refuse_removed_auth_providers(
    user_name: str | None, user_body: Mapping[str, Any] | None
) -> None:
    auth_provider = (user_body or {}).get("auth-provider")
    provider = auth_provider.get("name") if isinstance(auth_provider, dict) else None
    if provider in _REMOVED_AUTH_PROVIDERS:
        raise UsageError(
            f"User {shown(user_name)} uses the {shown(provider)} auth-provider, which kubectl "
            "removed in 1.26",
            f"Switch the kubeconfig to the exec plugin {_REMOVED_AUTH_PROVIDERS[provider]}",
        )


# ---------------------------------------------------------------------------------------
# Checks (pure, but for a look at whether referenced files exist)
# ---------------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KUBECONFIG_HINT = "Fix the kubeconfig entry (kubectl config view shows it)"
_SERVER_HINT = "Fix it: kubectl config set-cluster NAME --server=https://HOST:PORT"


def check_cluster(name: str, body: Mapping[str, Any]) -> dict:
    """The cluster entry, checked for what would crash the client; ``server`` normalised.

    A server without a scheme gets ``https://`` (kubectl assumes it too); the CA data must be
    base64, files must exist, a proxy must be an http(s) URL. Values are never quoted whole:
    the server and proxy URLs only with their credentials redacted.
    """
    owner = f"Cluster {shown(name)}"
    body = dict(body)
    server = body.get("server")
    if not isinstance(server, str) or not server.strip():
        raise UsageError(f"{owner} has no server address", _SERVER_HINT)
    body["server"] = _checked_url(owner, "server", server.strip(), ("http", "https"))
    insecure = body.get("insecure-skip-tls-verify")
    if insecure is not None and not isinstance(insecure, bool):
        # The Python client would read the string "false" as true and turn TLS off.
        raise UsageError(
            f"{owner}: insecure-skip-tls-verify must be true or false, not {shown(insecure)}",
            "Fix the kubeconfig (kubectl rejects this value too)",
        )
    _check_data_or_file(owner, body, "certificate-authority")
    proxy = body.get("proxy-url")
    if proxy is not None:
        if not isinstance(proxy, str) or not proxy.strip():
            raise UsageError(f"{owner}: proxy-url must be a URL", _KUBECONFIG_HINT)
        body["proxy-url"] = _checked_url(owner, "proxy-url", proxy.strip(), ("http", "https"))
    for key in ("tls-server-name",):
        if key in body and not isinstance(body[key], str):
            raise UsageError(f"{owner}: {key} must be a string", _KUBECONFIG_HINT)
    return body


def check_user(name: str | None, body: Mapping[str, Any] | None) -> dict | None:
    """The user entry, checked for what would crash the client or silently drop credentials."""
    if body is None:
        return None
    _refuse_removed_auth_providers(name, body)
    owner = f"User {shown(name)}"
    body = dict(body)
    for key in ("token", "username", "password", "as"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise UsageError(f"{owner}: {key} must be a string", _KUBECONFIG_HINT)
    if not body.get("token"):
        _check_data_or_file(owner, body, "tokenFile", data_key="token", base64_data=False)
    has_cert = _check_data_or_file(owner, body, "client-certificate")
    has_key = _check_data_or_file(owner, body, "client-key")
    if has_cert != has_key:
        missing = "client-key(-data)" if has_cert else "client-certificate(-data)"
        raise UsageError(
            f"{owner} has a client {'certificate' if has_cert else 'key'} but no {missing}",
            "A client certificate needs its key, and the key its certificate: fix the kubeconfig",
        )
    exec_conf = body.get("exec")
    if exec_conf is not None and not isinstance(exec_conf, dict):
        raise UsageError(f"{owner}: exec must be a mapping", _KUBECONFIG_HINT)
    return _oidc_token_as_kubectl_sends(owner, body)


def check_namespace(namespace: str, source: str, context: str | None) -> None:
    """A namespace name the API server could accept (a DNS label), or say where it came from."""
    if len(namespace) <= 63 and _DNS_LABEL.match(namespace):
        return
    where = {"--namespace": "-n/--namespace", "context": f"context {shown(context)}"}.get(
        source, source
    )
    raise UsageError(
        f"Namespace {shown(namespace)} (from {where}) is not a valid namespace name",
        "Namespaces are lowercase letters, digits and '-' (kubectl get namespaces lists them)",
    )


def _checked_url(owner: str, key: str, value: str, schemes: tuple[str, ...]) -> str:
    text = value if "://" in value else f"https://{value}"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme.lower() not in schemes or not host or any(c.isspace() for c in text):
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise UsageError(
            f"{owner}: {key} {shown(redact_url(value))} is not an {allowed} URL with a host",
            _SERVER_HINT if key == "server" else _KUBECONFIG_HINT,
        )
    return text


def _check_data_or_file(
    owner: str, body: Mapping[str, Any], key: str, *, data_key: str = "", base64_data: bool = True
) -> bool:
    """``key-data`` must be base64 (when ``base64_data``), ``key`` an existing file.

    Returns whether either is given. The data wins over the file, as in kubectl.
    """
    data_key = data_key or f"{key}-data"
    data = body.get(data_key)
    if data is not None and data != "":
        if not isinstance(data, str) or (base64_data and not _is_base64(data)):
            raise UsageError(
                f"{owner}: {data_key} is not valid base64",
                f"Fix {data_key} in the kubeconfig (base64 -w0 FILE prints the right value)",
            )
        return True
    path = body.get(key)
    if path is None or path == "":
        return False
    if not isinstance(path, str) or not os.path.isfile(path):
        raise UsageError(
            f"{owner}: {key} {shown(path)} does not exist or is not a file",
            f"Fix the path of {key} in the kubeconfig (relative paths are relative to the file)",
        )
    return True


def _is_base64(value: str) -> bool:
    """Strict base64, ignoring line breaks and spaces (as Go's decoder ignores newlines)."""
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _oidc_token_as_kubectl_sends(owner: str, body: dict) -> dict:
    """An oidc id-token the Python client would drop is sent as kubectl sends it.

    The client silently ignores an id-token that is not a well-formed, readable JWT and goes
    on with no credentials at all: the server then answers as to ``system:anonymous`` and we
    would wrongly tell the user to ask for permissions. kubectl sends the token as it is and
    the server says 401, which is the truth: the token is invalid.
    """
    provider = body.get("auth-provider")
    if not isinstance(provider, dict) or provider.get("name") != "oidc":
        return body
    config = provider.get("config")
    token = config.get("id-token") if isinstance(config, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise UsageError(
            f"{owner}: the oidc auth-provider has no id-token",
            "Log in again with your identity provider's tool (e.g. kubectl oidc-login)",
        )
    if _client_reads_jwt(token, config):
        return body
    rest = {k: v for k, v in body.items() if k != "auth-provider"}
    return {**rest, "token": token}


def _client_reads_jwt(token: str, config: Mapping[str, Any]) -> bool:
    """Would the client use this id-token as it is (or refresh it)?"""
    parts = token.split(".")
    if any(c in token for c in "=+/") or len(parts) != 3 or len(parts[1]) % 4 == 1:
        return False
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return False
    if not isinstance(payload, dict):
        return False
    expiry = payload.get("exp")
    if expiry is None:
        return True
    if not isinstance(expiry, (int, float)) or isinstance(expiry, bool):
        return False
    expired = expiry - 300 <= time.time()  # the client refreshes 5 minutes early
    return not expired or bool(config.get("refresh-token") and config.get("idp-issuer-url"))


def _impersonation(
    user_body: Mapping[str, Any] | None, user: str | None, groups: Sequence[str]
) -> tuple[str | None, tuple[str, ...]]:
    """``--as``/``--as-group`` over the user entry's ``as``/``as-groups`` (kubectl's rule)."""
    body = user_body or {}
    name = user if user is not None else body.get("as")
    chosen = tuple(groups) if groups else tuple(body.get("as-groups") or ())
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise UsageError("--as needs a user name", "Pass --as USER (e.g. --as jane)")
    if any(not isinstance(g, str) or not g.strip() for g in chosen):
        raise UsageError("--as-group needs a group name", "Pass --as-group GROUP")
    if chosen and not name:
        raise UsageError(
            "--as-group needs --as: groups are impersonated together with a user",
            "Pass --as USER --as-group GROUP (kubectl refuses --as-group alone too)",
        )
    return name, chosen


def _named(merged: Mapping[str, Any], section: str, body_key: str) -> dict[str, dict]:
    """``[{"name": n, body_key: {...}}]`` as ``{n: {...}}``."""
    result = {}
    for entry in merged.get(section) or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            result[entry["name"]] = dict(entry.get(body_key) or {})
    return result


def _names(entries: Mapping[str, Any]) -> str:
    """A short, sorted list of names for a hint line."""
    names = sorted(entries)
    if not names:
        return "none"
    shown = ", ".join(names[:_MAX_NAMES_SHOWN])
    more = len(names) - _MAX_NAMES_SHOWN
    return f"{shown} (and {more} more)" if more > 0 else shown


def _client_dict(
    context_name: str,
    cluster_name: str,
    cluster_body: dict,
    user_name: str | None,
    user_body: dict | None,
    namespace: str,
) -> dict:
    """A one-context kubeconfig for the Python client: nothing left for it to decide."""
    ctx: dict[str, Any] = {"cluster": cluster_name, "namespace": namespace}
    users = []
    if user_name is not None:
        ctx["user"] = user_name
        users.append({"name": user_name, "user": copy.deepcopy(user_body or {})})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context_name,
        "contexts": [{"name": context_name, "context": ctx}],
        "clusters": [{"name": cluster_name, "cluster": copy.deepcopy(cluster_body)}],
        "users": users,
    }


# ---------------------------------------------------------------------------------------
# From the environment (files + in-cluster)
# ---------------------------------------------------------------------------------------


def resolve_from_environment(
    kubeconfig_flag: str | None,
    env: Mapping[str, str],
    *,
    context: str | None = None,
    cluster: str | None = None,
    user: str | None = None,
    namespace: str | None = None,
    token: str | None = None,
    impersonate_user: str | None = None,
    impersonate_groups: Sequence[str] = (),
    serviceaccount_dir: str = SERVICEACCOUNT_DIR,
) -> ResolvedConfig:
    """What the CLI calls: kubectl's file search, merge, overrides, in-cluster fallback."""
    paths = kubeconfig_paths(kubeconfig_flag, env)
    merged = merge_kubeconfigs(load_files(paths, explicit=bool(kubeconfig_flag)))
    empty = not any(merged[s] for s, _ in _SECTIONS) and not merged["current-context"]
    if empty and not kubeconfig_flag and not (context or cluster or user):
        if env.get("KUBERNETES_SERVICE_HOST"):
            resolved = _in_cluster(namespace, serviceaccount_dir)
            _, groups = _impersonation(None, impersonate_user, impersonate_groups)
            return replace(
                resolved,
                impersonate_user=impersonate_user,
                impersonate_groups=groups,
                token_override=token,
            )
        existing = [path for path in paths if os.path.isfile(path)]
        found = (
            f"The kubeconfig {', '.join(existing)} has no clusters, users or contexts"
            if existing
            else f"No kubeconfig found (looked at {', '.join(paths)})"
        )
        raise UsageError(
            found,
            "Set KUBECONFIG or pass --kubeconfig PATH (kubectl config view shows what "
            "kubectl sees)",
        )
    return resolve_config(
        merged,
        context=context,
        cluster=cluster,
        user=user,
        namespace=namespace,
        token=token,
        impersonate_user=impersonate_user,
        impersonate_groups=impersonate_groups,
    )


def _in_cluster(namespace: str | None, serviceaccount_dir: str) -> ResolvedConfig:
    """Running in a pod: the service account's namespace unless ``-n`` says otherwise."""
    if namespace:
        ns, source = namespace, "--namespace"
    else:
        try:
            path = os.path.join(serviceaccount_dir, "namespace")
            with open(path, encoding="utf-8") as handle:
                ns, source = handle.read().strip(), "serviceaccount"
        except OSError:
            ns = ""
        if not ns:
            ns, source = "default", "default"
    return ResolvedConfig(
        context_name=None,
        cluster_name=None,
        user_name=None,
        namespace=ns,
        server="in-cluster",
        namespace_source=source,
        in_cluster=True,
    )


# ---------------------------------------------------------------------------------------
# The client (shell)
# ---------------------------------------------------------------------------------------


def sanitize_subprocess_env(
    environ: MutableMapping[str, str] | None = None, frozen: bool | None = None
) -> None:
    """Undo PyInstaller's ``LD_LIBRARY_PATH`` so exec credential plugins run normally.

    The frozen binary's bootloader prepends its own directory (keeping the user's value in
    ``LD_LIBRARY_PATH_ORIG``); a plugin like ``aws`` or ``gke-gcloud-auth-plugin`` would
    otherwise load our bundled libraries and may crash.
    """
    environ = os.environ if environ is None else environ
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    if not frozen:
        return
    original = environ.get("LD_LIBRARY_PATH_ORIG")
    if original is not None:
        environ["LD_LIBRARY_PATH"] = original
    else:
        environ.pop("LD_LIBRARY_PATH", None)


def build_api_client(
    resolved: ResolvedConfig,
    request_timeout: float | None = None,
    *,
    exec_timeout: float | None = None,
    wrap_requests: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
    proxy: Proxy | None = None,
) -> Any:
    """A ``kubernetes.client.ApiClient`` for the resolved config (client imported lazily).

    Never writes to the user's kubeconfig (``persist_config=False``) nor leaves credential
    files behind (``client_tls.py``), keeps TLS verification on unless the kubeconfig says
    ``insecure-skip-tls-verify``, runs an exec credential plugin itself within
    ``exec_timeout`` seconds (``exec_plugin.py``), and sends impersonation headers.
    ``request_timeout`` (seconds, kubectl's ``--request-timeout``) becomes the default
    connect and read timeout of every request that does not pass its own; ``wrap_requests``
    wraps the client's one request function (the ``-v`` trace); ``proxy``
    (``proxies.Proxy``, chosen as kubectl does) is where requests go through.
    """
    sanitize_subprocess_env()
    # google-auth (imported by the client's config layer) warns on every run under an
    # end-of-life Python; the user of a kubectl plugin cannot act on that.
    warnings.filterwarnings("ignore", message=".*end of life.*", category=FutureWarning)
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    configuration = k8s_client.Configuration()
    # No silent retries inside urllib3 (by default it repeats a GET up to 3 times, sleeping
    # whatever Retry-After says): api.py retries within --timeout, with notices, and decides
    # itself whether a PATCH may be sent again.
    configuration.retries = False
    # Every workload watched keeps two or three streams open at once (20 workloads: 60); a
    # pool smaller than that makes urllib3 drop connections with a warning on stderr.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, 128)
    _use_proxy(configuration, proxy)
    if resolved.in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as err:
            raise UsageError(
                f"In-cluster configuration is incomplete: {err}",
                "Mount the service account token, or provide a kubeconfig (--kubeconfig)",
            ) from None
        if resolved.token_override:
            set_bearer_token(configuration, resolved.token_override)
            configuration.refresh_api_key_hook = None
        api_client = k8s_client.ApiClient(configuration=configuration)
    else:
        api_client = _client_from_dict(
            resolved, configuration, k8s_config, ConfigException, exec_timeout
        )
    _wrap_rest_requests(api_client, resolved, request_timeout, wrap_requests)
    _keep_alive(api_client)
    return api_client


# client-go dials with a 30 s TCP keep-alive (idle and interval): a watch that sees no event
# for minutes keeps its NAT or load-balancer entry alive instead of being dropped in
# silence, which would leave us waiting for events that never come and end in a false
# timeout. The kubernetes client sets none (37.x: only when asked), so we ask urllib3 for
# them on every connection, to the server or to a proxy.
KEEPALIVE_SECONDS = 30


def keepalive_socket_options() -> list[tuple[int, int, int]]:
    """urllib3's defaults (no Nagle) plus TCP keep-alive as client-go sets it, as far as the
    platform names the options."""
    import socket

    from urllib3.connection import HTTPConnection

    options = list(HTTPConnection.default_socket_options)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name in ("TCP_KEEPIDLE", "TCP_KEEPALIVE", "TCP_KEEPINTVL"):  # KEEPALIVE: macOS idle
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), KEEPALIVE_SECONDS))
    return options


def _keep_alive(api_client: Any) -> None:
    pool_kw = api_client.rest_client.pool_manager.connection_pool_kw
    pool_kw["socket_options"] = keepalive_socket_options()


def _use_proxy(configuration: Any, proxy: Proxy | None) -> None:
    """Requests through ``proxy`` (None: straight to the server): its URL without
    credentials, which go in the Proxy-Authorization header (as Go's transport sends them;
    urllib3 would drop them).

    Set even when None: newer clients (37.x) read the proxy variables themselves, with
    Python's rules (a loopback server proxied too, ``ALL_PROXY``), and would undo kubectl's
    choice; assigning ``proxy`` (before the host) turns that off, and ``no_proxy`` is cleared
    because the choice already honoured ``NO_PROXY``."""
    configuration.proxy = proxy.url if proxy is not None else None
    configuration.no_proxy = None
    if proxy is None:
        return
    if proxy.basic_auth is not None:
        from urllib3.util import make_headers

        configuration.proxy_headers = make_headers(proxy_basic_auth=proxy.basic_auth)


def set_bearer_token(configuration: Any, token: str) -> None:
    """Make `token` the bearer token the client sends. The client reads it from
    api_key["authorization"] up to 33.x and from api_key["BearerToken"] from 34 (setting
    only the first made --token in-cluster send the service account's token instead)."""
    for key in ("authorization", "BearerToken"):
        configuration.api_key[key] = f"Bearer {token}"


def _client_from_dict(
    resolved: ResolvedConfig, configuration, k8s_config, config_error, exec_timeout
) -> Any:
    """Load the one-context dict into ``configuration``, TLS material and exec plugins ours."""
    conf = resolved.config_dict_for_client
    cluster = conf["clusters"][0]["cluster"]
    user = conf["users"][0]["user"] if conf.get("users") else None
    credential = _exec_credential(resolved, cluster, user, exec_timeout)
    client_conf = {
        **conf,
        "clusters": [
            {**conf["clusters"][0], "cluster": without_tls_files(cluster, TLS_KEYS_OF_CLUSTER)}
        ],
        "users": [
            {**entry, "user": _user_for_client(entry["user"], credential)}
            for entry in conf.get("users") or []
        ],
    }
    with _captured_client_errors():
        try:
            # load_kube_config_from_dict + ApiClient, not new_client_from_config_dict: the
            # latter only takes a client_configuration from 31.x on (our range starts at 29).
            k8s_config.load_kube_config_from_dict(
                config_dict=client_conf,
                context=client_conf["current-context"],
                client_configuration=configuration,
                persist_config=False,
            )
            from kubernetes import client as k8s_client

            api_client = k8s_client.ApiClient(configuration=configuration)
        except config_error as err:
            raise UsageError(
                f"kubeconfig: {_scrub(str(err), user or {})}",
                "Fix the kubeconfig entry (kubectl config view shows it)",
            ) from None
        except Exception as err:  # e.g. an oidc token refresh that could not reach the issuer
            detail = _scrub(" ".join(str(err).split()), user or {})[:200]
            raise RefusedError(
                f"Cannot load the credentials of user {shown(resolved.user_name)}: "
                f"{type(err).__name__}: {detail}",
                "Log in again (kubectl auth whoami shows what kubectl makes of them)",
            ) from None
    client_pem = None
    if credential is not None and credential.client_certificate_pem:
        client_pem = (credential.client_certificate_pem, credential.client_key_pem or b"")
    context = build_ssl_context(
        cluster,
        user,
        cluster_name=resolved.cluster_name,
        user_name=resolved.user_name,
        client_pem=client_pem,
    )
    use_ssl_context(api_client, context)
    if credential is not None and credential.token and credential.expires_at:
        exec_conf = dict((user or {})["exec"])
        configuration.refresh_api_key_hook = refreshing_hook(
            credential,
            lambda: run_exec_plugin(
                exec_conf, user_name=resolved.user_name, cluster=cluster, timeout=exec_timeout
            ),
            lambda: datetime.now(timezone.utc),
        )
    return api_client


def _exec_credential(
    resolved: ResolvedConfig, cluster: dict, user: dict | None, timeout: float | None
) -> ExecCredential | None:
    """Run the user's exec plugin, unless a token makes it unnecessary (as in kubectl)."""
    user = user or {}
    exec_conf = user.get("exec")
    if not isinstance(exec_conf, dict) or user.get("token") or user.get("tokenFile"):
        return None
    _check_exec_command(exec_conf, resolved.user_name)
    return run_exec_plugin(
        exec_conf, user_name=resolved.user_name, cluster=cluster, timeout=timeout
    )


def _user_for_client(user: dict | None, credential: ExecCredential | None) -> dict:
    """The user entry the client sees: no TLS files, no exec (done), the exec token if any."""
    body = without_tls_files(user, TLS_KEYS_OF_USER)
    if credential is not None:
        body.pop("exec", None)
        if credential.token:
            body["token"] = credential.token
    return body


def _check_exec_command(exec_conf: dict, user_name: str | None) -> None:
    """A missing plugin is a setup problem: say which, and the kubeconfig's installHint."""
    command = exec_conf.get("command")
    if not isinstance(command, str) or not command:
        raise UsageError(
            f"User {shown(user_name)} has an exec credential plugin without a command",
            "Fix users[].user.exec.command in the kubeconfig",
        )
    found = (
        os.path.isfile(command) and os.access(command, os.X_OK)
        if os.sep in command
        else shutil.which(command) is not None
    )
    if not found:
        hint = str(exec_conf.get("installHint") or "").strip().splitlines()
        raise UsageError(
            f"Credential plugin {shown(command)} (user {shown(user_name)}) was not found or is not "
            "executable",
            hint[0] if hint else "Install it, or fix users[].user.exec.command in the kubeconfig",
        )


@contextlib.contextmanager
def _captured_client_errors() -> Iterator[list[str]]:
    """Collect what the client logs while loading (it logs exec failures instead of raising).

    With a handler on the root logger, Python's last-resort handler stays quiet, so the
    client's raw messages never reach the terminal; we decide what is printed.
    """
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def _scrub(text: str, user: Mapping[str, Any]) -> str:
    """Replace any secret value of the user entry that a client message might quote."""
    for key in _SECRET_USER_KEYS:
        value = user.get(key)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _wrap_rest_requests(
    api_client: Any,
    resolved: ResolvedConfig,
    request_timeout: float | None,
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None,
) -> None:
    """Fill in what the client has no setting for, at its one request function.

    A default (connect, read) timeout: the client passes ``timeout=None`` to urllib3, which
    disables the pool's default, and silently ignores a float total timeout. Impersonation
    headers (``Impersonate-User``, one ``Impersonate-Group`` header per group, as kubectl
    sends them): the client has no impersonation at all, and its default headers are a plain
    dict, which cannot repeat a header.
    """
    rest = api_client.rest_client
    original = rest.request
    if wrap is not None:
        original = wrap(original)
    user, groups = resolved.impersonate_user, resolved.impersonate_groups

    def request(*args: Any, _request_timeout: Any = None, headers: Any = None, **kw: Any) -> Any:
        if _request_timeout is None and request_timeout:
            _request_timeout = (request_timeout, request_timeout)
        if user:
            from urllib3._collections import HTTPHeaderDict

            headers = HTTPHeaderDict(headers or {})
            headers["Impersonate-User"] = user
            for group in groups:
                headers.add("Impersonate-Group", group)
        return original(*args, _request_timeout=_request_timeout, headers=headers, **kw)

    rest.request = request
