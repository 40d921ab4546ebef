"""What a user types for a workload (``statefulset/db``, ``sts/db``, ``db``) and the kind facts."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.errors import ExitCode, UsageError
from kubectl_restart_backend.kinds import (
    DAEMONSET,
    DEPLOYMENT,
    STATEFULSET,
    kind_named,
    kind_of,
    parse_workload,
    replaced_on_delete,
)


@pytest.mark.parametrize(
    "text, kind, name",
    [
        ("backend", DEPLOYMENT, "backend"),
        ("deployment/backend", DEPLOYMENT, "backend"),
        ("deploy/backend", DEPLOYMENT, "backend"),
        ("statefulset/db", STATEFULSET, "db"),
        ("sts/db", STATEFULSET, "db"),
        ("StatefulSet/db", STATEFULSET, "db"),
        ("statefulsets/db", STATEFULSET, "db"),
        ("daemonset/agent", DAEMONSET, "agent"),
        ("ds/agent", DAEMONSET, "agent"),
        ("ds/agent.v2", DAEMONSET, "agent.v2"),
    ],
)
def test_workloads_are_read_as_kubectl_reads_type_slash_name(text, kind, name):
    ref = parse_workload(text)
    assert (ref.kind, ref.name) == (kind, name)
    assert str(ref) == f"{kind.word}/{name}"


def test_a_plain_name_takes_the_default_kind():
    assert parse_workload("db", STATEFULSET).kind is STATEFULSET


@pytest.mark.parametrize(
    "text, message",
    [
        ("job/x", "'job' is not a kind the plugin restarts"),
        ("replicaset/x", "'replicaset' is not a kind the plugin restarts"),
        ("sts/Bad_Name", "'Bad_Name' is not a valid StatefulSet name"),
        ("../x", "'..' is not a kind the plugin restarts"),
        ("Bad_Name", "'Bad_Name' is not a valid Deployment name"),
        ("sts/", "'' is not a valid StatefulSet name"),
    ],
)
def test_bad_workloads_are_usage_errors(text, message):
    with pytest.raises(UsageError) as caught:
        parse_workload(text)
    assert caught.value.message == message
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.hint


def test_kind_of_reads_the_objects_kind_and_falls_back_for_list_items():
    assert kind_of({"kind": "DaemonSet"}) is DAEMONSET
    assert kind_of({}, STATEFULSET) is STATEFULSET
    assert kind_named(" STS ") is STATEFULSET


@pytest.mark.parametrize(
    "kind, spec, expected",
    [
        (STATEFULSET, {"updateStrategy": {"type": "OnDelete"}}, True),
        (DAEMONSET, {"updateStrategy": {"type": "OnDelete"}}, True),
        (STATEFULSET, {"updateStrategy": {"type": "RollingUpdate"}}, False),
        (DAEMONSET, {}, False),
        (DEPLOYMENT, {"strategy": {"type": "Recreate"}}, False),
    ],
)
def test_only_on_delete_leaves_pods_untouched_by_the_patch(kind, spec, expected):
    assert replaced_on_delete({"spec": spec}, kind) is expected
