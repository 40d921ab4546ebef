"""pytest fixtures for the simulated cluster (loaded by tests/conftest.py as a plugin)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar, Union

import pytest

from .certs import session_certificates
from .cluster import SimCluster
from .fleet import DEFAULT_FLEET, SimFleet

__all__ = ["cluster", "make_cluster", "fleet", "make_fleet"]

Started = TypeVar("Started", bound=Union[SimCluster, SimFleet])


@contextmanager
def _starting(
    tmp_path: Path, prefix: str, start: Callable[..., Started]
) -> Iterator[Callable[..., Started]]:
    """A factory calling `start(*args, workdir=..., **options)`; whatever it started is
    stopped afterwards, and the test fails if a simulation raised meanwhile."""
    started: list[Started] = []

    def make(*args: Any, **options: Any) -> Started:
        options.setdefault("workdir", tmp_path / f"{prefix}-{len(started)}")
        thing = start(*args, **options)
        started.append(thing)
        return thing

    yield make
    for thing in started:
        thing.stop()
        dropped = getattr(thing, "dropped_connections", ())
        if dropped:  # shown by pytest only when the test failed: a clue to its TLS errors
            print(f"{prefix}: closed before a request was read:", *dropped, sep="\n  ",
                  file=sys.stderr)  # fmt: skip
    for thing in started:
        if thing.sim_errors:
            pytest.fail("the simulation raised:\n" + "\n".join(thing.sim_errors), False)


def _start_cluster(**options: Any) -> SimCluster:
    options.setdefault("certificates", session_certificates())
    return SimCluster(**options).start()


def _start_fleet(names: Sequence[str] = DEFAULT_FLEET, **options: Any) -> SimFleet:
    return SimFleet(names, **options).start()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., SimCluster]]:
    """Factory for clusters with options (`make_cluster(tls=False, sim_config=...)`); every
    cluster it starts is stopped after the test."""
    with _starting(tmp_path, "cluster", _start_cluster) as make:
        yield make


@pytest.fixture
def cluster(make_cluster: Callable[..., SimCluster]) -> SimCluster:
    """A fresh simulated cluster (HTTPS, token auth) with an admin kubeconfig."""
    return make_cluster()


@pytest.fixture
def make_fleet(tmp_path: Path) -> Iterator[Callable[..., SimFleet]]:
    """Factory for fleets (`make_fleet(["eu", "us"], sim_config=...)`); every fleet it
    starts is stopped after the test."""
    with _starting(tmp_path, "fleet", _start_fleet) as make:
        yield make


@pytest.fixture
def fleet(make_fleet: Callable[..., SimFleet]) -> SimFleet:
    """Three simulated clusters, staging, prod-eu and prod-us, each with its own CA and
    admin token; `fleet.kubeconfig` has a context per cluster (current: staging)."""
    return make_fleet()
