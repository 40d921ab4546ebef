"""The simulated scheduler and kubelet: pod status, events and logs for every behaviour.

Pods are created through a Deployment in a Store driven with a manual clock; a subscriber
records each status the kubelet writes, so the tests see the whole sequence, not only the end.
"""

from __future__ import annotations

import pytest

from tests.cluster.behaviours import (
    ANNOTATION,
    ANNOTATION_PREFIX,
    Behaviour,
    behaviour_from_annotations,
    image_pull_fails,
)
from tests.cluster.kubelet import (
    LogError,
    container_config_error,
    format_backoff,
    normalize_image,
)
from tests.cluster.simulation import ManualClock, SimConfig, Simulation, run_until
from tests.cluster.store import Store

NS = "shop"
IMAGE = "registry.example.com/acme/web:1.0.0"


class World:
    """A store, manual clock and simulation running one Deployment's pods."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.clock = ManualClock()
        self.store = Store(clock=self.clock)
        self.sim = Simulation(self.store, config or SimConfig(), clock=self.clock)
        self.store.create("namespaces", {"metadata": {"name": NS}})
        self.statuses: list[dict] = []  # every pod status written, in order
        self.times: list[float] = []  # when each of them was written (the manual clock)
        self.store.subscribe(self._on_change)

    def _on_change(self, event) -> None:
        if event.resource == "pods" and event.type != "DELETED":
            status = event.obj.get("status") or {}
            if not self.statuses or self.statuses[-1] != status:
                self.statuses.append(status)
                self.times.append(self.clock.now)

    def first_time(self, predicate) -> float:
        """When the first status satisfying `predicate` was written."""
        return next(t for s, t in zip(self.statuses, self.times) if predicate(s))

    def ready(self) -> bool:
        return bool(self.statuses) and condition(self.pod(), "Ready").get("status") == "True"

    def deploy(self, *, containers=None, init_containers=None, annotations=None,
               behaviour: Behaviour | None = None, replicas: int = 1) -> None:  # fmt: skip
        if behaviour is not None:
            self.sim.set_behaviour(NS, "web", behaviour)
        spec: dict = {"containers": containers or [{"name": "app", "image": IMAGE}]}
        if init_containers:
            spec["initContainers"] = init_containers
        template_meta: dict = {"labels": {"app": "web"}}
        if annotations:
            template_meta["annotations"] = annotations
        self.store.create(
            "deployments",
            {
                "metadata": {"name": "web", "namespace": NS},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": template_meta, "spec": spec},
                },
            },
        )

    def pod(self) -> dict:
        (pod,) = self.store.list("pods", NS)
        return pod

    def run(self, predicate=None, limit: float = 30.0) -> bool:
        return run_until(self.sim, self.clock, predicate, limit=limit)

    def events(self, reason: str | None = None) -> list[dict]:
        events = [e for e in self.store.list("events", NS) if e["involvedObject"]["kind"] == "Pod"]
        events.sort(key=lambda e: e["metadata"]["name"].rsplit(".", 1)[1].rjust(20, "0"))
        return [e for e in events if reason is None or e["reason"] == reason]

    def log(self, **kwargs) -> str:
        return self.sim.read_log(NS, self.pod()["metadata"]["name"], **kwargs)


def state_of(status: dict, index: int = 0, key: str = "containerStatuses") -> tuple:
    """(phase, state kind, reason, restartCount, ready) of one container in a status."""
    container = (status.get(key) or [{}])[index]
    state = container.get("state") or {}
    kind = next(iter(state), None)
    reason = (state.get(kind) or {}).get("reason") if kind else None
    return status.get("phase"), kind, reason, container.get("restartCount"), container.get("ready")


def condition(pod: dict, kind: str) -> dict:
    """The pod's condition of that type ({} when there is none yet)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


@pytest.fixture
def world() -> World:
    return World()


# ----------------------------------------------------------------------------- pure rules


def _lookup(objects: dict):
    return lambda resource, name: objects.get((resource, name))


_SECRET = {("secrets", "db"): {"data": {"password": "cw=="}}}
_CONFIG = {("configmaps", "cfg"): {"data": {"mode": "prod"}}}


