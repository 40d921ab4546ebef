"""A simulated Kubernetes cluster for tests and demos: a real HTTP(S) API server over an object
store, with simulated controllers and kubelet. See README.md in this directory."""

from __future__ import annotations

from .store import Conflict, NotFound, Store, WatchEvent

__all__ = ["Conflict", "NotFound", "Store", "WatchEvent"]
