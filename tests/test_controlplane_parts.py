"""The real tier's pure parts, without a control plane: behaviour annotations, the wrapper
go.mod, what the differential tests compare, and the fake kubelet's log endpoint."""

from __future__ import annotations

import pytest

from tests.cluster.behaviours import Behaviour, behaviour_from_annotations
from tests.cluster.kubelet import LogBook
from tests.controlplane import build
from tests.controlplane.cluster import behaviour_annotations
from tests.controlplane.differential import key_lines, normalize
from tests.controlplane.fake_kubelet import Cache, read_container_log, workload_of
from tests.plugin_runner import Run


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour.healthy(),
        Behaviour.healthy(start_delay=1.5, ready_delay=0.5),
        Behaviour.crash_loop(exit_code=3, log_lines=("a", "FATAL: b"), failures=2),
        Behaviour.crash_loop(container="migrate"),
        Behaviour.oom_killed(failures=1),
        Behaviour.image_pull_backoff(pull_error="unavailable", failures=1),
        Behaviour.never_ready(unready_for=30.0),
        Behaviour.unschedulable(),
    ],
)
def test_behaviour_annotations_ask_for_the_same_behaviour(behaviour):
    assert behaviour_from_annotations(behaviour_annotations(behaviour)) == behaviour


def test_a_behaviour_no_annotation_can_say_is_refused():
    with pytest.raises(ValueError, match="probe_message"):
        behaviour_annotations(Behaviour.never_ready(probe_message="HTTP 500"))


@pytest.mark.parametrize(
    "pod, workload",
    [
        ({"ownerReferences": [{"kind": "ReplicaSet", "name": "backend-5fccd464f",
                               "controller": True}],
          "labels": {"pod-template-hash": "5fccd464f"}}, ("Deployment", "backend")),
        ({"ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": True}]},
         ("StatefulSet", "db")),
        ({"ownerReferences": [{"kind": "DaemonSet", "name": "agent", "controller": True}]},
         ("DaemonSet", "agent")),
        ({}, None),
    ],
)  # fmt: skip
def test_a_pods_workload_is_its_controller_or_its_replicasets_deployment(pod, workload):
    assert workload_of({"metadata": {"name": "p", **pod}}) == workload


def test_the_wrapper_go_mod_points_every_replaced_module_at_the_release():
    text = build.render_go_mod(build.COMPONENTS["kubernetes"], ["k8s.io/api", "k8s.io/kubectl"])
    assert "require k8s.io/kubernetes v1.37.2" in text
    assert "\tk8s.io/api => k8s.io/api v0.37.2\n" in text
    assert "\tk8s.io/kubectl => k8s.io/kubectl v0.37.2\n" in text
    krew = build.render_go_mod(build.COMPONENTS["krew"], [])
    assert "require github.com/modern-go/reflect2 v1.0.2" in krew
    assert "replace" not in krew


def test_the_cache_key_changes_with_the_wrapper_module(tmp_path, monkeypatch):
    component = build.COMPONENTS["etcd"]
    monkeypatch.setattr(build, "MODULES", tmp_path)
    (tmp_path / "etcd").mkdir()
    (tmp_path / "etcd" / "go.mod").write_text("module a\n")
    first = build.cache_dir(component, "go1.26.8")
    (tmp_path / "etcd" / "go.mod").write_text("module b\n")
    assert build.cache_dir(component, "go1.26.8") != first
    assert build.cache_dir(component, "go1.26.9").name.startswith("etcd-v3.7.3-go1.26.9-")


def test_normalize_replaces_what_is_random_by_nature():
    text = (
        "pod backend-5fccd464f-924xf of backend-5fccd464f in shop-ab12cd "
        "back-off 20s restarting failed container=app pod=backend-5fccd464f-924xf_shop-ab12cd"
        "(0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b) --context real (context real)"
    )
    assert normalize(text, "ab12cd") == (
        "pod backend-<pod> of backend-<rs> in shop back-off <t> restarting failed "
        "container=app pod=backend-<pod>_shop(<uid>) --context <context> (context <context>)"
    )


def test_key_lines_keep_what_must_agree_and_leave_out_timing():
    stdout = "\n".join(
        [
            "Rolling restart triggered. Waiting for pods to restart...",
            "Pods: 0/3 ready, rollout in progress...",
            "✗ Restart failed: pod backend-5fccd464f-924xf (container app) is in CrashLoopBackOff",
            "Pod details:",
            "  NAME                     READY  STATUS            RESTARTS  AGE  NODE",
            "  backend-5fccd464f-924xf  0/1    CrashLoopBackOff  2         3s   sim-node-1",
            "  backend-5fccd464f-924xf (container app): back-off 20s restarting failed",
            "Events:",
            "    2s  BackOff            pod/backend-5fccd464f-924xf: Back-off restarting (x3)",
            "--- logs of backend-5fccd464f-924xf (container app, previous instance) ---",
            "  | FATAL: no database",
            "--- end of logs ---",
        ]
    )
    keys = key_lines(Run(1, stdout, ""))
    assert keys["verdict"] == (
        "✗ Restart failed: pod backend-<pod> (container app) is in CrashLoopBackOff"
    )
    assert keys["pods"] == [("backend-<pod>", "0/1", "CrashLoopBackOff")]
    assert keys["details"] == ["backend-<pod> (container app): back-off <t> restarting failed"]
    assert keys["events"] == {("BackOff", "pod", "Back-off restarting")}
    assert keys["logs"] == ["| FATAL: no database"]


@pytest.fixture
def pod_logs():
    """A cache holding one crash-looped pod, and its two container instances' logs."""
    cache, logs = Cache(), LogBook()
    status = {
        "name": "app",
        "state": {"running": {}},
        "containerID": "containerd://2",
        "lastState": {"terminated": {"containerID": "containerd://1"}},
    }
    cache.put("pods", {
        "metadata": {"name": "p", "namespace": "shop", "uid": "u1", "resourceVersion": "5"},
        "spec": {"nodeName": "sim-node-1", "containers": [{"name": "app"}]},
        "status": {"containerStatuses": [status]},
    })  # fmt: skip
    logs.start_instance("u1", "app", "containerd://1", ["first", "FATAL: crashed"], 0.0)
    logs.start_instance("u1", "app", "containerd://2", ["second"], 1.0)
    return cache, logs


@pytest.mark.parametrize(
    "pod, container, query, expected",
    [
        ("p", "app", {}, (200, "second\n")),
        ("p", "app", {"previous": ["true"]}, (200, "first\nFATAL: crashed\n")),
        ("p", "app", {"previous": ["true"], "tailLines": ["1"]}, (200, "FATAL: crashed\n")),
        ("p", "sidecar", {}, (404, 'container "sidecar" not found in pod "p"')),
        ("q", "app", {}, (404, 'pod "q" does not exist')),
    ],
)
def test_the_log_endpoint_answers_as_the_kubelet_does(pod_logs, pod, container, query, expected):
    assert read_container_log(*pod_logs, "shop", pod, container, query) == expected