@pytest.mark.parametrize(
    ("container", "objects", "expected"),
    [
        ({"env": [{"name": "A", "value": "1"}]}, {}, None),
        (
            {
                "env": [
                    {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
                ]
            },
            {},
            ('secret "db" not found', "secrets", "db"),
        ),
        (
            {
                "env": [
                    {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
                ]
            },
            _SECRET,
            None,
        ),
        (
            {"env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}}]},
            _SECRET,
            ("couldn't find key user in Secret shop/db", "secrets", "db"),
        ),
        (
            {"env": [{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x"}}}]},
            _CONFIG,
            ("couldn't find key x in ConfigMap shop/cfg", "configmaps", "cfg"),
        ),
        (
            {"envFrom": [{"configMapRef": {"name": "cfg"}}]},
            {},
            ('configmap "cfg" not found', "configmaps", "cfg"),
        ),
        ({"envFrom": [{"secretRef": {"name": "db", "optional": True}}]}, {}, None),
        (
            {
                "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "cfg"}}],
            },
            {},
            ('configmap "cfg" not found', "configmaps", "cfg"),  # envFrom is read first
        ),
        (
            {
                "env": [
                    {
                        "name": "P",
                        "valueFrom": {"secretKeyRef": {"name": "db", "key": "k", "optional": True}},
                    }
                ]
            },
            _SECRET,
            None,
        ),  # fmt: skip
    ],
)
def test_config_errors_are_decided_from_the_referenced_objects(container, objects, expected):
    assert container_config_error(container, NS, _lookup(objects)) == expected


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, None),
        ({ANNOTATION: "crashloop"}, Behaviour.crash_loop()),
        (
            {
                ANNOTATION: "crashloop",
                ANNOTATION_PREFIX + "exit-code": "3",
                ANNOTATION_PREFIX + "crash-log": "boom\nFATAL: no config",
                ANNOTATION_PREFIX + "container": "migrate",
            },
            Behaviour.crash_loop(
                exit_code=3, log_lines=("boom", "FATAL: no config"), container="migrate"
            ),
        ),  # fmt: skip
        ({ANNOTATION: "oomkilled"}, Behaviour.oom_killed()),
        ({ANNOTATION: "neverready"}, Behaviour.never_ready()),
        ({ANNOTATION: "unschedulable"}, Behaviour.unschedulable()),
        ({ANNOTATION: "imagepullbackoff"}, Behaviour.image_pull_backoff()),
        (
            {
                ANNOTATION: "broken",
                ANNOTATION_PREFIX + "http-status": "503",
                ANNOTATION_PREFIX + "http-body": "database unreachable",
                ANNOTATION_PREFIX + "answer-delay": "2",
            },
            Behaviour.broken(status=503, body="database unreachable", answer_delay=2.0),
        ),
        (
            {ANNOTATION: "crashafterready", ANNOTATION_PREFIX + "crash-after": "5"},
            Behaviour.crash_after_ready(after=5.0),
        ),
        (
            {ANNOTATION: "healthy", ANNOTATION_PREFIX + "ready-delay": "2"},
            Behaviour.healthy(ready_delay=2.0),
        ),  # fmt: skip
    ],
)
def test_behaviour_annotations_select_a_behaviour(annotations, expected):
    assert behaviour_from_annotations(annotations) == expected


def test_unknown_behaviour_annotation_is_an_error():
    with pytest.raises(ValueError, match="unknown behaviour 'crashlop'"):
        behaviour_from_annotations({ANNOTATION: "crashlop"})


@pytest.mark.parametrize(
    ("image", "fails"),
    [
        ("nginx:doesnotexist", True),
        ("registry.example.com:5000/acme/web:doesnotexist", True),
        ("registry.example.com:5000/acme/web:1.0", False),
        ("doesnotexist/web:1.0", False),
        ("nginx", False),
    ],
)
def test_images_tagged_doesnotexist_never_pull(image, fails):
    assert image_pull_fails(image) is fails


@pytest.mark.parametrize(
    ("image", "normalized"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("acme/web:1", "docker.io/acme/web:1"),
        ("registry.example.com/acme/web:1.0.0", "registry.example.com/acme/web:1.0.0"),
        ("localhost:5000/web", "localhost:5000/web:latest"),
    ],
)
def test_images_are_reported_fully_qualified(image, normalized):
    assert normalize_image(image) == normalized


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (20, "20s"), (40, "40s"), (80, "1m20s"), (300, "5m0s")]
)
def test_backoff_is_printed_as_go_durations(seconds, text):
    assert format_backoff(seconds) == text


# ----------------------------------------------------------------------------- healthy


def test_healthy_pod_goes_pending_creating_running_ready(world):
    world.deploy()
    assert world.run(lambda: world.store.list("pods", NS)
                     and condition(world.pod(), "Ready").get("status") == "True")  # fmt: skip
    sequence = [state_of(s) for s in world.statuses]
    assert sequence == [
        ("Pending", None, None, None, None),
        ("Pending", "waiting", "ContainerCreating", 0, False),  # bound to a node
        ("Pending", "waiting", "ContainerCreating", 0, False),  # sandbox ready: a pod IP
        ("Running", "running", None, 0, False),
        ("Running", "running", None, 0, True),
    ]
    assert "podIP" not in world.statuses[1] and "podIP" in world.statuses[2]
    assert (
        condition({"status": world.statuses[1]}, "PodReadyToStartContainers")["status"] == "False"
    )
    pod = world.pod()
    status = pod["status"]
    assert pod["spec"]["nodeName"] in ("sim-node-1", "sim-node-2", "sim-node-3")
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert all(c["status"] == "True" for c in status["conditions"])
    (container,) = status["containerStatuses"]
    assert container["started"] is True and container["ready"] is True
    assert container["restartCount"] == 0 and container["lastState"] == {}
    assert set(container["state"]["running"]) == {"startedAt"}
    assert container["containerID"].startswith("containerd://")
    assert container["imageID"].startswith("registry.example.com/acme/web@sha256:")
    assert status["podIP"].startswith("10.244.") and status["hostIP"]
    assert status["qosClass"] == "BestEffort"
    name = pod["metadata"]["name"]
    assert [(e["reason"], e["message"]) for e in world.events()] == [
        ("Scheduled", f"Successfully assigned {NS}/{name} to {pod['spec']['nodeName']}"),
        ("Pulling", f'Pulling image "{IMAGE}"'),
        ("Pulled", f'Successfully pulled image "{IMAGE}" in 50ms (50ms including waiting). '
                   f"Image size: {world.events('Pulled')[0]['message'].split('size: ')[1]}"),
        ("Created", "Created container: app"),
        ("Started", "Started container app"),
    ]  # fmt: skip
    started = world.events("Started")[0]
    assert started["involvedObject"]["fieldPath"] == "spec.containers{app}"
    assert started["source"] == {"component": "kubelet", "host": pod["spec"]["nodeName"]}
    assert world.events("Scheduled")[0]["source"] == {"component": "default-scheduler"}
    assert world.log() == f"Starting app in pod {name}\nListening on :8080\n"
    assert world.log(tail_lines=1) == "Listening on :8080\n"


def test_a_pod_on_a_node_that_has_the_image_does_not_pull_it(world):
    world.deploy(replicas=3)  # one pod per node, each pulls
    world.run(limit=3)
    deployment = world.store.get("deployments", NS, "web")
    deployment["spec"]["replicas"] = 4
    world.store.update("deployments", deployment)
    world.run(limit=3)
    messages = [e["message"] for e in world.events("Pulled")]
    assert sum("already present on machine" in m for m in messages) == 1
    assert sum(m.startswith("Successfully pulled image") for m in messages) == 3


def test_logs_of_a_missing_pod_container_or_previous_instance_are_refused(world):
    world.deploy(containers=[{"name": "app", "image": IMAGE}, {"name": "proxy", "image": IMAGE}])
    world.run(limit=2)
    name = world.pod()["metadata"]["name"]
    cases = [
        (dict(pod="nope"), 404, 'pods "nope" not found'),
        (dict(), 400, f"a container name must be specified for pod {name}, "
                      "choose one of: [app proxy]"),
        (dict(container="db"), 400, f"container db is not valid for pod {name}"),
        (dict(container="app", previous=True), 400,
         f'previous terminated container "app" in pod "{name}" not found'),
    ]  # fmt: skip
    for kwargs, code, message in cases:
        with pytest.raises(LogError) as caught:
            world.sim.read_log(NS, kwargs.pop("pod", name), **kwargs)
        assert (caught.value.code, str(caught.value)) == (code, message)
        assert isinstance(caught.value, LookupError)
    assert world.sim.read_log(NS, name, container="proxy").endswith("Listening on :8080\n")


def test_graceful_deletion_shows_terminating_then_removes_the_pod(world):
    world.deploy()
    world.run(limit=2)
    name = world.pod()["metadata"]["name"]
    assert world.sim.delete_pod(NS, name)
    world.sim.step()
    pod = world.store.get("pods", NS, name)
    assert pod["metadata"]["deletionTimestamp"] and pod["metadata"]["deletionGracePeriodSeconds"]
    assert world.events("Killing")[0]["message"] == "Stopping container app"
    assert world.run(lambda: world.store.get("pods", NS, name) is None, limit=5)


# ----------------------------------------------------------------------------- crashing


def test_crash_loop_backs_off_with_rising_restart_count(world):
    world.deploy(behaviour=Behaviour.crash_loop(exit_code=3))
    world.run(lambda: state_of(world.pod()["status"])[1:4] == ("waiting", "CrashLoopBackOff", 3))
    sequence = [state_of(s) for s in world.statuses]
    assert sequence[sequence.index(("Running", "running", None, 0, False)) + 1 :] == [
        ("Running", "terminated", "Error", 0, False),  # first exit: restarted at once
        ("Running", "running", None, 1, False),
        ("Running", "waiting", "CrashLoopBackOff", 1, False),
        ("Running", "running", None, 2, False),
        ("Running", "waiting", "CrashLoopBackOff", 2, False),
        ("Running", "running", None, 3, False),
        ("Running", "waiting", "CrashLoopBackOff", 3, False),
    ]
    pod = world.pod()
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    container = pod["status"]["containerStatuses"][0]
    assert container["state"]["waiting"]["message"] == (
        f"back-off 40s restarting failed container=app pod={name}_{NS}({uid})"
    )
    backoffs = [s["containerStatuses"][0]["state"]["waiting"]["message"].split()[1]
                for s in world.statuses if state_of(s)[2] == "CrashLoopBackOff"]  # fmt: skip
    assert backoffs == ["10s", "20s", "40s"]
    last = container["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("Error", 3)
    assert container["started"] is False
    assert condition(pod, "Ready")["reason"] == "ContainersNotReady"
    (backoff,) = world.events("BackOff")
    assert backoff["type"] == "Warning" and backoff["count"] == 3
    assert (
        backoff["message"] == f"Back-off restarting failed container app in pod {name}_{NS}({uid})"
    )
    assert world.events("Started")[0]["count"] == 4
    crash_line = "FATAL: cannot connect to database at db:5432: connection refused\n"
    assert world.log(previous=True).endswith(crash_line)
    assert world.log().endswith(crash_line)  # in back-off, the log is the last instance's


def test_crash_loop_log_lines_come_from_the_behaviour(world):
    world.deploy(behaviour=Behaviour.crash_loop(log_lines=("boot", "panic: no config")))
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[3] == 1)
    assert world.log(previous=True) == "boot\npanic: no config\n"
    with_stamps = world.log(previous=True, timestamps=True).splitlines()
    assert with_stamps[1].endswith("Z panic: no config") and with_stamps[1][:4].isdigit()


def test_oom_killed_container_terminates_with_137(world):
    world.deploy(annotations={ANNOTATION: "oomkilled"})
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[2] == "CrashLoopBackOff")
    last = world.pod()["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)
    assert ("Running", "terminated", "OOMKilled", 0, False) in [state_of(s) for s in world.statuses]


def test_crashing_init_container_keeps_the_pod_initializing(world):
    world.deploy(
        init_containers=[{"name": "migrate", "image": IMAGE}],
        behaviour=Behaviour.crash_loop(container="migrate"),
    )
    world.run(
        lambda: (
            state_of(world.pod()["status"], key="initContainerStatuses")[2] == "CrashLoopBackOff"
        )
    )
    pod = world.pod()
    status = pod["status"]
    assert status["phase"] == "Pending"
    assert condition(pod, "Initialized")["status"] == "False"
    assert (
        condition(pod, "Initialized")["message"] == "containers with incomplete status: [migrate]"
    )
    assert state_of(status)[1:3] == ("waiting", "PodInitializing")
    init = status["initContainerStatuses"][0]
    assert init["restartCount"] == 1 and init["lastState"]["terminated"]["reason"] == "Error"
    assert (
        world.events("BackOff")[0]["involvedObject"]["fieldPath"] == "spec.initContainers{migrate}"
    )
    assert "FATAL" in world.sim.read_log(NS, pod["metadata"]["name"], container="migrate")


def test_healthy_init_container_completes_before_the_app_starts(world):
    world.deploy(init_containers=[{"name": "migrate", "image": IMAGE}])
    assert world.run(
        lambda: world.statuses and condition(world.pod(), "Ready").get("status") == "True"
    )
    init = world.pod()["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert init["state"]["terminated"]["exitCode"] == 0 and init["ready"] is True
    initializing = [s for s in world.statuses if state_of(s)[2] == "PodInitializing"]
    assert initializing and all(s["phase"] == "Pending" for s in initializing)


# ----------------------------------------------------------------------------- not starting


def test_image_that_does_not_exist_goes_err_image_pull_then_backoff(world):
    image = "registry.example.com/acme/web:doesnotexist"
    world.deploy(containers=[{"name": "app", "image": image}])
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[2] == "ImagePullBackOff")
    reasons = [state_of(s)[2] for s in world.statuses]
    assert reasons.index("ErrImagePull") < reasons.index("ImagePullBackOff")
    pod = world.pod()
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    error = (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
        f'failed to resolve reference "{image}": {image}: not found'
    )
    assert waiting == {
        "reason": "ImagePullBackOff",
        "message": f'Back-off pulling image "{image}": ErrImagePull: {error}',
    }
    assert pod["status"]["phase"] == "Pending"
    assert [(e["type"], e["reason"], e["message"]) for e in world.events()][1:] == [
        ("Normal", "Pulling", f'Pulling image "{image}"'),
        ("Warning", "Failed", f'Failed to pull image "{image}": {error}'),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
        ("Warning", "Failed", "Error: ImagePullBackOff"),
    ]
    err_status = next(s for s in world.statuses if state_of(s)[2] == "ErrImagePull")
    assert err_status["containerStatuses"][0]["state"]["waiting"]["message"] == error
    name = pod["metadata"]["name"]
    with pytest.raises(LogError, match="is waiting to start: trying and failing to pull image"):
        world.log()
    world.run(limit=2)
    assert world.events("Pulling")[0]["count"] > 1  # it keeps trying
    assert name == world.pod()["metadata"]["name"]


def test_image_pull_backoff_behaviour_fails_an_existing_image(world):
    world.deploy(behaviour=Behaviour.image_pull_backoff())
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[2] == "ImagePullBackOff")
    assert world.events("Failed")


