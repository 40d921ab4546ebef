"""Kubeconfig files for the simulated cluster (building is pure; writing is one small function)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Iterable

__all__ = ["build_kubeconfig", "merge_kubeconfigs", "write_kubeconfig_file"]


def build_kubeconfig(
    server: str,
    *,
    token: str,
    user: str = "admin",
    context: str = "sim",
    namespace: str | None = "default",
    ca_pem: bytes | None = None,
    insecure: bool = False,
    cluster_name: str = "sim",
) -> dict:
    """A one-context kubeconfig: token auth, and `certificate-authority-data` when the server
    speaks TLS and `ca_pem` is given (`insecure` writes insecure-skip-tls-verify instead)."""
    cluster: dict = {"server": server}
    if server.startswith("https://"):
        if insecure or ca_pem is None:
            cluster["insecure-skip-tls-verify"] = True
        else:
            cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    ctx: dict = {"cluster": cluster_name, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }


def merge_kubeconfigs(configs: Iterable[dict], current: str | None = None) -> dict:
    """One kubeconfig holding the clusters, users and contexts of each of `configs` (one per
    cluster of a fleet; their entry names must differ), current-context `current` (default:
    the first one's)."""
    merged: dict = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": current,
    }
    for config in configs:
        for key in ("clusters", "users", "contexts"):
            merged[key] += config[key]
        merged["current-context"] = merged["current-context"] or config["current-context"]
    return merged


def write_kubeconfig_file(path: Path, config: dict) -> Path:
    """Write `config` as YAML, readable by its owner only (it holds a token)."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path
