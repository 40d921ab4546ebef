"""Label and field selector parsing and matching, as the API server does them."""

from __future__ import annotations

import pytest

from tests.cluster.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "restart-backend/repo": "acme-shop"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=api", False),
        ("app!=api", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (api, web)", True),
        ("app in (api,db)", False),
        ("app notin (api,db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("app in (web,api),!missing,restart-backend/repo=acme-shop", True),
        ("restart-backend/repo=acme-shop", True),
    ],
)
def test_label_selector_matches_like_kubernetes(selector, matches):
    assert labels_match(parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize(
    "selector",
    ["app=acme/shop", "bad key=x", "app in ()", "=x", "a,,b"],
    ids=["slash-in-value", "space-in-key", "empty-set", "no-key", "empty-term"],
)
def test_invalid_label_selectors_are_rejected(selector):
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


POD = {
    "metadata": {"name": "web-1", "namespace": "shop"},
    "spec": {"nodeName": "node-1", "hostNetwork": False},
    "status": {"phase": "Running"},
}
UNSCHEDULED = {"metadata": {"name": "web-2", "namespace": "shop"}, "spec": {}, "status": {}}
EVENT = {
    "metadata": {"name": "web-1.17a", "namespace": "shop"},
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
    "reason": "BackOff",
    "type": "Warning",
    "source": {"component": "kubelet"},
}


@pytest.mark.parametrize(
    ("resource", "obj", "selector", "matches"),
    [
        ("pods", POD, "metadata.name=web-1", True),
        ("pods", POD, "metadata.name==web-2", False),
        ("pods", POD, "metadata.namespace=shop,status.phase=Running", True),
        ("pods", POD, "status.phase!=Running", False),
        ("pods", POD, "spec.nodeName=node-1", True),
        ("pods", POD, "spec.hostNetwork=false", True),
        ("pods", UNSCHEDULED, "spec.nodeName=", True),
        ("pods", POD, "spec.nodeName=", False),
        ("events", EVENT, "involvedObject.kind=Pod,involvedObject.name=web-1", True),
        ("events", EVENT, "involvedObject.name=web-2", False),
        ("events", EVENT, "reason=BackOff,type=Warning", True),
        ("events", EVENT, "source=kubelet", True),
    ],
)
def test_field_selector_matches_like_kubernetes(resource, obj, selector, matches):
    assert fields_match(parse_field_selector(selector, resource), obj) is matches


@pytest.mark.parametrize(
    ("resource", "selector"),
    [("deployments", "status.phase=Running"), ("pods", "reason=x"), ("events", "nonsense")],
)
def test_unsupported_field_selectors_are_rejected(resource, selector):
    with pytest.raises(SelectorError):
        parse_field_selector(selector, resource)