def test_missing_secret_is_create_container_config_error_until_it_exists(world):
    env = [{"name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}}}]  # fmt: skip
    world.deploy(containers=[{"name": "app", "image": IMAGE, "env": env}])
    world.run(lambda: world.statuses
              and state_of(world.pod()["status"])[2] == "CreateContainerConfigError")  # fmt: skip
    pod = world.pod()
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {
        "reason": "CreateContainerConfigError",
        "message": 'secret "shop-db" not found',
    }
    assert pod["status"]["phase"] == "Pending"
    (failed,) = world.events("Failed")
    assert (failed["type"], failed["message"]) == ("Warning", 'Error: secret "shop-db" not found')
    with pytest.raises(LogError, match="is waiting to start: CreateContainerConfigError"):
        world.log()

    world.store.create("secrets", {"metadata": {"name": "shop-db", "namespace": NS},
                                   "data": {"password": "aHVudGVyMg=="}})  # fmt: skip
    assert world.run(lambda: condition(world.pod(), "Ready").get("status") == "True", limit=5)


def test_missing_key_is_reported_with_the_secret_namespace_and_name(world):
    world.store.create("secrets", {"metadata": {"name": "shop-db", "namespace": NS},
                                   "data": {"user": "c2hvcA=="}})  # fmt: skip
    env = [{"name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}}}]  # fmt: skip
    world.deploy(containers=[{"name": "app", "image": IMAGE, "env": env}])
    world.run(lambda: world.statuses
              and state_of(world.pod()["status"])[2] == "CreateContainerConfigError")  # fmt: skip
    waiting = world.pod()["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["message"] == f"couldn't find key password in Secret {NS}/shop-db"


def test_readiness_that_never_passes_leaves_the_pod_running_unready(world):
    world.deploy(behaviour=Behaviour.never_ready())
    world.run(limit=2)
    pod = world.pod()
    assert state_of(pod["status"]) == ("Running", "running", None, 0, False)
    assert pod["status"]["containerStatuses"][0]["started"] is True
    assert condition(pod, "Ready")["message"] == "containers with unready status: [app]"
    (unhealthy,) = world.events("Unhealthy")
    assert unhealthy["type"] == "Warning" and unhealthy["count"] > 3
    assert unhealthy["message"] == "Readiness probe failed: HTTP probe failed with statuscode: 503"


def test_unschedulable_pod_stays_pending_with_failed_scheduling(world):
    world.deploy(behaviour=Behaviour.unschedulable())
    world.run(limit=2)
    pod = world.pod()
    assert "nodeName" not in pod["spec"]
    assert pod["status"]["phase"] == "Pending"
    scheduled = condition(pod, "PodScheduled")
    assert (scheduled["status"], scheduled["reason"], scheduled["message"]) == (
        "False", "Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.")  # fmt: skip
    (event,) = world.events("FailedScheduling")
    assert (event["type"], event["message"]) == ("Warning", scheduled["message"])
    assert event["source"] == {"component": "default-scheduler"}
    with pytest.raises(LogError, match="does not have a host assigned"):
        world.log()


def test_invalid_behaviour_annotation_is_reported_and_the_pod_runs_healthy(world):
    world.deploy(annotations={ANNOTATION: "crashlop"})
    assert world.run(
        lambda: world.statuses and condition(world.pod(), "Ready").get("status") == "True"
    )
    (event,) = world.events("InvalidSimBehaviour")
    assert "unknown behaviour 'crashlop'" in event["message"]


def test_repeated_events_are_counted_and_old_ones_evicted():
    from tests.cluster.events import EventRecorder

    clock = ManualClock()
    store = Store(clock=clock)
    recorder = EventRecorder(store, clock, max_events=2)
    pod = {"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": "p", "namespace": NS, "uid": "u1"}}  # fmt: skip
    recorder.record(pod, "Warning", "BackOff", "again", component="kubelet", host="n1")
    clock.advance(5)
    recorder.record(pod, "Warning", "BackOff", "again", component="kubelet", host="n1")
    (event,) = store.list("events", NS)
    assert event["count"] == 2
    assert event["lastTimestamp"] > event["firstTimestamp"]
    assert event["metadata"]["name"].startswith("p.")
    assert event["involvedObject"] == {"kind": "Pod", "namespace": NS, "name": "p", "uid": "u1",
                                       "apiVersion": "v1"}  # fmt: skip
    recorder.record(pod, "Normal", "Pulled", "one", component="kubelet")
    recorder.record(pod, "Normal", "Started", "two", component="kubelet")
    assert sorted(e["reason"] for e in store.list("events", NS)) == ["Pulled", "Started"]


# ----------------------------------------------------------------------------- healing
#
# Real clusters are full of trouble that clears up by itself; each kind of trouble can stop
# after a while, with the kubelet's real schedule (time_scale 1 here: kubelet seconds are
# simulated seconds, so the assertions read in the kubelet's own numbers).

REAL_TIME = SimConfig(time_scale=1.0)


def crashes(statuses: list[dict]) -> list[int]:
    """The index of every status where the container has just stopped (a crash)."""
    found, previous = [], None
    for index, status in enumerate(statuses):
        kind = state_of(status)[1:3]
        down = kind in (("terminated", "Error"), ("waiting", "CrashLoopBackOff"))
        if down and previous not in (("terminated", "Error"), ("waiting", "CrashLoopBackOff")):
            found.append(index)
        previous = kind
    return found


def test_restart_schedule_is_the_kubelets_immediate_then_10s_doubling():
    world = World(REAL_TIME)
    world.deploy(behaviour=Behaviour.crash_loop())
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[3] == 4, limit=200)
    starts = [
        world.times[i]
        for i, status in enumerate(world.statuses)
        if state_of(status)[1] == "running"
        and (i == 0 or state_of(world.statuses[i - 1])[1] != "running")
    ]
    exits = [world.times[i] for i in crashes(world.statuses)]
    # restart delay after each crash: the first at once, then 10 s, 20 s, 40 s from the exit
    waits = [round(start - exit_, 2) for exit_, start in zip(exits, starts[1:])]
    assert waits == [0.02, 10.0, 20.0, 40.0]


@pytest.mark.parametrize("failures", [1, 2, 3])
def test_crash_loop_with_failures_crashes_that_often_then_becomes_ready(failures):
    world = World()
    world.deploy(behaviour=Behaviour.crash_loop(failures=failures, exit_code=3))
    assert world.run(world.ready, limit=60)
    container = world.pod()["status"]["containerStatuses"][0]
    assert container["restartCount"] == failures
    assert container["lastState"]["terminated"]["exitCode"] == 3
    assert len(crashes(world.statuses)) == failures
    assert world.log().endswith("Listening on :8080\n")  # the healthy instance's log


def test_oom_killed_with_failures_heals_after_them():
    world = World()
    world.deploy(annotations={ANNOTATION: "oomkilled", ANNOTATION_PREFIX + "failures": "2"})
    assert world.run(world.ready, limit=60)
    container = world.pod()["status"]["containerStatuses"][0]
    assert container["restartCount"] == 2
    assert container["lastState"]["terminated"]["reason"] == "OOMKilled"


def test_crashing_init_container_with_failures_completes_then_the_app_runs():
    world = World()
    world.deploy(
        init_containers=[{"name": "migrate", "image": IMAGE}],
        behaviour=Behaviour.crash_loop(container="migrate", failures=2),
    )
    assert world.run(world.ready, limit=60)
    init = world.pod()["status"]["initContainerStatuses"][0]
    assert init["restartCount"] == 2 and init["state"]["terminated"]["reason"] == "Completed"


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("not_found", ": not found"),
        ("unauthorized", "pull access denied"),
        ("unavailable", "503 Service Unavailable"),
        ("rate_limited", "429 Too Many Requests"),
        ("timeout", "i/o timeout"),
    ],
)
def test_failed_pulls_carry_the_registrys_answer_into_status_and_events(answer, words):
    world = World()
    world.deploy(behaviour=Behaviour.image_pull_backoff(pull_error=answer))
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[2] == "ImagePullBackOff")
    waiting = world.pod()["status"]["containerStatuses"][0]["state"]["waiting"]
    ref = f"{IMAGE}"
    assert waiting["message"].startswith(f'Back-off pulling image "{ref}": ErrImagePull: rpc error')
    assert words in waiting["message"]
    assert any(words in e["message"] for e in world.events("Failed"))


