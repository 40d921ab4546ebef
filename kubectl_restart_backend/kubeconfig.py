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

import contextlib
import copy
import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, MutableMapping, Sequence

import yaml

from .errors import RefusedError, UsageError, shown
from .repo_url import redact_url
from .safe_yaml import ExcessiveAliasing, describe_error, safe_load

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
        problem, line = describe_error(err)
        where = f" line {line}" if line is not None else ""
        if isinstance(err, ExcessiveAliasing):
            raise UsageError(
                f"kubeconfig file {path}:{where}: refused: {problem}",
                "Write the values out instead of nesting YAML aliases (kubectl refuses it too)",
            ) from None
        raise UsageError(
            f"kubeconfig file {path} is not valid YAML ({problem} at{where or ' unknown line'})",
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
) -> ResolvedConfig:
    """Apply ``--context``/``--cluster``/``--user``/``--namespace`` to a merged config.

    ``--cluster``/``--user`` replace the context's (a synthetic context, as kubectl builds);
    unknown names are ``UsageError``s listing the names that exist.
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
    cluster_body = clusters[cluster_name]
    server = cluster_body.get("server")
    if not isinstance(server, str) or not server:
        raise UsageError(
            f"Cluster {shown(cluster_name)} has no server address",
            "Set one: kubectl config set-cluster NAME --server=https://HOST:PORT",
        )

    insecure = cluster_body.get("insecure-skip-tls-verify")
    if insecure is not None and not isinstance(insecure, bool):
        # The Python client would read the string "false" as true and turn TLS off.
        raise UsageError(
            f"Cluster {shown(cluster_name)}: insecure-skip-tls-verify must be true or false, "
            f"not {shown(insecure)}",
            "Fix the kubeconfig (kubectl rejects this value too)",
        )

    user_name = user or ctx.get("user") or None
    if user_name is not None and user_name not in users:
        raise UsageError(
            f"User {shown(user_name)} is not in the kubeconfig",
            f"Available users: {_names(users)}",
        )

    _refuse_removed_auth_providers(user_name, users.get(user_name) if user_name else None)

    if namespace:
        ns, ns_source = namespace, "--namespace"
    elif ctx.get("namespace"):
        ns, ns_source = str(ctx["namespace"]), "context"
    else:
        ns, ns_source = "default", "default"

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
            users.get(user_name) if user_name else None,
            ns,
        ),
        server=redact_url(server),
        namespace_source=ns_source,
    )


# kubectl 1.26+ removed these in-tree auth providers; the Python client would half-support
# them (gcp needs google-auth, which the binary does not ship) and fail with a traceback.
_REMOVED_AUTH_PROVIDERS = {
    "gcp": "gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)",
    "azure": "kubelogin (az aks install-cli, then kubelogin convert-kubeconfig)",
}


def _refuse_removed_auth_providers(user_name: str | None, user_body: dict | None) -> None:
    provider = ((user_body or {}).get("auth-provider") or {}).get("name")
    if provider in _REMOVED_AUTH_PROVIDERS:
        raise UsageError(
            f"User {shown(user_name)} uses the {shown(provider)} auth-provider, which kubectl "
            "removed in 1.26",
            f"Switch the kubeconfig to the exec plugin {_REMOVED_AUTH_PROVIDERS[provider]}",
        )


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
    serviceaccount_dir: str = SERVICEACCOUNT_DIR,
) -> ResolvedConfig:
    """What the CLI calls: kubectl's file search, merge, overrides, in-cluster fallback."""
    paths = kubeconfig_paths(kubeconfig_flag, env)
    merged = merge_kubeconfigs(load_files(paths, explicit=bool(kubeconfig_flag)))
    empty = not any(merged[s] for s, _ in _SECTIONS) and not merged["current-context"]
    if empty and not kubeconfig_flag and not (context or cluster or user):
        if env.get("KUBERNETES_SERVICE_HOST"):
            return _in_cluster(namespace, serviceaccount_dir)
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
    return resolve_config(merged, context=context, cluster=cluster, user=user, namespace=namespace)


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


def build_api_client(resolved: ResolvedConfig, request_timeout: float | None = None) -> Any:
    """A ``kubernetes.client.ApiClient`` for the resolved config (client imported lazily).

    Never writes to the user's kubeconfig (``persist_config=False``), keeps TLS
    verification on unless the kubeconfig says ``insecure-skip-tls-verify``, and turns a
    missing or failing exec credential plugin into a clear error instead of a later 401.
    ``request_timeout`` (seconds, kubectl's ``--request-timeout``) becomes the default
    connect and read timeout of every request that does not pass its own.
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
    if resolved.in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as err:
            raise UsageError(
                f"In-cluster configuration is incomplete: {err}",
                "Mount the service account token, or provide a kubeconfig (--kubeconfig)",
            ) from None
        api_client = k8s_client.ApiClient(configuration=configuration)
    else:
        api_client = _client_from_dict(resolved, configuration, k8s_config, ConfigException)
    if request_timeout:
        _default_request_timeout(api_client, request_timeout)
    return api_client


def _client_from_dict(resolved: ResolvedConfig, configuration, k8s_config, config_error) -> Any:
    """Load the one-context dict into ``configuration``; exec plugin problems said plainly."""
    conf = resolved.config_dict_for_client
    cluster = conf["clusters"][0]["cluster"]
    user = conf["users"][0]["user"] if conf.get("users") else {}
    exec_conf = user.get("exec") if isinstance(user.get("exec"), dict) else None
    if exec_conf is not None:
        _check_exec_command(exec_conf, resolved.user_name)
    if cluster.get("proxy-url"):
        configuration.proxy = cluster["proxy-url"]
    with _captured_client_errors() as logged:
        try:
            # load_kube_config_from_dict + ApiClient, not new_client_from_config_dict: the
            # latter only takes a client_configuration from 31.x on (our range starts at 29).
            k8s_config.load_kube_config_from_dict(
                config_dict=conf,
                context=conf["current-context"],
                client_configuration=configuration,
                persist_config=False,
            )
            from kubernetes import client as k8s_client

            api_client = k8s_client.ApiClient(configuration=configuration)
        except config_error as err:
            raise UsageError(
                f"kubeconfig: {_scrub(str(err), user)}",
                "Fix the kubeconfig entry (kubectl config view shows it)",
            ) from None
    if exec_conf is not None and not _has_credentials(configuration):
        detail = _scrub(logged[-1], user).splitlines()[0][:300] if logged else "no credentials"
        raise RefusedError(
            f"Credential plugin {shown(exec_conf.get('command'))} failed: {detail}",
            "Run it yourself to see why (often an expired login); kubectl fails the same way",
        )
    return api_client


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


def _has_credentials(configuration) -> bool:
    """Did loading produce a bearer token or a client certificate?"""
    return bool(configuration.api_key.get("authorization") or configuration.cert_file)


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


def _default_request_timeout(api_client: Any, seconds: float) -> None:
    """Give every request without its own ``_request_timeout`` a (connect, read) timeout.

    The Python client has no client-wide timeout (it passes ``timeout=None`` to urllib3,
    which disables the pool's default), so we fill the per-request argument in. A float
    total timeout would be silently ignored by the client; a tuple is honoured.
    """
    rest = api_client.rest_client
    original = rest.request

    def request(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        if _request_timeout is None:
            _request_timeout = (seconds, seconds)
        return original(*args, _request_timeout=_request_timeout, **kwargs)

    rest.request = request
