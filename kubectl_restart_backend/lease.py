"""One restart at a time per workload: the lock's decisions (pure).

Two pipelines restarting the same backend at the same moment would both patch it and each
report the other's rollout. So a restart holds a ``coordination.k8s.io/v1`` Lease named for
the workload while it patches and watches: the API server's optimistic concurrency (create,
or replace at the resourceVersion we read) lets exactly one run take it, and a run that dies
stops renewing it, so it expires by itself.

When is a Lease expired? Its ``renewTime`` is another machine's clock, and clocks differ.
Like client-go's leader election we trust our own clock first: a Lease seen unchanged (same
resourceVersion) for a whole ``leaseDurationSeconds`` of our time is expired, whatever its
timestamps say. A ``renewTime`` older than the duration plus ``CLOCK_SKEW`` is expired at
once: no sane clock is that far off, and the next run need not wait for a long-dead holder.

Everything here is a function of the Lease object (a plain dict), who we are and a clock;
``lock.py`` does the API calls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Optional

from kubectl_restart_backend.diagnosis import format_age, one_line, parse_time
from kubectl_restart_backend.kinds import Kind

TOOL = "kubectl-restart-backend"
LEASE_DURATION = 30  # seconds without renewal after which a holder is presumed gone
RENEW_EVERY = 10.0  # a third of the duration: two renewals may fail before it expires
POLL_EVERY = 1.0  # how often a waiting run reads the Lease again
CLOCK_SKEW = 120.0  # seconds two machines' clocks may differ; beyond it renewTime is trusted
MANAGED_BY = {"app.kubernetes.io/managed-by": TOOL}
WORKLOAD_ANNOTATION = "restart-backend/workload"
_MAX_NAME = 253  # a Lease name is a DNS subdomain


class LockState(str, Enum):
    ABSENT = "absent"  # no Lease yet: create it
    FREE = "free"  # released (no holder): take it
    EXPIRED = "expired"  # its holder stopped renewing it: take it over
    OURS = "ours"  # held by this very run
    HELD = "held"  # someone else holds it: wait, or refuse


@dataclass(frozen=True)
class LeaseView:
    """What a Lease says about the lock, for deciding and for saying who holds it."""

    state: LockState
    holder: str = ""
    acquired: Optional[datetime] = None
    renewed: Optional[datetime] = None
    duration: int = LEASE_DURATION


@dataclass(frozen=True)
class Sighting:
    """One version of the Lease, and since when (our monotonic clock) we have seen it."""

    resource_version: str
    since: float


def lease_name(kind: str, name: str) -> str:
    """``restart-backend.<kind>.<name>``: one Lease per workload (the namespace is the
    workload's own). A name too long for a DNS subdomain keeps its start and gets a hash of
    the whole, so two long names never share a Lease."""
    full = f"restart-backend.{kind.lower()}.{name}"
    if len(full) <= _MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode("utf-8")).hexdigest()[:10]
    return full[: _MAX_NAME - len(digest) - 1].rstrip("-.") + "-" + digest


def lock_order(workload: tuple[Kind, str, str]) -> tuple[str, str, str]:
    """The one order every run takes the locks of a wave in (kind, name, namespace), whatever
    order the user named the workloads in: two runs wanting some of the same workloads then
    never each hold a lock the other waits for."""
    kind, namespace, name = workload
    return kind.word, name, namespace


def holder_identity(user: str, host: str, pid: int, run: str) -> str:
    """Who holds the lock, as a person reads it: ``alice@laptop (pid 4242, kubectl-restart-
    backend, run 3f9a2c)``. ``run`` is random per process: a pid alone is not unique across
    containers that share a host name."""
    return one_line(f"{user}@{host} (pid {pid}, {TOOL}, run {run})", limit=200)


def sight(previous: Optional[Sighting], lease: Optional[dict], clock: float) -> Optional[Sighting]:
    """Fold one read of the Lease into what we have seen: a new resourceVersion restarts the
    count of how long it has stood still."""
    if lease is None:
        return None
    version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
    if previous is not None and previous.resource_version == version:
        return previous
    return Sighting(version, clock)


def judge_lease(
    lease: Optional[dict], me: str, now: datetime, unchanged_for: float = 0.0
) -> LeaseView:
    """Whether the lock is ours to take. ``unchanged_for``: seconds this version of the Lease
    has stood still on our own clock (``Sighting``)."""
    if lease is None:
        return LeaseView(LockState.ABSENT)
    spec = lease.get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    duration = spec.get("leaseDurationSeconds")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
        duration = LEASE_DURATION
    acquired = parse_time(spec.get("acquireTime"))
    renewed = parse_time(spec.get("renewTime")) or acquired
    view = LeaseView(LockState.HELD, holder, acquired, renewed, duration)
    if not holder:
        return LeaseView(LockState.FREE, "", acquired, renewed, duration)
    if holder == me:
        return LeaseView(LockState.OURS, holder, acquired, renewed, duration)
    stale = renewed is not None and (now - renewed).total_seconds() > duration + CLOCK_SKEW
    if stale or unchanged_for >= duration:
        return LeaseView(LockState.EXPIRED, holder, acquired, renewed, duration)
    return view


# -- what to send ----------------------------------------------------------------------------


def format_micro_time(moment: datetime) -> str:
    """A ``MicroTime`` as the API server parses it: RFC 3339, six fraction digits, UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_lease(
    namespace: str, name: str, me: str, now: datetime, workload: str, duration: int = LEASE_DURATION
) -> dict:
    """A new Lease held by ``me`` (created with POST: the API server refuses a second one)."""
    stamp = format_micro_time(now)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "annotations": {WORKLOAD_ANNOTATION: workload},
        },
        "spec": {
            "holderIdentity": me,
            "leaseDurationSeconds": duration,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": 0,
        },
    }


