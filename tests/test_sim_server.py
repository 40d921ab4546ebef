"""The simulated API server over real HTTP(S): wire format, watch, errors, auth and faults.

Raw requests go through http.client (to see status lines, headers and chunked watch streams
exactly); a few go through the official Python client, as the plugin does.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from typing import Any, Iterator

import pytest
import yaml

from tests.cluster import SimCluster, rule
from tests.cluster.resources import AGGREGATED_CONTENT_TYPE

pytestmark = pytest.mark.timeout(60)

DEPLOYMENTS = "/apis/apps/v1/namespaces/shop/deployments"
SMP = "application/strategic-merge-patch+json"


@pytest.fixture
def cluster(make_cluster) -> SimCluster:
    """The server alone (no simulation), so objects change only when a test changes them."""
    return make_cluster(simulation_factory=None, bookmark_interval=0.2)


class Response:
    def __init__(self, raw: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> None:
        self.raw, self.conn = raw, conn
        self.status = raw.status
        self.headers = raw.headers

    def json(self) -> Any:
        return json.loads(self.raw.read())

    def text(self) -> str:
        return self.raw.read().decode()

    def events(self) -> Iterator[dict]:
        """Watch events, one JSON object per line, until the server ends the stream."""
        while True:
            line = self.raw.readline()
            if not line:
                return
            yield json.loads(line)


def request(
    cluster: SimCluster,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "admin",
    content_type: str = "application/json",
    accept: str = "application/json",
) -> Response:
    host, port = cluster.host, cluster.port
    if cluster.tls:
        context = ssl.create_default_context(cafile=cluster.ca_file)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, context=context, timeout=30
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {_token(cluster, token)}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    conn.request(method, path, body=data, headers=headers)
    return Response(conn.getresponse(), conn)


def _token(cluster: SimCluster, user_or_token: str) -> str:
    """A user's token when `user_or_token` names a user, else the string itself."""
    try:
        return cluster.token_of(user_or_token)
    except KeyError:
        return user_or_token


def deployment_body(name: str = "web", labels: dict | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    }


@pytest.fixture
def shop(cluster: SimCluster) -> SimCluster:
    cluster.create_namespace("shop")
    metadata = {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": "front"}}
    cluster.create("deployments", {**deployment_body("web"), "metadata": metadata})
    return cluster


# ---------------------------------------------------------------------- discovery


def test_aggregated_discovery_when_asked(cluster):
    accept = f"{AGGREGATED_CONTENT_TYPE},application/json"
    response = request(cluster, "GET", "/apis", accept=accept)
    body = response.json()
    assert response.headers["Content-Type"] == AGGREGATED_CONTENT_TYPE
    assert body["kind"] == "APIGroupDiscoveryList"
    apps = next(item for item in body["items"] if item["metadata"]["name"] == "apps")
    deployments = next(
        r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments"
    )
    assert deployments["scope"] == "Namespaced"
    assert {s["subresource"] for s in deployments["subresources"]} == {"scale", "status"}


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/api", "APIVersions"), ("/apis", "APIGroupList"), ("/api/v1", "APIResourceList"),
     ("/apis/apps/v1", "APIResourceList"), ("/apis/apps", "APIGroup")],
)  # fmt: skip
def test_legacy_discovery_documents(cluster, path, kind):
    response = request(cluster, "GET", path)
    assert response.status == 200
    assert response.json()["kind"] == kind


def test_version_and_health(cluster):
    assert request(cluster, "GET", "/version").json()["gitVersion"].startswith("v1.37")
    assert request(cluster, "GET", "/readyz").text() == "ok"


def test_gateway_api_can_be_switched_off(make_cluster):
    without = make_cluster(simulation_factory=None, gateway_api=False)
    groups = [g["name"] for g in request(without, "GET", "/apis").json()["groups"]]
    assert "gateway.networking.k8s.io" not in groups
    assert request(without, "GET", "/apis/gateway.networking.k8s.io/v1/httproutes").status == 404


# ---------------------------------------------------------------------- reads


