"""pytest fixtures for the simulated cluster (loaded by tests/conftest.py as a plugin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest

from .certs import session_certificates
from .cluster import SimCluster
from .fleet import DEFAULT_FLEET, SimFleet

__all__ = ["cluster", "make_cluster", "fleet", "make_fleet"]


def _check_simulation(sim_cluster: SimCluster | SimFleet) -> None:
    if sim_cluster.sim_errors:
        pytest.fail("the simulation raised:\n" + "\n".join(sim_cluster.sim_errors), False)


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., SimCluster]]:
    """Factory for clusters with options (`make_cluster(tls=False, sim_config=...)`); every
    cluster it starts is stopped after the test."""
    started: list[SimCluster] = []

    def make(**options: Any) -> SimCluster:
        options.setdefault("workdir", tmp_path / f"cluster-{len(started)}")
        options.setdefault("certificates", session_certificates())
        sim_cluster = SimCluster(**options).start()
        started.append(sim_cluster)
        return sim_cluster

    yield make
    for sim_cluster in started:
        sim_cluster.stop()
    for sim_cluster in started:
        _check_simulation(sim_cluster)


@pytest.fixture
def cluster(make_cluster: Callable[..., SimCluster]) -> SimCluster:
    """A fresh simulated cluster (HTTPS, token auth) with an admin kubeconfig."""
    return make_cluster()


@pytest.fixture
def make_fleet(tmp_path: Path) -> Iterator[Callable[..., SimFleet]]:
    """Factory for fleets (`make_fleet(["eu", "us"], sim_config=...)`); every fleet it
    starts is stopped after the test."""
    started: list[SimFleet] = []

    def make(names: Sequence[str] = DEFAULT_FLEET, **options: Any) -> SimFleet:
        options.setdefault("workdir", tmp_path / f"fleet-{len(started)}")
        fleet = SimFleet(names, **options).start()
        started.append(fleet)
        return fleet

    yield make
    for fleet in started:
        fleet.stop()
    for fleet in started:
        _check_simulation(fleet)


@pytest.fixture
def fleet(make_fleet: Callable[..., SimFleet]) -> SimFleet:
    """Three simulated clusters, staging, prod-eu and prod-us, each with its own CA and
    admin token; `fleet.kubeconfig` has a context per cluster (current: staging)."""
    return make_fleet()
