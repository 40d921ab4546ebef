"""`RealFleet`: several official control planes behind one kubeconfig with a context each, as
`tests.cluster.fleet.SimFleet` is for simulated clusters.

Each context authenticates with a client certificate issued by its own plane's CA (the
planes share no CA, key or port), as the test's user `deployer-<suffix>` in `system:masters`
and `AUDITED_GROUP`. On a plane started with `audit_groups=(AUDITED_GROUP,)` the API server's
audit log records every request made with that kubeconfig (`requests_to`): the plugin's, as
the server saw them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping

from tests.cluster.kubeconfig import merge_kubeconfigs, write_kubeconfig_file

from .cluster import RealCluster

__all__ = ["AUDITED_GROUP", "RealFleet"]

AUDITED_GROUP = "restart-backend:audited"


class RealFleet:
    """`clusters` (context name -> RealCluster of one test, all with the same suffix, so the
    same repo and namespaces on each) and a kubeconfig reaching each one as `user`."""

    def __init__(self, clusters: Mapping[str, RealCluster], workdir: Path) -> None:
        self.clusters = dict(clusters)
        self.names = tuple(self.clusters)
        suffix = next(iter(self.clusters.values())).suffix
        self.user = f"deployer-{suffix}"
        configs = [
            cluster.plane.user_config(
                self.user,
                groups=("system:masters", AUDITED_GROUP),
                namespace="default",
                context=name,
                entry=f"{self.user}@{name}",
            )
            for name, cluster in self.clusters.items()
        ]
        path = write_kubeconfig_file(workdir / "kubeconfig-fleet", merge_kubeconfigs(configs))
        self.kubeconfig = str(path)

    def __getitem__(self, name: str) -> RealCluster:
        return self.clusters[name]

    def __iter__(self) -> Iterator[RealCluster]:
        return iter(self.clusters.values())

    def __len__(self) -> int:
        return len(self.clusters)

    def requests_to(self, name: str) -> list[dict]:
        """The audit events of the requests made with this fleet's kubeconfig to cluster
        `name` (whose plane must audit AUDITED_GROUP), oldest first."""
        return self.clusters[name].plane.audit_events(self.user)