def test_list_has_kind_api_version_and_resource_version(shop):
    body = request(shop, "GET", DEPLOYMENTS).json()
    assert body["kind"] == "DeploymentList"
    assert body["apiVersion"] == "apps/v1"
    assert body["metadata"]["resourceVersion"] == str(shop.store.resource_version)
    assert [item["metadata"]["name"] for item in body["items"]] == ["web"]
    assert "kind" not in body["items"][0], "typed list items carry no kind on the wire"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("labelSelector=tier%3Dfront", ["web"]),
        ("labelSelector=tier%20in%20(back)", []),
        ("fieldSelector=metadata.name%3Dweb", ["web"]),
        ("fieldSelector=metadata.name%21%3Dweb", []),
    ],
)
def test_list_selectors(shop, query, names):
    body = request(shop, "GET", f"/apis/apps/v1/deployments?{query}").json()
    assert [item["metadata"]["name"] for item in body["items"]] == names


def test_bad_selector_is_400(shop):
    response = request(shop, "GET", f"{DEPLOYMENTS}?fieldSelector=spec.paused%3Dtrue")
    assert response.status == 400
    assert response.json()["message"] == "field label not supported: spec.paused"


def test_pagination_with_limit_and_continue(cluster):
    for index in range(5):
        cluster.create_configmap("shop", f"cm-{index}")
    first = request(cluster, "GET", "/api/v1/namespaces/shop/configmaps?limit=2").json()
    assert first["metadata"]["remainingItemCount"] == 3
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = request(
            cluster, "GET", f"/api/v1/namespaces/shop/configmaps?limit=2&continue={token}"
        ).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == [f"cm-{index}" for index in range(5)]


def test_not_found_is_a_status_body(shop):
    response = request(shop, "GET", f"{DEPLOYMENTS}/ghost")
    assert response.status == 404
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "ghost" not found',
        "reason": "NotFound",
        "details": {"name": "ghost", "group": "apps", "kind": "deployments"},
        "code": 404,
    }


def test_table_for_kubectl_get(shop):
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    body = request(shop, "GET", DEPLOYMENTS, accept=accept).json()
    assert body["kind"] == "Table"
    assert [c["name"] for c in body["columnDefinitions"]][:5] == [
        "Name", "Ready", "Up-to-date", "Available", "Age"]  # fmt: skip
    assert body["rows"][0]["cells"][:2] == ["web", "0/2"]
    assert body["rows"][0]["object"]["metadata"]["namespace"] == "shop"


# ---------------------------------------------------------------------- writes


def test_create_defaults_and_conflicts(cluster):
    cluster.create_namespace("shop")
    created = request(cluster, "POST", DEPLOYMENTS, deployment_body())
    assert created.status == 201
    spec = created.json()["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    again = request(cluster, "POST", DEPLOYMENTS, deployment_body())
    assert again.status == 409
    assert again.json()["reason"] == "AlreadyExists"


def test_create_in_missing_namespace_is_404(cluster):
    response = request(
        cluster, "POST", "/apis/apps/v1/namespaces/nope/deployments", deployment_body()
    )
    assert response.status == 404
    assert response.json()["message"] == 'namespaces "nope" not found'


def test_invalid_deployment_is_422(cluster):
    cluster.create_namespace("shop")
    body = deployment_body()
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    response = request(cluster, "POST", DEPLOYMENTS, body)
    assert response.status == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(
        'Deployment.apps "web" is invalid: spec.template.metadata.labels'
    )


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        (SMP, {"spec": {"template": {"metadata": {"annotations": {"r": "1"}}}}}),
        ("application/merge-patch+json",
         {"spec": {"template": {"metadata": {"annotations": {"r": "1"}}}}}),
        ("application/json-patch+json",
         [{"op": "add", "path": "/spec/template/metadata/annotations", "value": {"r": "1"}}]),
    ],
    ids=["strategic", "merge", "json"],
)  # fmt: skip
def test_patch_types_bump_generation_on_spec_change(shop, content_type, patch):
    path = f"{DEPLOYMENTS}/web?fieldManager=kubectl-rollout"
    response = request(shop, "PATCH", path, patch, content_type=content_type)
    assert response.status == 200
    body = response.json()
    assert body["spec"]["template"]["metadata"]["annotations"] == {"r": "1"}
    assert body["metadata"]["generation"] == 2


def test_metadata_only_patch_keeps_generation(shop):
    patch = {"metadata": {"labels": {"extra": "yes"}}}
    body = request(shop, "PATCH", f"{DEPLOYMENTS}/web", patch, content_type=SMP).json()
    assert body["metadata"]["labels"]["extra"] == "yes"
    assert body["metadata"]["generation"] == 1