def test_pull_schedule_is_the_kubelets_image_backoff_10s_doubling():
    world = World(REAL_TIME)
    world.deploy(behaviour=Behaviour.image_pull_backoff(pull_error="unavailable"))
    world.run(lambda: len(world.events("Pulling")) and world.events("Pulling")[0]["count"] >= 4,
              limit=200)  # fmt: skip
    pulls = [
        world.times[i]
        for i, status in enumerate(world.statuses)
        if state_of(status)[2] == "ErrImagePull"
        and (i == 0 or state_of(world.statuses[i - 1])[2] != "ErrImagePull")
    ]
    gaps = [round(b - a, 2) for a, b in zip(pulls, pulls[1:])]
    assert gaps == [10.0, 20.0, 40.0]


@pytest.mark.parametrize("failures", [1, 2])
def test_pulls_that_fail_a_few_times_then_succeed_start_the_container(failures):
    world = World()
    world.deploy(
        behaviour=Behaviour.image_pull_backoff(pull_error="unavailable", failures=failures)
    )
    assert world.run(world.ready, limit=60)
    (failed_pull,) = [e for e in world.events("Failed") if "503" in e["message"]]
    assert failed_pull["count"] == failures
    assert world.events("Pulled")
    container = world.pod()["status"]["containerStatuses"][0]
    assert container["restartCount"] == 0 and container["ready"] is True


