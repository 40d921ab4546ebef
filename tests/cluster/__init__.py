"""A simulated Kubernetes cluster for tests and demos: a real HTTP(S) API server over an object
store, with simulated controllers and kubelet. See README.md in this directory.

The public test API is `SimCluster` (and the `cluster` / `make_cluster` pytest fixtures in
fixtures.py); the store is what the simulation builds on.
"""

from __future__ import annotations

from .apiserver import ApiError
from .auth import Rule, rule
from .behaviours import Behaviour
from .cluster import SimCluster, rollout_complete
from .faults import Faults
from .fleet import SimFleet
from .server import RequestRecord
from .simulation import SimConfig
from .store import Conflict, NotFound, Store, WatchEvent

__all__ = [
    "ApiError",
    "Behaviour",
    "Conflict",
    "Faults",
    "NotFound",
    "RequestRecord",
    "Rule",
    "SimCluster",
    "SimConfig",
    "SimFleet",
    "Store",
    "WatchEvent",
    "rollout_complete",
    "rule",
]