def test_unknown_patch_type_is_415(shop):
    response = request(
        shop, "PATCH", f"{DEPLOYMENTS}/web", {"spec": {}}, content_type="application/json"
    )
    assert response.status == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def test_patch_with_stale_resource_version_conflicts(shop):
    patch = {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 4}}
    response = request(shop, "PATCH", f"{DEPLOYMENTS}/web", patch, content_type=SMP)
    assert response.status == 409
    assert response.json()["reason"] == "Conflict"


def test_status_subresource_changes_only_status(shop):
    patch = {"status": {"observedGeneration": 1, "replicas": 2}, "spec": {"replicas": 9}}
    body = request(shop, "PATCH", f"{DEPLOYMENTS}/web/status", patch,
                   content_type="application/merge-patch+json").json()  # fmt: skip
    assert body["status"] == {"observedGeneration": 1, "replicas": 2}
    assert body["spec"]["replicas"] == 2 and body["metadata"]["generation"] == 1


def test_scale_subresource(shop):
    scale = request(shop, "GET", f"{DEPLOYMENTS}/web/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=web"
    patched = request(shop, "PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 5}},
                      content_type="application/merge-patch+json").json()  # fmt: skip
    assert patched["spec"]["replicas"] == 5
    deployment = shop.get("deployments", "shop", "web")
    assert deployment["spec"]["replicas"] == 5 and deployment["metadata"]["generation"] == 2


def test_delete_cascades_to_owned_objects(shop):
    owner = shop.get("deployments", "shop", "web")
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
           "uid": owner["metadata"]["uid"], "controller": True}  # fmt: skip
    rs = shop.store.create("replicasets", {"metadata": {"name": "web-1", "namespace": "shop",
                                                        "ownerReferences": [ref]}})  # fmt: skip
    rs_ref = {**ref, "kind": "ReplicaSet", "name": "web-1", "uid": rs["metadata"]["uid"]}
    shop.store.create("pods", {"metadata": {"name": "web-1-a", "namespace": "shop",
                                            "ownerReferences": [rs_ref]}})  # fmt: skip
    response = request(shop, "DELETE", f"{DEPLOYMENTS}/web")
    assert response.status == 200 and response.json()["status"] == "Success"
    assert shop.list("replicasets", "shop") == [] and shop.list("pods", "shop") == []


def test_delete_with_a_uid_precondition_deletes_only_that_very_object(shop):
    shop.store.create("pods", {"metadata": {"name": "db-0", "namespace": "shop"}})
    uid = shop.get("pods", "shop", "db-0")["metadata"]["uid"]
    pods = "/api/v1/namespaces/shop/pods"
    stale = {"preconditions": {"uid": "uid-of-a-pod-long-gone"}}
    refused = request(shop, "DELETE", f"{pods}/db-0", stale)
    assert refused.status == 409
    body = refused.json()
    assert body["reason"] == "Conflict"
    assert "Precondition failed: UID in precondition: uid-of-a-pod-long-gone" in body["message"]
    assert shop.get("pods", "shop", "db-0") is not None
    deleted = request(shop, "DELETE", f"{pods}/db-0", {"preconditions": {"uid": uid}})
    assert deleted.status == 200
    assert shop.get("pods", "shop", "db-0") is None


# ---------------------------------------------------------------------- auth


def test_unknown_token_is_401(shop):
    response = request(shop, "GET", DEPLOYMENTS, token="nonsense")
    assert response.status == 401
    assert response.json()["reason"] == "Unauthorized"


def test_forbidden_uses_the_api_server_wording(shop):
    shop.add_user(
        "dev", "dev-token", [rule(["get", "list", "watch"], "deployments", "apps", "shop")]
    )
    assert request(shop, "GET", DEPLOYMENTS, token="dev").status == 200
    patch = request(shop, "PATCH", f"{DEPLOYMENTS}/web", {}, token="dev", content_type=SMP)
    assert patch.status == 403
    assert patch.json()["message"] == (
        'deployments.apps "web" is forbidden: User "dev" cannot patch resource "deployments" '
        'in API group "apps" in the namespace "shop"'
    )
    cluster_wide = request(shop, "GET", "/apis/apps/v1/deployments", token="dev").json()
    assert cluster_wide["message"] == (
        'deployments.apps is forbidden: User "dev" cannot list resource "deployments" in API '
        'group "apps" at the cluster scope'
    )