def test_readiness_failing_for_a_while_then_passing():
    world = World(REAL_TIME)
    world.deploy(behaviour=Behaviour.never_ready(unready_for=20))
    assert world.run(world.ready, limit=60)
    started = world.first_time(lambda s: state_of(s)[1] == "running")
    ready = world.first_time(lambda s: state_of(s)[4] is True)
    assert ready - started == pytest.approx(20.0)
    assert world.events("Unhealthy")[0]["count"] >= 2


def test_a_secret_created_late_heals_create_container_config_error():
    world = World()
    env = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]
    world.sim.create_when_needed(
        "secrets",
        {"metadata": {"name": "shop-db", "namespace": NS}, "data": {"url": "cG9zdGdyZXM="}},
        after=3.0,
    )
    world.deploy(containers=[{"name": "app", "image": IMAGE, "env": env}])
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[2]
              == "CreateContainerConfigError")  # fmt: skip
    missing = world.clock.now
    assert world.store.get("secrets", NS, "shop-db") is None
    assert world.run(lambda: world.store.get("secrets", NS, "shop-db") is not None, limit=10)
    assert world.clock.now - missing == pytest.approx(3.0)
    assert world.run(world.ready, limit=5)


def test_mixed_behaviours_are_handed_out_in_pod_creation_order():
    world = World()
    world.sim.set_behaviours(
        NS, "web", [Behaviour.healthy(), Behaviour.crash_loop(failures=1), Behaviour.crash_loop()]
    )
    world.deploy(replicas=4)
    world.run(limit=5)
    restarts = sorted(
        p["status"]["containerStatuses"][0]["restartCount"] for p in world.store.list("pods", NS)
    )
    assert restarts[:2] == [0, 1] and restarts[2] > 1 and restarts[3] > 1