def build_takeover(lease: dict, me: str, now: datetime, duration: int = LEASE_DURATION) -> dict:
    """The Lease taken by ``me`` (a free one, or one whose holder is gone). Replaced at the
    resourceVersion we read: if anyone wrote it meanwhile, the API server answers 409.
    ``leaseTransitions`` counts changes of holder, as client-go's leader election does."""
    stamp = format_micro_time(now)
    spec = dict(lease.get("spec") or {})
    transitions = spec.get("leaseTransitions")
    transitions = transitions if isinstance(transitions, int) and transitions >= 0 else 0
    changed_hands = spec.get("holderIdentity") != me
    spec.update(
        holderIdentity=me,
        leaseDurationSeconds=duration,
        acquireTime=stamp,
        renewTime=stamp,
        leaseTransitions=transitions + 1 if changed_hands else transitions,
    )
    return _with_spec(lease, spec)


def build_renewal(lease: dict, now: datetime) -> dict:
    """Our Lease with a fresh renewTime (at the resourceVersion we last wrote)."""
    spec = dict(lease.get("spec") or {})
    spec["renewTime"] = format_micro_time(now)
    return _with_spec(lease, spec)


def build_release(lease: dict, now: datetime) -> dict:
    """Our Lease given back: no holder, so the next run takes it at once (client-go's
    leader election releases the same way); the object stays for the next run to reuse."""
    spec = dict(lease.get("spec") or {})
    spec.pop("holderIdentity", None)
    spec["renewTime"] = format_micro_time(now)
    return _with_spec(lease, spec)


def _with_spec(lease: dict, spec: dict) -> dict:
    meta = lease.get("metadata") or {}
    kept = ("name", "namespace", "resourceVersion", "labels", "annotations", "uid")
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {key: meta[key] for key in kept if key in meta},
        "spec": spec,
    }


# -- what to say -----------------------------------------------------------------------------


def describe_holder(view: LeaseView, now: datetime) -> str:
    """``alice@laptop (pid 4242, ...) since 2026-11-30T12:03:04Z (40s ago)``."""
    since = view.acquired or view.renewed
    if since is None:
        return one_line(view.holder)
    age = format_age((now - since).total_seconds())
    return f"{one_line(view.holder)} since {_rfc3339(since)} ({age} ago)"


def describe_waiting(workload: str, view: LeaseView, now: datetime, limit: str) -> str:
    """The note of a run that waits: who holds the lock, since when, and for how long we wait."""
    return (
        f"{workload} is being restarted by {describe_holder(view, now)}; waiting for it to "
        f"finish ({limit}; --no-wait-lock refuses instead)"
    )


def describe_takeover(workload: str, view: LeaseView, now: datetime) -> str:
    """The note of a run that takes the lock of a holder that stopped renewing it."""
    renewed = view.renewed
    when = "it was taken"
    if renewed is not None:
        when = f"{_rfc3339(renewed)} ({format_age((now - renewed).total_seconds())} ago)"
    return (
        f"taking over the lock of {workload} from {one_line(view.holder)}: not renewed since "
        f"{when}, its holder is gone"
    )


def describe_held(workload: str, view: LeaseView, now: datetime) -> str:
    """The first half of a refusal: someone else is restarting it right now."""
    return f"{workload} is being restarted by {describe_holder(view, now)}"


def describe_no_lock(workload: Optional[str], why: str) -> str:
    """Said once per run when the lock cannot be used (no permission, no Lease API): we go
    on. ``workload``: the one the run restarts; None when it restarts several."""
    if workload is None:
        return (
            f"restarting the workloads without their locks ({why}): another run could restart "
            "them at the same time (README, 'One restart at a time')"
        )
    return (
        f"restarting {workload} without the lock ({why}): another run could restart it at the "
        "same time (README, 'One restart at a time')"
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
