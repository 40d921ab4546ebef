"""A simulated cluster without HTTP, for the controllers' own tests.

A store, a manual clock, a Simulation over them and the API semantics (defaulting,
validation, generation, graceful deletion), so a test creates and patches a workload as a
client would and steps simulated time from timer to timer.
"""

from __future__ import annotations

from typing import Any, Callable

from tests.cluster.apiserver import Api
from tests.cluster.auth import Authorizer
from tests.cluster.resources import by_plural
from tests.cluster.rollout_status import rollout_complete
from tests.cluster.simulation import ManualClock, SimConfig, Simulation, run_until
from tests.cluster.store import Store

NS = "shop"
RESTARTED = "kubectl.kubernetes.io/restartedAt"


class WorkloadWorld:
    """One kind of workload (`resource`) in namespace `shop`, named `name` unless told."""

    resource = ""
    kind = ""
    name = ""
    image = "registry.example.com/acme/app:1.0.0"

    def __init__(self, config: SimConfig | None = None) -> None:
        self.clock = ManualClock()
        self.store = Store(clock=self.clock)
        self.sim = Simulation(self.store, config or SimConfig(), clock=self.clock)
        self.api = Api(self.store, Authorizer(), delete_pod=self.sim.delete_pod)
        self.store.create("namespaces", {"metadata": {"name": NS}})

    def create(self, name: str | None = None, pod_spec: dict | None = None, **spec: Any) -> dict:
        """Create the workload through the API: labels and selector `app: <name>`, one
        container, `spec` fields as given."""
        name = name or self.name
        template_spec = {"containers": [{"name": "app", "image": self.image}], **(pod_spec or {})}
        body = {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": template_spec},
                **spec,
            },
        }
        return self.api.create(by_plural(self.resource), NS, body)

    def patch(self, patch: dict, name: str | None = None) -> dict:
        return self.api.patch(by_plural(self.resource), NS, name or self.name, patch, "strategic")

    def restart(self, stamp: str = "2027-01-01T00:00:00Z", name: str | None = None) -> dict:
        """What `kubectl rollout restart` sends."""
        annotations = {RESTARTED: stamp}
        return self.patch({"spec": {"template": {"metadata": {"annotations": annotations}}}}, name)

    def get(self, name: str | None = None) -> dict:
        return self.store.get(self.resource, NS, name or self.name)

    def revisions(self) -> dict[str, dict]:
        return {r["metadata"]["name"]: r for r in self.store.list("controllerrevisions", NS)}

    def run(self, predicate: Callable[[], Any] | None = None, limit: float = 60.0) -> bool:
        return run_until(self.sim, self.clock, predicate, limit=limit)

    def settle(self, name: str | None = None) -> dict:
        """Run until kubectl would call the rollout complete, then let old Pods go."""
        assert self.run(lambda: rollout_complete(self.get(name))), self.get(name)["status"]
        self.run(limit=2.0)
        return self.get(name)

    def events(self, reason: str | None = None) -> list[str]:
        """Messages of the Events on workloads of this kind, oldest first."""
        return [
            e["message"]
            for e in self.store.list("events", NS)
            if e["involvedObject"]["kind"] == self.kind and reason in (None, e["reason"])
        ]


def is_ready(pod: dict) -> bool:
    """The Pod's Ready condition is True."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