def test_subresources_need_their_own_rule(shop):
    shop.add_user(
        "dev", "dev-token", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    )
    shop.store.create("pods", {"metadata": {"name": "p", "namespace": "shop"},
                               "spec": {"containers": [{"name": "app"}]}})  # fmt: skip
    assert request(shop, "GET", "/api/v1/namespaces/shop/pods/p", token="dev").status == 200
    log = request(shop, "GET", "/api/v1/namespaces/shop/pods/p/log", token="dev")
    assert log.status == 403
    assert 'cannot get resource "pods/log" in API group ""' in log.json()["message"]


@pytest.mark.parametrize(("verb", "allowed"), [("get", True), ("patch", False)])
def test_self_subject_access_review_follows_the_rules(shop, verb, allowed):
    shop.add_user("dev", "dev-token", [rule(["get"], "deployments", "apps", "shop")])
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": "shop", "verb": verb, "group": "apps",
                                              "resource": "deployments"}}}  # fmt: skip
    response = request(shop, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                       review, token="dev")  # fmt: skip
    assert response.status == 201
    assert response.json()["status"]["allowed"] is allowed


# ---------------------------------------------------------------------- pod logs


def test_pod_log_is_plain_text_and_missing_pod_is_404(shop):
    shop.store.create("pods", {"metadata": {"name": "p", "namespace": "shop"},
                               "spec": {"containers": [{"name": "app"}]}})  # fmt: skip
    response = request(shop, "GET", "/api/v1/namespaces/shop/pods/p/log?container=app&tailLines=5")
    assert response.status == 200 and response.headers["Content-Type"] == "text/plain"
    assert request(shop, "GET", "/api/v1/namespaces/shop/pods/q/log").status == 404


# ---------------------------------------------------------------------- watch


def _watch(cluster: SimCluster, query: str, path: str = DEPLOYMENTS) -> Response:
    return request(cluster, "GET", f"{path}?watch=true&{query}")


def test_watch_without_resource_version_sends_current_objects_then_changes(shop):
    stream = _watch(shop, "timeoutSeconds=30").events()
    first = next(stream)
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "web")
    assert first["object"]["kind"] == "Deployment"
    shop.patch("deployments", "shop", "web", {"spec": {"replicas": 3}})
    second = next(stream)
    assert second["type"] == "MODIFIED" and second["object"]["spec"]["replicas"] == 3


def test_watch_from_resource_version_replays_history(shop):
    start = shop.get("deployments", "shop", "web")["metadata"]["resourceVersion"]
    shop.patch("deployments", "shop", "web", {"spec": {"replicas": 3}})
    shop.delete("deployments", "shop", "web")
    events = _watch(shop, f"resourceVersion={start}&timeoutSeconds=1").events()
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]


def test_watch_timeout_ends_the_stream_cleanly(shop):
    response = _watch(shop, "timeoutSeconds=1")
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert [e["type"] for e in response.events()] == ["ADDED"]


def test_watch_field_selector_on_name(shop):
    shop.create(
        "deployments", {**deployment_body("api"), "metadata": {"name": "api", "namespace": "shop"}}
    )
    events = list(_watch(shop, "fieldSelector=metadata.name%3Dapi&timeoutSeconds=1").events())
    assert [e["object"]["metadata"]["name"] for e in events] == ["api"]


def test_watch_label_selector_turns_leaving_into_deleted(shop):
    stream = _watch(shop, "labelSelector=tier%3Dfront&timeoutSeconds=30").events()
    assert next(stream)["type"] == "ADDED"
    shop.patch("deployments", "shop", "web", {"metadata": {"labels": {"tier": "back"}}})
    assert next(stream)["type"] == "DELETED"
    shop.patch("deployments", "shop", "web", {"metadata": {"labels": {"tier": "front"}}})
    assert next(stream)["type"] == "ADDED"


def test_streaming_list_ends_initial_events_with_annotated_bookmark(shop):
    query = ("sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
             "&fieldSelector=metadata.name%3Dweb&timeoutSeconds=30")  # fmt: skip
    stream = _watch(shop, query).events()
    added, bookmark = next(stream), next(stream)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["object"]["metadata"]["resourceVersion"] == str(shop.store.resource_version)


