"""`SimFleet`: several simulated clusters at once, one kubeconfig with a context each.

A restart across clusters (staging, then the production regions) talks to separate API
servers, each with its own CA, users and tokens, chosen by kubeconfig context. A fleet is that:
one `SimCluster` per name, each on its own port with its own certificate authority and admin
token, and one kubeconfig whose contexts are named after the clusters (cluster entries named
the same, users `<user>@<cluster>`). `make_unreachable(name)` takes one cluster off the
network (connections refused) while the others keep serving.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .auth import Rule
from .certs import generate_certificates
from .cluster import SimCluster
from .kubeconfig import build_kubeconfig, merge_kubeconfigs, write_kubeconfig_file

__all__ = ["SimFleet", "DEFAULT_FLEET"]

DEFAULT_FLEET = ("staging", "prod-eu", "prod-us")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SimFleet:
    """Simulated clusters named `names`, each a full `SimCluster` (its own store, simulation,
    API server, CA and tokens); `options` are passed to every one (`tls`, `sim_config`, ...)."""

    def __init__(
        self,
        names: Sequence[str] = DEFAULT_FLEET,
        *,
        workdir: str | Path | None = None,
        ports: Mapping[str, int] | None = None,
        **options: Any,
    ) -> None:
        names = tuple(names)
        problems = [n for n in names if not _NAME.match(n)]
        if not names or problems or len(set(names)) != len(names):
            raise ValueError(
                f"cluster names must be distinct DNS labels (a-z, 0-9, '-'): {list(names)}"
            )
        self.names = names
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sim-fleet-"))
        self.clusters: dict[str, SimCluster] = {}
        for name in names:
            directory = self.workdir / name
            cluster_options = dict(options)
            if cluster_options.get("tls", True):
                cluster_options.setdefault("certificates", generate_certificates(directory / "pki"))
            self.clusters[name] = SimCluster(
                workdir=directory, port=(ports or {}).get(name, 0), **cluster_options
            )
        self.kubeconfig = ""

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SimFleet:
        """Start every cluster and write the fleet's admin kubeconfig. Returns self."""
        try:
            for cluster in self.clusters.values():
                cluster.start()
        except BaseException:
            self.stop()
            raise
        self.kubeconfig = self.write_kubeconfig(self.workdir / "kubeconfig")
        return self

    def stop(self) -> None:
        for cluster in self.clusters.values():
            cluster.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SimFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getitem__(self, name: str) -> SimCluster:
        return self.clusters[name]

    def __iter__(self) -> Iterator[SimCluster]:
        return iter(self.clusters.values())

    def __len__(self) -> int:
        return len(self.clusters)

    @property
    def sim_errors(self) -> list[str]:
        return [f"{name}: {error}" for name, c in self.clusters.items() for error in c.sim_errors]

    # ----------------------------------------------------------------- the network

    def make_unreachable(self, name: str) -> None:
        """Take cluster `name` off the network: connections are refused (its port stays
        reserved); the others keep serving."""
        self.clusters[name].make_unreachable()

    def make_reachable(self, name: str) -> None:
        self.clusters[name].make_reachable()

    # ----------------------------------------------------------------- users, kubeconfigs

    def add_user(
        self,
        name: str,
        rules: Iterable[Rule | Mapping[str, Any]],
        *,
        clusters: Iterable[str] | None = None,
        groups: Iterable[str] = ("system:authenticated",),
    ) -> dict[str, str]:
        """User `name` with `rules` on each of `clusters` (default: all), with a different
        random token on each, as separate clusters issue separate credentials. Returns
        {cluster: token}."""
        rules = list(rules)
        tokens = {}
        for cluster_name in clusters if clusters is not None else self.names:
            token = secrets.token_hex(16)
            self.clusters[cluster_name].add_user(name, token, rules, groups)
            tokens[cluster_name] = token
        return tokens

    def write_kubeconfig(
        self,
        path: str | Path | None = None,
        *,
        user: str = "admin",
        namespace: str | None = None,
        contexts: Iterable[str] | None = None,
        current: str | None = None,
    ) -> str:
        """One kubeconfig for `user`: a context per cluster of `contexts` (default: every
        cluster where `user` exists), named after the cluster, current-context `current`
        (default: the first). Returns the path."""
        chosen = [
            name
            for name in (contexts if contexts is not None else self.names)
            if contexts is not None or _has_user(self.clusters[name], user)
        ]
        if not chosen:
            raise ValueError(f"user {user!r} exists on no cluster of the fleet")
        merged = merge_kubeconfigs(
            (
                build_kubeconfig(
                    self.clusters[name].url,
                    token=self.clusters[name].token_of(user),
                    user=f"{user}@{name}",
                    context=name,
                    namespace=namespace or "default",
                    ca_pem=self.clusters[name].ca_pem,
                    cluster_name=name,
                )
                for name in chosen
            ),
            current,
        )
        if path is None:
            path = self.workdir / f"kubeconfig-{user}-{secrets.token_hex(3)}"
        return str(write_kubeconfig_file(Path(path), merged))


def _has_user(cluster: SimCluster, user: str) -> bool:
    try:
        cluster.token_of(user)
    except KeyError:
        return False
    return True
