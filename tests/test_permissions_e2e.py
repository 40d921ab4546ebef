"""The README's minimal Role is enough, optional permissions only shorten the report, and
``--dry-run`` asks the server (SelfSubjectAccessReview) instead of trying.

Users here are bound in namespace ``shop`` only, so listing Deployments in all namespaces is
forbidden and the plugin falls back to the context's namespace, as on most real clusters.
"""

from __future__ import annotations

import re

import pytest

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import LINK_ANNOTATIONS, LINK_LABELS, run_plugin


def role_rule(group, resources, *verbs):
    return {
        "apiGroups": [group],
        "resources": resources,
        "verbs": list(verbs),
        "namespaces": ["shop"],
    }


# README "Permissions", rule by rule.
REQUIRED = [
    role_rule("apps", ["deployments", "statefulsets", "daemonsets"], "get", "list", "watch",
              "patch"),
    role_rule("apps", ["replicasets"], "list", "watch"),
    role_rule("", ["pods"], "list", "watch"),
]  # fmt: skip
DEPLOYMENTS_ONLY = [  # the Role README gave before StatefulSets and DaemonSets
    role_rule("apps", ["deployments"], "get", "list", "watch", "patch"),
    *REQUIRED[1:],
]
OPTIONAL = [
    role_rule("", ["pods/log"], "get"),
    role_rule("", ["events", "services"], "list"),
    role_rule("networking.k8s.io", ["ingresses"], "list"),
    role_rule("gateway.networking.k8s.io", ["httproutes"], "list"),
    role_rule("", ["services/proxy"], "get"),
    role_rule("coordination.k8s.io", ["leases"], "get", "create", "update"),
]


def link(cluster, **kwargs):
    labels = {**LINK_LABELS, "app": "backend"}
    return cluster.create_deployment(
        "shop", "backend", labels=labels, annotations=dict(LINK_ANNOTATIONS), **kwargs
    )


def as_user(cluster, rules):
    cluster.add_user("dev", "dev-token", rules)
    return cluster.write_kubeconfig(user="dev", namespace="shop", context="dev")


def restart(kubeconfig, checkout, *args):
    return run_plugin(["--kubeconfig", kubeconfig, "--timeout", "30s", *args], cwd=checkout)


def writes(cluster):
    """Requests that change something (SelfSubjectAccessReviews only ask)."""
    return [
        r
        for r in cluster.requests
        if r.method in ("PATCH", "PUT", "DELETE")
        or (r.method == "POST" and not r.path.endswith("/selfsubjectaccessreviews"))
    ]


def first_verdict_line(run):
    """The verdict line, with generated pod names made comparable across clusters."""
    line = next(line for line in run.stdout.splitlines() if line[:1] in ("✓", "✗", "⚠"))
    return re.sub(r"backend-[a-z0-9]+-[a-z0-9]+", "backend-POD", line)


def test_the_minimal_role_runs_the_whole_flow(cluster, checkout):
    link(cluster)
    run = restart(as_user(cluster, REQUIRED + OPTIONAL), checkout)
    assert run.exit_code == 0, run.output
    assert "Rolling restart complete for backend" in run.stdout
    assert "searched namespace shop" in run.stdout
    assert [r.user for r in cluster.requests if r.method == "PATCH"] == ["dev"]
    assert not [
        r for r in cluster.requests if r.status == 403 and r.path != "/apis/apps/v1/deployments"
    ]


def test_a_role_written_for_deployments_only_still_restarts_its_deployment(cluster, checkout):
    link(cluster)
    run = restart(as_user(cluster, DEPLOYMENTS_ONLY + OPTIONAL), checkout)
    assert run.exit_code == 0, run.output
    assert "Rolling restart complete for backend" in run.stdout
    assert (
        "note: not allowed to list statefulsets or daemonsets in namespace shop; searched "
        "deployments only"
    ) in run.stdout


@pytest.mark.parametrize(
    "behaviour, exit_code",
    [(None, 0), (Behaviour.crash_loop(log_lines=("FATAL: boom",)), 1)],
    ids=["success", "failure"],
)
def test_without_optional_permissions_the_report_is_shorter_not_different(
    make_cluster, checkout, behaviour, exit_code
):
    runs = {}
    for who, rules in (("full", REQUIRED + OPTIONAL), ("minimal", REQUIRED)):
        cluster = make_cluster()
        link(cluster)
        if behaviour:
            cluster.set_behaviour("shop", "backend", behaviour)
        runs[who] = restart(as_user(cluster, rules), checkout)
        assert runs[who].exit_code == exit_code, runs[who].output
        assert len([r for r in cluster.requests if r.method == "PATCH"]) == 1
    full, minimal = runs["full"], runs["minimal"]
    assert first_verdict_line(minimal) == first_verdict_line(full)
    assert "Traceback" not in minimal.output
    if exit_code == 0:
        assert "could not look" in minimal.stdout
    else:
        assert "| FATAL: boom" in full.stdout
        assert "| FATAL: boom" not in minimal.stdout
        assert "forbidden" in minimal.stdout  # the log section says why it is empty
        assert "Events: could not look:" in minimal.stdout
        assert "Events: could not look:" not in full.stdout


def test_without_ingress_permission_the_urls_line_says_it_could_not_look(cluster, checkout):
    link(cluster)
    rules = REQUIRED + [role_rule("", ["services"], "list")]
    run = restart(as_user(cluster, rules), checkout)
    assert run.exit_code == 0, run.output
    urls = [line for line in run.stdout.splitlines() if line.startswith("URLs: ")]
    assert urls and "could not look at ingresses" in urls[0]


def test_dry_run_asks_the_server_and_writes_nothing(cluster, checkout):
    link(cluster)
    run = restart(as_user(cluster, REQUIRED), checkout, "--dry-run")
    assert run.exit_code == 0, run.output
    assert "patch deployments: yes" in run.stdout
    reviews = [r for r in cluster.requests if r.path.endswith("/selfsubjectaccessreviews")]
    assert reviews and all(r.method == "POST" for r in reviews)
    assert not writes(cluster)


def test_dry_run_says_which_permission_is_missing(cluster, checkout):
    link(cluster)
    no_patch = [role_rule("apps", ["deployments"], "get", "list", "watch")] + REQUIRED[1:]
    run = restart(as_user(cluster, no_patch), checkout, "--dry-run")
    assert "patch deployments: no" in run.stdout
    assert not writes(cluster)
