"""Exec credential plugins (EKS, GKE, AKS, kubelogin), run by us, within a time limit.

kubectl's protocol (``client.authentication.k8s.io/v1`` and ``v1beta1``): run the command
with the kubeconfig's args and env plus ``KUBERNETES_EXEC_INFO``, read one ``ExecCredential``
from its stdout: a bearer token, or a client certificate and key, maybe with an expiry.

We run it ourselves rather than through the kubernetes client because the client waits for
the plugin forever (a login that waits for a browser, a hung SSO helper) and leaves a plugin's
client key in a temporary file until exit. Here the plugin gets at most the run's time
(``--timeout``) and is named in every error; certificates stay in memory
(``client_tls.py`` loads them). An expiring token is fetched again shortly before it expires.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Optional

from .durations import format_duration
from .errors import ApiError, RefusedError, UsageError, shown

REFRESH_BEFORE = timedelta(seconds=60)  # fetch a new token this long before the old expires
_DETAIL_CHARS = 300


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin answered (repr never shows the secrets)."""

    token: Optional[str] = None
    client_certificate_pem: Optional[bytes] = None
    client_key_pem: Optional[bytes] = None
    expires_at: Optional[datetime] = None

    def __repr__(self) -> str:
        kind = "token" if self.token else "client certificate"
        return f"ExecCredential({kind}, expires_at={self.expires_at})"


def run_exec_plugin(
    exec_conf: Mapping[str, Any],
    *,
    user_name: Optional[str],
    cluster: Mapping[str, Any],
    timeout: Optional[float],
    stdin_is_terminal: Optional[bool] = None,
) -> ExecCredential:
    """Run the plugin once and return its credential; every failure is a ``PluginError``."""
    command = str(exec_conf.get("command"))
    api_version = exec_conf.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise UsageError(
            f"User {shown(user_name)}: exec has no apiVersion",
            "Set users[].user.exec.apiVersion, e.g. client.authentication.k8s.io/v1",
        )
    if stdin_is_terminal is None:
        stdin_is_terminal = _isatty(sys.stdin)
    interactive = is_interactive(exec_conf, user_name, stdin_is_terminal)
    env = dict(os.environ)
    for item in exec_conf.get("env") or []:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            env[item["name"]] = str(item.get("value") or "")
    spec: dict[str, Any] = {"interactive": interactive}
    if exec_conf.get("provideClusterInfo"):
        spec["cluster"] = _cluster_info(cluster, exec_conf)
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}
    )
    args = [command, *(str(a) for a in exec_conf.get("args") or [])]
    stdout, stderr = _run(args, env, timeout, interactive, command, user_name)
    return parse_exec_credential(stdout, stderr, api_version, command)


def refreshing_hook(
    first: ExecCredential, fetch: Callable[[], ExecCredential], now: Callable[[], datetime]
) -> Callable[[Any], None]:
    """A ``refresh_api_key_hook`` for the client's Configuration: a fresh token near expiry.

    The client calls it before every request, from every watch thread; one lock keeps the
    plugin from running several times at once. A failed refresh is an ``ApiError`` (the API
    layer reports it like any failed request).
    """
    state = {"credential": first}
    lock = threading.Lock()

    def hook(configuration: Any) -> None:
        with lock:
            credential = state["credential"]
            expires = credential.expires_at
            if expires is None or now() < expires - REFRESH_BEFORE:
                return
            try:
                credential = fetch()
            except (UsageError, RefusedError) as err:
                raise ApiError(err.message, err.hint) from None
            state["credential"] = credential
            if credential.token:
                configuration.api_key["authorization"] = f"Bearer {credential.token}"

    return hook


def is_interactive(exec_conf: Mapping[str, Any], user_name: Optional[str], tty: bool) -> bool:
    """kubectl's interactiveMode: Never, IfAvailable (default before v1), Always."""
    mode = exec_conf.get("interactiveMode") or "IfAvailable"
    if mode not in ("Never", "IfAvailable", "Always"):
        raise UsageError(
            f"User {shown(user_name)}: exec interactiveMode {shown(mode)} is not Never, "
            "IfAvailable or Always",
            "Fix users[].user.exec.interactiveMode in the kubeconfig",
        )
    if mode == "Always" and not tty:
        raise UsageError(
            f"Credential plugin {shown(exec_conf.get('command'))} needs a terminal "
            "(interactiveMode: Always) and standard input is not one",
            "Log in once in a terminal first, or run the command from a terminal",
        )
    return mode != "Never" and tty


