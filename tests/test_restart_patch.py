"""The restart patch and the undo patch: exactly what is sent, nothing more."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubectl_restart_backend.restart_patch import (
    build_restart_patch,
    build_undo_patch,
    choose_previous_replicaset,
    format_rfc3339,
    restarted_at_of,
)


def test_restart_patch_sets_only_the_restarted_at_annotation():
    assert build_restart_patch("2026-11-26T06:00:00Z") == {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T06:00:00Z"}
                }
            }
        }
    }


def test_rfc3339_is_utc_to_the_second_like_kubectl():
    moment = datetime(2026, 11, 26, 7, 8, 9, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_rfc3339(moment) == "2026-11-26T06:08:09Z"


def test_restarted_at_is_read_from_the_pod_template():
    dep = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}}}
        }
    }
    assert restarted_at_of(dep) == "x"
    assert restarted_at_of({"spec": {}}) is None


def rs(name, revision, uid="dep-uid", template_labels=None):
    labels = {"app": "backend", "pod-template-hash": name[-4:]}
    labels.update(template_labels or {})
    return {
        "metadata": {
            "name": name,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"uid": uid, "kind": "Deployment", "controller": True}],
        },
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": []}}},
    }


def test_previous_replicaset_is_the_newest_other_than_the_failing_one():
    replicasets = [rs("b-aaaa", 1), rs("b-bbbb", 2), rs("b-cccc", 3), rs("x-dddd", 9, uid="other")]
    assert (
        choose_previous_replicaset(replicasets, "dep-uid", "b-cccc")["metadata"]["name"] == "b-bbbb"
    )


def test_no_previous_replicaset_when_only_the_new_one_exists():
    assert choose_previous_replicaset([rs("b-cccc", 3)], "dep-uid", "b-cccc") is None


def test_undo_patch_restores_the_template_without_its_hash_and_tests_the_whole_template():
    ours = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T06:00:00Z"}},
        "spec": {"containers": [{"name": "api", "image": "acme/shop:3.0"}]},
    }
    revision, ops = build_undo_patch(rs("b-bbbb", 2), ours)
    assert revision == 2
    assert ops[0] == {"op": "test", "path": "/spec/template", "value": ours}
    assert ops[1]["op"] == "replace" and ops[1]["path"] == "/spec/template"
    assert ops[1]["value"]["metadata"]["labels"] == {"app": "backend"}
