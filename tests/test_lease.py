"""The restart lock's decisions (kubectl_restart_backend/lease.py): tables, no cluster."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from kubectl_restart_backend.kinds import DAEMONSET, DEPLOYMENT, KINDS, STATEFULSET
from kubectl_restart_backend.lease import (
    CLOCK_SKEW,
    LEASE_DURATION,
    LockState,
    Sighting,
    build_lease,
    build_release,
    build_renewal,
    build_takeover,
    describe_takeover,
    describe_waiting,
    format_micro_time,
    holder_identity,
    judge_lease,
    lease_name,
    lock_order,
    sight,
)

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
ME = "me@laptop (pid 1, kubectl-restart-backend, run aaaaaa)"
THEM = "alice@ci (pid 7, kubectl-restart-backend, run bbbbbb)"


def lease(holder=THEM, renewed_ago=5.0, duration=LEASE_DURATION, acquired_ago=40.0, rv="12"):
    spec = {
        "leaseDurationSeconds": duration,
        "acquireTime": format_micro_time(NOW - timedelta(seconds=acquired_ago)),
        "renewTime": format_micro_time(NOW - timedelta(seconds=renewed_ago)),
        "leaseTransitions": 2,
    }
    if holder:
        spec["holderIdentity"] = holder
    return {
        "metadata": {"name": "restart-backend.deployment.backend", "namespace": "shop",
                     "resourceVersion": rv, "uid": "u-1"},
        "spec": spec,
    }  # fmt: skip


@pytest.mark.parametrize(
    "obj, unchanged_for, state",
    [
        pytest.param(None, 0.0, LockState.ABSENT, id="no-lease-yet"),
        pytest.param(lease(holder=""), 0.0, LockState.FREE, id="released"),
        pytest.param(lease(holder=ME), 0.0, LockState.OURS, id="ours"),
        pytest.param(lease(), 0.0, LockState.HELD, id="renewed-5s-ago"),
        pytest.param(lease(), 29.9, LockState.HELD, id="still-less-than-a-duration"),
        pytest.param(lease(), 30.0, LockState.EXPIRED, id="unchanged-for-a-duration-here"),
        pytest.param(
            lease(renewed_ago=LEASE_DURATION + CLOCK_SKEW + 1),
            0.0,
            LockState.EXPIRED,
            id="renewed-longer-ago-than-any-clock-skew",
        ),
        pytest.param(
            lease(renewed_ago=LEASE_DURATION + CLOCK_SKEW - 1),
            0.0,
            LockState.HELD,
            id="old-but-a-skewed-clock-could-explain-it",
        ),
        pytest.param(lease(renewed_ago=-600), 0.0, LockState.HELD, id="renewed-in-our-future"),
        pytest.param(lease(duration=5), 5.0, LockState.EXPIRED, id="its-own-duration-counts"),
        pytest.param(lease(duration=0), 29.0, LockState.HELD, id="bad-duration-is-ours"),
    ],
)
def test_who_may_take_the_lock(obj, unchanged_for, state):
    assert judge_lease(obj, ME, NOW, unchanged_for).state is state


def test_a_lease_without_times_is_held_until_it_stands_still_a_whole_duration():
    bare = {"metadata": {"resourceVersion": "3"}, "spec": {"holderIdentity": THEM}}
    assert judge_lease(bare, ME, NOW, 10.0).state is LockState.HELD
    assert judge_lease(bare, ME, NOW, LEASE_DURATION).state is LockState.EXPIRED


def test_standing_still_is_counted_per_resource_version():
    first = sight(None, lease(rv="5"), 100.0)
    assert first == Sighting("5", 100.0)
    assert sight(first, lease(rv="5"), 130.0) is first  # the same version: still since 100
    assert sight(first, lease(rv="6"), 130.0) == Sighting("6", 130.0)  # renewed: count anew
    assert sight(first, None, 130.0) is None


@pytest.mark.parametrize(
    "kind, name, expected",
    [
        ("Deployment", "backend", "restart-backend.deployment.backend"),
        ("StatefulSet", "db", "restart-backend.statefulset.db"),
        ("DaemonSet", "agent.v2", "restart-backend.daemonset.agent.v2"),
    ],
)
def test_one_lease_per_workload_kind_and_name(kind, name, expected):
    assert lease_name(kind, name) == expected


def test_a_name_too_long_for_a_lease_keeps_its_start_and_a_hash_of_the_whole():
    long_a, long_b = "a" * 250, "a" * 249 + "b"
    name_a, name_b = lease_name("Deployment", long_a), lease_name("Deployment", long_b)
    assert len(name_a) == 253 and name_a.startswith("restart-backend.deployment.aaa")
    assert name_a != name_b


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@pytest.mark.parametrize("name", ["api", "a" * 200, "a" * 240, "b" * 253, "web.v2-" + "x" * 240])
def test_same_named_workloads_of_different_kinds_never_share_a_lock(name):
    names = [lease_name(kind.name, name) for kind in KINDS]
    assert len(set(names)) == len(KINDS)
    for lease_of_kind in names:
        assert len(lease_of_kind) <= 253 and DNS_SUBDOMAIN.match(lease_of_kind), lease_of_kind


@pytest.mark.parametrize(
    "named, taken",
    [
        pytest.param(
            [(STATEFULSET, "shop", "db"), (DEPLOYMENT, "shop", "api")],
            [(DEPLOYMENT, "shop", "api"), (STATEFULSET, "shop", "db")],
            id="kind-first-whatever-the-order-named",
        ),
        pytest.param(
            [(DEPLOYMENT, "shop", "web"), (DEPLOYMENT, "shop", "api"), (DAEMONSET, "shop", "x")],
            [(DAEMONSET, "shop", "x"), (DEPLOYMENT, "shop", "api"), (DEPLOYMENT, "shop", "web")],
            id="then-name",
        ),
        pytest.param(
            [(DEPLOYMENT, "shop", "api"), (DEPLOYMENT, "billing", "api")],
            [(DEPLOYMENT, "billing", "api"), (DEPLOYMENT, "shop", "api")],
            id="then-namespace",
        ),
    ],
)
def test_every_run_takes_a_waves_locks_in_one_order(named, taken):
    assert sorted(named, key=lock_order) == taken
    assert sorted(reversed(named), key=lock_order) == taken


def test_holder_identity_names_user_host_pid_tool_and_run_on_one_line():
    assert holder_identity("alice", "ci-7\nx", 42, "3f9a2c") == (
        "alice@ci-7 x (pid 42, kubectl-restart-backend, run 3f9a2c)"
    )


def test_a_new_lease_is_held_by_us_with_micro_times():
    body = build_lease("shop", "restart-backend.deployment.backend", ME, NOW, "deployment shop/x")
    assert body["spec"] == {
        "holderIdentity": ME,
        "leaseDurationSeconds": LEASE_DURATION,
        "acquireTime": "2026-11-30T12:00:00.000000Z",
        "renewTime": "2026-11-30T12:00:00.000000Z",
        "leaseTransitions": 0,
    }
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kubectl-restart-backend"}
    assert "resourceVersion" not in body["metadata"]  # a create: the server refuses a second one


def test_taking_over_keeps_the_resource_version_read_and_counts_a_transition():
    taken = build_takeover(lease(), ME, NOW)
    assert taken["metadata"]["resourceVersion"] == "12"  # 409 if anyone wrote it since
    assert taken["spec"]["holderIdentity"] == ME
    assert taken["spec"]["acquireTime"] == taken["spec"]["renewTime"] == format_micro_time(NOW)
    assert taken["spec"]["leaseTransitions"] == 3
    assert build_takeover(lease(holder=""), ME, NOW)["spec"]["leaseTransitions"] == 3
    assert build_takeover(lease(holder=ME), ME, NOW)["spec"]["leaseTransitions"] == 2


def test_renewal_moves_only_renew_time_and_release_drops_the_holder():
    ours = lease(holder=ME)
    renewed = build_renewal(ours, NOW)
    assert renewed["spec"] == {**ours["spec"], "renewTime": format_micro_time(NOW)}
    assert renewed["metadata"]["resourceVersion"] == "12"
    released = build_release(ours, NOW)
    assert "holderIdentity" not in released["spec"]
    assert judge_lease(released, THEM, NOW).state is LockState.FREE


def test_the_waiting_note_says_who_since_when_and_how_long_we_wait():
    view = judge_lease(lease(acquired_ago=40), ME, NOW)
    assert describe_waiting("deployment shop/backend", view, NOW, "up to 2m, --timeout") == (
        f"deployment shop/backend is being restarted by {THEM} since 2026-11-30T11:59:20Z "
        "(40s ago); waiting for it to finish (up to 2m, --timeout; --no-wait-lock refuses "
        "instead)"
    )


def test_the_takeover_note_says_since_when_the_holder_is_silent():
    view = judge_lease(lease(renewed_ago=3600), ME, NOW)
    assert describe_takeover("deployment shop/backend", view, NOW) == (
        f"taking over the lock of deployment shop/backend from {THEM}: not renewed since "
        "2026-11-30T11:00:00Z (60m ago), its holder is gone"
    )


def test_the_takeover_note_of_a_lease_without_times():
    bare = {"metadata": {"resourceVersion": "3"}, "spec": {"holderIdentity": THEM}}
    view = judge_lease(bare, ME, NOW, LEASE_DURATION)
    assert describe_takeover("deployment shop/backend", view, NOW).endswith(
        "not renewed since it was taken, its holder is gone"
    )