# -- serving: what a running container answers the API server's proxy -----------------------


def _answer(world: World, port: int = 8080):
    return world.sim.answer_http(NS, world.pod()["metadata"]["name"], port)


def test_a_healthy_container_answers_200_ok_once_running(world):
    world.deploy()
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[1] == "running")
    assert (_answer(world).status, _answer(world).body, _answer(world).delay) == (200, "ok\n", 0.0)


def test_nothing_answers_before_the_container_runs(world):
    world.deploy(behaviour=Behaviour.image_pull_backoff())
    world.run(limit=1)
    assert _answer(world) is None


@pytest.mark.parametrize(
    ("behaviour", "answers"),
    [
        (Behaviour.broken(), [(500, "500 Internal Server Error: the backend is broken\n")] * 3),
        (Behaviour.broken(status=503, body="db down"), [(503, "db down")] * 3),
        (Behaviour.broken(status=503, body="db down", failures=2),
         [(503, "db down"), (503, "db down"), (200, "ok\n")]),
    ],
    ids=["500", "503-with-body", "heals-after-2"],
)  # fmt: skip
def test_a_broken_container_is_ready_but_answers_its_error(world, behaviour, answers):
    world.deploy(behaviour=behaviour)
    assert world.run(world.ready)
    assert [(a.status, a.body) for a in (_answer(world) for _ in answers)] == answers


