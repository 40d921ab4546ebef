"""What someone else changed in the pod template, and who, in one line (pure)."""

from __future__ import annotations

import copy

import pytest

from kubectl_restart_backend.changes import changed_by, describe_template_change
from tests.k8s_objects import deployment, template

OURS = template(image="acme/shop:3.0")


def changed(**edits) -> dict:
    theirs = copy.deepcopy(OURS)
    for path, value in edits.items():
        node = theirs
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return theirs


@pytest.mark.parametrize(
    ("theirs", "said"),
    [
        (changed(spec__containers__0__image="acme/shop:4.0-hotfix"), "image 3.0 -> 4.0-hotfix"),
        (
            changed(spec__containers__0__image="ghcr.io/acme/shop:4.0"),
            "image acme/shop:3.0 -> ghcr.io/acme/shop:4.0",
        ),
        (
            changed(spec__containers__0__env=[{"name": "A", "value": "1"}]),
            "env of container api",
        ),
        (
            changed(metadata__annotations={"kubectl.kubernetes.io/restartedAt": "later"}),
            "annotation kubectl.kubernetes.io/restartedAt",
        ),
        (changed(spec__serviceAccountName="robot"), "spec.serviceAccountName"),
        (
            changed(
                spec__containers=[
                    {"name": "api", "image": "acme/shop:3.1"},
                    {"name": "proxy", "image": "envoy:1"},
                ]
            ),
            "image of container api 3.0 -> 3.1, ports of container api, container proxy added",
        ),
        (OURS, "the pod template"),
    ],
)
def test_the_change_is_said_in_a_few_words(theirs, said):
    assert describe_template_change(OURS, theirs) == said


def managed(*entries):
    dep = deployment()
    dep["metadata"]["managedFields"] = [
        {"manager": m, "operation": "Update", "time": t, "fieldsType": "FieldsV1", "fieldsV1": f}
        for m, t, f in entries
    ]
    return dep


IMAGE = ("spec", "template", "spec", "containers", 'k:{"name":"api"}', "image")
IMAGE_FIELDS = {
    "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"api"}': {"f:image": {}}}}}}
}
LABEL_FIELDS = {"f:spec": {"f:template": {"f:metadata": {"f:labels": {"f:app": {}}}}}}


def test_the_manager_owning_the_changed_field_is_named():
    dep = managed(
        ("argocd", "2026-11-03T11:59:30Z", LABEL_FIELDS),
        ("kubectl-set", "2026-11-03T11:59:00Z", IMAGE_FIELDS),
    )
    assert changed_by(dep, [IMAGE]) == "kubectl-set"


def test_without_an_owner_of_the_field_the_last_writer_of_the_template_is_named():
    dep = managed(
        ("argocd", "2026-11-03T11:59:30Z", LABEL_FIELDS),
        ("helm", "2026-11-03T11:50:00Z", LABEL_FIELDS),
    )
    assert changed_by(dep, [IMAGE]) == "argocd"


def test_our_own_field_manager_is_never_blamed_and_no_managed_fields_say_nothing():
    ours = managed(("kubectl-restart-backend", "2026-11-03T11:59:30Z", IMAGE_FIELDS))
    assert changed_by(ours, [IMAGE]) is None
    assert changed_by(deployment(), [IMAGE]) is None