def test_streaming_list_is_422_when_watch_list_is_disabled(shop):
    shop.faults.watch_list_disabled = True
    query = "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    response = _watch(shop, query)
    assert response.status == 422
    assert "sendInitialEvents" in response.json()["message"]


def test_periodic_bookmarks_carry_the_latest_resource_version(shop):
    stream = _watch(shop, "allowWatchBookmarks=true&timeoutSeconds=30").events()
    assert next(stream)["type"] == "ADDED"
    shop.create_configmap("shop", "unrelated")
    bookmark = next(e for e in stream if e["type"] == "BOOKMARK")
    assert bookmark["object"]["metadata"]["resourceVersion"] == str(shop.store.resource_version)


def test_expired_resource_version_is_an_error_event_with_410(shop):
    shop.patch("deployments", "shop", "web", {"spec": {"replicas": 3}})
    shop.faults.expire_history()
    events = list(_watch(shop, "resourceVersion=1&timeoutSeconds=5").events())
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")


def test_expired_resource_version_as_http_410(shop):
    shop.faults.expire_history()
    shop.faults.expired_watch_as_http = True
    shop.patch("deployments", "shop", "web", {"spec": {"replicas": 3}})
    response = _watch(shop, "resourceVersion=1")
    assert response.status == 410 and response.json()["reason"] == "Expired"


def test_close_watches_ends_open_streams(shop):
    response = _watch(shop, "timeoutSeconds=60")
    stream = response.events()
    assert next(stream)["type"] == "ADDED"
    shop.faults.close_watches()
    assert list(stream) == []


def test_close_watches_after_n_events(shop):
    stream = _watch(shop, "timeoutSeconds=60").events()
    assert next(stream)["type"] == "ADDED"
    shop.faults.close_watches(after_events=2)
    for replicas in (3, 4, 5):
        shop.patch("deployments", "shop", "web", {"spec": {"replicas": replicas}})
    assert [e["object"]["spec"]["replicas"] for e in stream] == [3, 4]


# ---------------------------------------------------------------------- faults


def test_fail_next_429_with_retry_after(shop):
    shop.faults.fail_next(2, method="GET", path=r"/deployments$", status=429, retry_after=3)
    first = request(shop, "GET", DEPLOYMENTS)
    assert first.status == 429 and first.headers["Retry-After"] == "3"
    assert first.json()["reason"] == "TooManyRequests"
    assert request(shop, "GET", f"{DEPLOYMENTS}/web").status == 200, "path did not match"
    assert request(shop, "GET", DEPLOYMENTS).status == 429
    assert request(shop, "GET", DEPLOYMENTS).status == 200, "only the next two fail"


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable")]
)
def test_fail_next_server_errors(shop, status, reason):
    before = shop.store.resource_version
    shop.faults.fail_next(1, method="PATCH", status=status)
    response = request(shop, "PATCH", f"{DEPLOYMENTS}/web", {"spec": {"replicas": 7}},
                       content_type=SMP)  # fmt: skip
    assert response.status == status and response.json()["reason"] == reason
    assert shop.store.resource_version == before, "the store was never reached"


def test_fail_next_can_target_watches_by_query(shop):
    shop.faults.fail_next(1, path=r"watch=true", status=500)
    assert request(shop, "GET", DEPLOYMENTS).status == 200
    assert _watch(shop, "timeoutSeconds=1").status == 500


def test_latency_delays_requests(shop):
    shop.faults.set_latency(0.3)
    started = time.monotonic()
    assert request(shop, "GET", DEPLOYMENTS).status == 200
    assert time.monotonic() - started >= 0.3


def test_restart_keeps_state_and_port_and_drops_watches(shop):
    port, url = shop.port, shop.url
    stream = _watch(shop, "timeoutSeconds=60").events()
    assert next(stream)["type"] == "ADDED"
    shop.restart()
    try:
        rest = list(stream)
    except (http.client.IncompleteRead, ConnectionError, ssl.SSLError, ValueError):
        rest = []
    assert rest == [], "the open watch ended with the old server"
    assert (shop.port, shop.url) == (port, url)
    assert request(shop, "GET", f"{DEPLOYMENTS}/web").status == 200


# ---------------------------------------------------------------------- request log, kubeconfig