def test_a_slow_container_answers_after_its_delay_in_kubelet_seconds(world):
    world.deploy(behaviour=Behaviour.slow(answer_delay=10))
    assert world.run(world.ready)
    assert _answer(world).delay == pytest.approx(10 * SimConfig().time_scale)


def test_the_container_declaring_the_port_answers():
    world = World()
    containers = [
        {"name": "sidecar", "image": IMAGE, "ports": [{"containerPort": 9090}]},
        {"name": "app", "image": IMAGE, "ports": [{"containerPort": 8080}]},
    ]
    world.deploy(containers=containers, behaviour=Behaviour.broken(container="app"))
    assert world.run(world.ready)
    assert (_answer(world, 9090).status, _answer(world, 8080).status) == (200, 500)


def test_crash_after_ready_passes_readiness_then_exits_after_its_time():
    world = World(REAL_TIME)
    world.deploy(behaviour=Behaviour.crash_after_ready(after=45, exit_code=2))
    world.run(lambda: world.statuses and state_of(world.pod()["status"])[3] == 2, limit=300)
    ready = [t for s, t in zip(world.statuses, world.times) if state_of(s)[4] is True]
    exits = [world.times[i] for i in crashes(world.statuses)]
    assert exits[0] - ready[0] == pytest.approx(45.0)
    terminated = world.pod()["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("Error", 2)
    assert "FATAL: lost the connection to the database" in world.log(previous=True)
    # became ready again after the immediate first restart, and crashed again 45 s later
    assert exits[1] - exits[0] == pytest.approx(0.02 + SimConfig().ready_delay + 45.0)


def test_crash_after_ready_with_failures_stays_up_after_them(world):
    world.deploy(behaviour=Behaviour.crash_after_ready(after=5, failures=1))
    world.run(limit=10)
    container = world.pod()["status"]["containerStatuses"][0]
    assert (container["restartCount"], container["ready"]) == (1, True)
    assert len(crashes(world.statuses)) == 1