def _cluster_info(cluster: Mapping[str, Any], exec_conf: Mapping[str, Any]) -> dict:
    """``spec.cluster`` for plugins that ask for it (provideClusterInfo)."""
    info: dict[str, Any] = {"server": cluster.get("server")}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url"):
        if cluster.get(key) is not None:
            info[key] = cluster[key]
    ca_data = cluster.get("certificate-authority-data")
    if not ca_data and isinstance(cluster.get("certificate-authority"), str):
        try:
            with open(cluster["certificate-authority"], "rb") as handle:
                ca_data = base64.b64encode(handle.read()).decode("ascii")
        except OSError:
            ca_data = None
    if ca_data:
        info["certificate-authority-data"] = ca_data
    extensions = exec_conf.get("extensions")
    if isinstance(extensions, Mapping) and "client.authentication.k8s.io/exec" in extensions:
        info["config"] = extensions["client.authentication.k8s.io/exec"]
    return info


def _run(
    args: list[str],
    env: dict[str, str],
    timeout: Optional[float],
    interactive: bool,
    command: str,
    user_name: Optional[str],
) -> tuple[str, str]:
    """Run the plugin; kill it (and what it started) when the time is up."""
    try:
        process = subprocess.Popen(  # noqa: S603 - argument list from the kubeconfig, no shell
            args,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None if interactive else subprocess.PIPE,  # prompts reach the user
            env=env,
            text=True,
            errors="replace",
            start_new_session=not interactive,
        )
    except OSError as err:
        raise UsageError(
            f"Credential plugin {shown(command)} (user {shown(user_name)}) cannot be run: "
            f"{err.strerror or err}",
            "Install it, or fix users[].user.exec.command in the kubeconfig",
        ) from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process, interactive)
        raise RefusedError(
            f"Credential plugin {shown(command)} (user {shown(user_name)}) did not answer "
            f"within {format_duration(round(timeout or 0))} (--timeout)",
            "Run it yourself to see what it waits for (often a login in a browser), or give "
            "it longer with --timeout",
        ) from None
    except BaseException:  # Ctrl-C or a signal while waiting: leave no plugin behind
        _kill(process, interactive)
        raise
    if process.returncode != 0:
        raise RefusedError(
            f"Credential plugin {shown(command)} failed (exit code {process.returncode})"
            f"{_detail(stderr)}",
            "Run it yourself to see why (often an expired login); kubectl fails the same way",
        )
    return stdout, stderr or ""


def _kill(process: subprocess.Popen, own_group: bool) -> None:
    try:
        if own_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except OSError:
        pass
    try:
        process.communicate(timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        pass


def parse_exec_credential(
    stdout: str, stderr: str, api_version: str, command: str
) -> ExecCredential:
    """The ExecCredential on stdout; a wrong shape says what is wrong, never the output."""

    def broken(why: str) -> RefusedError:
        return RefusedError(
            f"Credential plugin {shown(command)} answered something that is not an "
            f"ExecCredential ({why}){_detail(stderr)}",
            "Run it yourself to see its output; check its apiVersion in the kubeconfig",
        )

    try:
        document = json.loads(stdout)
    except ValueError:
        raise broken("not JSON") from None
    if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
        raise broken("kind is not ExecCredential")
    if document.get("apiVersion") != api_version:
        raise broken(f"apiVersion {shown(document.get('apiVersion'))}, expected {api_version}")
    status = document.get("status")
    if not isinstance(status, dict):
        raise broken("no status")
    expires_at = _expiry(status.get("expirationTimestamp"))
    token = status.get("token")
    if isinstance(token, str) and token:
        return ExecCredential(token=token, expires_at=expires_at)
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if isinstance(cert, str) and cert and isinstance(key, str) and key:
        return ExecCredential(
            client_certificate_pem=cert.encode(), client_key_pem=key.encode(), expires_at=expires_at
        )
    raise broken("no token, and no client certificate with its key")


def _expiry(value: Any) -> Optional[datetime]:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _detail(stderr: Optional[str]) -> str:
    """The plugin's own first line of complaint, trimmed (it may be all the user needs)."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    if not lines:
        return ""
    text = lines[0]
    if len(text) > _DETAIL_CHARS:
        text = text[: _DETAIL_CHARS - 1] + "…"
    return f": {text}"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False