def test_request_log_records_what_was_sent(shop):
    shop.clear_requests()
    patch = {"spec": {"template": {"metadata": {"annotations": {"r": "1"}}}}}
    request(
        shop, "PATCH", f"{DEPLOYMENTS}/web?fieldManager=kubectl-rollout", patch, content_type=SMP
    )
    (record,) = shop.requests
    assert (record.method, record.path, record.query) == (
        "PATCH", f"{DEPLOYMENTS}/web", {"fieldManager": "kubectl-rollout"})  # fmt: skip
    assert record.content_type == SMP and record.json == patch
    assert record.user == "admin" and record.status == 200
    assert record.headers["authorization"] == "Bearer <redacted>"


def test_kubeconfig_carries_ca_data_token_and_context(cluster):
    config = yaml.safe_load(open(cluster.kubeconfig).read())
    assert config["current-context"] == "sim"
    (context,) = config["contexts"]
    assert context["context"]["namespace"] == "default"
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    assert ca == cluster.ca_pem
    assert config["users"][0]["user"]["token"] == cluster.token_of("admin")


def test_python_client_over_https_with_a_restricted_user(shop):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    shop.add_user("dev", "dev-token", [rule(["get", "list"], "deployments", "apps", "shop")])
    path = shop.write_kubeconfig(user="dev", namespace="shop")
    apps = client.AppsV1Api(config.new_client_from_config(path))
    assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 2
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 1}})
    assert info.value.status == 403


def test_client_certificates_authenticate_their_cn_with_that_user_s_rules(shop):
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    shop.add_user("dev", "dev-token", [rule(["get"], "deployments", "apps", "shop")])
    for user in ("dev", "stranger"):
        cert, key = shop.client_certificate(user, groups=("team-a",))
        path = shop.write_kubeconfig(user="dev")
        conf = yaml.safe_load(open(path))
        conf["users"][0]["user"] = {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        }
        with open(path, "w") as handle:
            yaml.safe_dump(conf, handle)
        apps = client.AppsV1Api(config.new_client_from_config(path))
        if user == "dev":
            assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 2
        else:
            with pytest.raises(ApiException) as info:
                apps.read_namespaced_deployment("web", "shop")
            assert info.value.status == 403 and 'User \\"stranger\\"' in info.value.body
    assert [r.user for r in shop.requests[-2:]] == ["dev", "stranger"]


def test_plain_http_cluster(make_cluster):
    from kubernetes import client, config

    plain = make_cluster(tls=False, simulation_factory=None)
    assert plain.url.startswith("http://")
    core = client.CoreV1Api(config.new_client_from_config(plain.kubeconfig))
    assert "default" in [ns.metadata.name for ns in core.list_namespace().items]


def test_plain_http_to_the_tls_port_gets_go_s_400(cluster):
    conn = http.client.HTTPConnection(cluster.host, cluster.port, timeout=30)
    conn.request("GET", "/version")
    answer = conn.getresponse()
    assert answer.status == 400
    assert answer.read() == b"Client sent an HTTP request to an HTTPS server.\n"


def test_dev_cluster_seed_labels_the_sample_for_the_plugin(cluster):
    from tests.cluster.__main__ import seed

    seed(cluster)
    (deployment,) = cluster.list(
        "deployments", label_selector="restart-backend/repo=acme-shop,restart-backend/branch=main"
    )
    assert deployment["metadata"]["name"] == "backend"
    assert deployment["metadata"]["annotations"] == {
        "restart-backend/repo": "acme/shop",
        "restart-backend/branch": "main",
    }
    assert deployment["spec"]["replicas"] == 3
    assert cluster.get("services", "shop", "backend") is not None
    assert cluster.get("ingresses", "shop", "backend") is not None


def test_a_client_that_refuses_the_certificate_is_recorded_as_a_dropped_connection(cluster):
    """The server's side of a failed handshake is kept (shown when a test fails), a clue
    the client's "certificate verify failed" alone does not give."""
    strict = ssl.create_default_context()  # the public roots: not our cluster's CA
    connection = http.client.HTTPSConnection("127.0.0.1", cluster.port, context=strict,
                                             timeout=10)  # fmt: skip
    with pytest.raises(ssl.SSLError):
        connection.request("GET", "/version")
    connection.close()
    # The server's thread records it once the client has given up.
    (dropped,) = cluster.wait_for(lambda: cluster.dropped_connections, 10)
    assert "SSL" in dropped and "from port" in dropped
