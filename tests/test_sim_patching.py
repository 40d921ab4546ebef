"""Strategic merge, JSON merge (RFC 7386) and JSON patch (RFC 6902) as the API server does them."""

from __future__ import annotations

import pytest

from tests.cluster.patching import PatchError, apply_patch

DEPLOYMENT = {
    "metadata": {"name": "backend", "labels": {"app": "backend"}, "finalizers": ["a"]},
    "spec": {
        "replicas": 3,
        "template": {
            "metadata": {"labels": {"app": "backend"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "app:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    },
                    {"name": "sidecar", "image": "side:1"},
                ],
                "tolerations": [{"key": "x"}],
            },
        },
    },
}

RESTARTED = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}


def _pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        (
            {"spec": {"template": {"metadata": {"annotations": RESTARTED}}}},
            lambda o: (
                o["spec"]["template"]["metadata"]
                == {"labels": {"app": "backend"}, "annotations": RESTARTED}
            ),
        ),
        ({"spec": {"replicas": 5}}, lambda o: o["spec"]["replicas"] == 5),
        ({"metadata": {"labels": {"app": None}}}, lambda o: o["metadata"]["labels"] == {}),
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}},
            lambda o: (
                [(c["name"], c["image"]) for c in _pod_spec(o)["containers"]]
                == [("app", "app:2"), ("sidecar", "side:1")]
                and len(_pod_spec(o)["containers"][0]["env"]) == 2
            ),
        ),
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n:1"}]}}}},
            lambda o: [c["name"] for c in _pod_spec(o)["containers"]] == ["app", "sidecar", "new"],
        ),
        (
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}
                }
            },
            lambda o: [c["name"] for c in _pod_spec(o)["containers"]] == ["app"],
        ),
        (
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "C"}]}
                            ]
                        }
                    }
                }
            },
            lambda o: (
                _pod_spec(o)["containers"][0]["env"]
                == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C"}]
            ),
        ),
        (
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "app", "ports": [{"containerPort": 9090}]}]
                        }
                    }
                }
            },
            lambda o: (
                [p["containerPort"] for p in _pod_spec(o)["containers"][0]["ports"]] == [8080, 9090]
            ),
        ),
        (
            {"spec": {"template": {"spec": {"tolerations": [{"key": "y"}]}}}},
            lambda o: _pod_spec(o)["tolerations"] == [{"key": "y"}],
        ),
        (
            {
                "spec": {
                    "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only"}]}}
                }
            },
            lambda o: _pod_spec(o)["containers"] == [{"name": "only"}],
        ),
        (
            {"spec": {"template": {"metadata": {"$patch": "replace", "labels": {"x": "y"}}}}},
            lambda o: o["spec"]["template"]["metadata"] == {"labels": {"x": "y"}},
        ),
        (
            {"metadata": {"finalizers": ["b", "a"]}},
            lambda o: o["metadata"]["finalizers"] == ["a", "b"],
        ),
        (
            {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
            lambda o: o["metadata"]["finalizers"] == [],
        ),
        (
            {
                "spec": {
                    "template": {
                        "spec": {
                            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                            "containers": [{"name": "app", "image": "app:3"}],
                        }
                    }
                }
            },
            lambda o: (
                "$setElementOrder/containers" not in _pod_spec(o)
                and _pod_spec(o)["containers"][0]["image"] == "app:3"
            ),
        ),
    ],
    ids=[
        "restart-annotation-added",
        "scalar-replaced",
        "null-deletes-key",
        "containers-merged-by-name",
        "unknown-container-appended",
        "patch-delete-removes-item",
        "env-merged-by-name",
        "container-ports-merged-by-containerPort",
        "list-without-merge-key-replaced",
        "patch-replace-on-list",
        "patch-replace-on-map",
        "finalizers-union",
        "delete-from-primitive-list",
        "set-element-order-dropped",
    ],
)
def test_strategic_merge_patch(patch, check):
    before = repr(DEPLOYMENT)
    assert check(apply_patch(DEPLOYMENT, patch, "strategic"))
    assert repr(DEPLOYMENT) == before, "the input must not be mutated"


def test_service_ports_merge_by_port():
    service = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    patched = apply_patch(
        service, {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}, "strategic"
    )
    assert patched["spec"]["ports"] == [
        {"port": 80, "name": "http", "targetPort": 8080},
        {"port": 443, "name": "https"},
    ]


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_json_merge_patch_follows_rfc_7386(target, patch, expected):
    assert apply_patch(target, patch, "merge") == expected


@pytest.mark.parametrize(
    ("doc", "ops", "expected"),
    [
        ({"a": 1}, [{"op": "add", "path": "/b", "value": 2}], {"a": 1, "b": 2}),
        ({"a": [1, 3]}, [{"op": "add", "path": "/a/1", "value": 2}], {"a": [1, 2, 3]}),
        ({"a": [1]}, [{"op": "add", "path": "/a/-", "value": 2}], {"a": [1, 2]}),
        ({"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}], {"b": 2}),
        ({"a": [1, 2]}, [{"op": "remove", "path": "/a/0"}], {"a": [2]}),
        ({"a": 1}, [{"op": "replace", "path": "/a", "value": 5}], {"a": 5}),
        ({"a": {"b": 1}}, [{"op": "move", "from": "/a/b", "path": "/c"}], {"a": {}, "c": 1}),
        ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}],
         {"a": {"b": 1}, "c": {"b": 1}}),
        ({"a/b": 1, "m~n": 2},
         [{"op": "remove", "path": "/a~1b"}, {"op": "remove", "path": "/m~0n"}], {}),
        ({"a": 1},
         [{"op": "test", "path": "/a", "value": 1}, {"op": "add", "path": "/b", "value": 1}],
         {"a": 1, "b": 1}),
        (
            {"metadata": {"annotations": {}}},
            [{"op": "add", "value": "x",
              "path": "/metadata/annotations/kubectl.kubernetes.io~1restartedAt"}],
            {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}}},
        ),
    ],
)  # fmt: skip
def test_json_patch_follows_rfc_6902(doc, ops, expected):
    assert apply_patch(doc, ops, "json") == expected


@pytest.mark.parametrize(
    ("doc", "ops", "status"),
    [
        ({"a": 1}, [{"op": "test", "path": "/a", "value": 2}], 422),
        ({"a": 1}, [{"op": "remove", "path": "/b"}], 422),
        ({"a": 1}, [{"op": "replace", "path": "/b/c", "value": 1}], 422),
        ({"a": [1]}, [{"op": "add", "path": "/a/5", "value": 1}], 422),
        ({"a": 1}, [{"op": "frobnicate", "path": "/a"}], 400),
        ({"a": 1}, {"op": "add"}, 400),
    ],
    ids=["failed-test", "remove-missing", "replace-missing", "index-out-of-range", "unknown-op",
         "not-a-list"],
)  # fmt: skip
def test_json_patch_failures_abort(doc, ops, status):
    with pytest.raises(PatchError) as info:
        apply_patch(doc, ops, "json")
    assert info.value.status == status
    assert doc == {"a": 1} or doc == {"a": [1]}
