"""`SimCluster`: one simulated cluster (store, API server, simulation thread) and test helpers.

The object tests hold: start/stop/restart it, point clients at `kubeconfig`, create objects
with helpers that go through the same defaulting and validation as API requests (but do not
appear in the request log), steer the simulation (`set_behaviour`), inject faults (`faults`),
and read what clients sent (`requests`).
"""

from __future__ import annotations

import base64
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from . import resources
from .apiserver import Api, ApiError
from .auth import ADMIN_RULES, Authorizer, Rule
from .certs import Certificates, issue_client_certificate, session_certificates
from .faults import Faults
from .kubeconfig import build_kubeconfig, write_kubeconfig_file
from .managed_fields import HARNESS_MANAGER
from .rollout_status import rollout_complete, rollout_settled
from .server import RequestRecord, ServerState, SimHTTPServer, make_ssl_context
from .store import Store, deep_copy
from .workload_factory import WorkloadFactory

__all__ = ["SimCluster", "default_simulation_factory", "rollout_complete"]

SimulationFactory = Callable[[Store, Any], Any]
_GATEWAY_GROUP = "gateway.networking.k8s.io"


def default_simulation_factory(store: Store, config: Any = None) -> Any:
    """The controllers, scheduler and kubelet of simulation.py, stepping in real time."""
    from .simulation import Simulation

    return Simulation(store, config)


class SimCluster(WorkloadFactory):
    """A simulated Kubernetes cluster on 127.0.0.1; see tests/cluster/README.md."""

    def __init__(
        self,
        *,
        tls: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        workdir: str | Path | None = None,
        simulation_factory: SimulationFactory | None = default_simulation_factory,
        sim_config: Any = None,
        history_limit: int = 20_000,
        bookmark_interval: float = 5.0,
        gateway_api: bool = True,
        certificates: Certificates | None = None,
    ) -> None:
        self.tls = tls
        self.host = host
        self._port = port
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sim-cluster-"))
        self.store = Store(history_limit=history_limit)
        self.authorizer = Authorizer()
        self._tokens: dict[str, str] = {}
        self.add_user("admin", secrets.token_hex(16), ADMIN_RULES,
                      groups=("system:masters", "system:authenticated"))  # fmt: skip
        self.faults = Faults(self.store.expire_history, self.store.wake_waiters)
        self.sim = simulation_factory(self.store, sim_config) if simulation_factory else None
        sim = self.sim
        self.api = Api(
            self.store,
            self.authorizer,
            read_log=sim.read_log if sim is not None else None,
            delete_pod=sim.delete_pod if sim is not None else None,
            answer_http=sim.answer_http if sim is not None else None,
        )
        self._state = ServerState(
            self.api,
            self.authorizer,
            self.faults,
            bookmark_interval=bookmark_interval,
            disabled_groups=frozenset()
            if gateway_api
            else frozenset({"gateway.networking.k8s.io"}),
        )
        self._certs = (certificates or session_certificates()) if tls else None
        self._server: SimHTTPServer | None = None
        self._port_keeper: socket.socket | None = None  # while unreachable
        self._server_thread: threading.Thread | None = None
        self._sim_thread: threading.Thread | None = None
        self._sim_stop = threading.Event()
        self._sim_wake = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._kubeconfig_count = 0
        self.sim_errors: list[str] = []
        self.kubeconfig = ""
        for namespace in ("default", "kube-system", "kube-public"):
            self.create_namespace(namespace)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SimCluster:
        """Start serving (and simulating); writes the admin kubeconfig. Returns self."""
        self._start_server()
        if self.sim is not None and self._sim_thread is None:
            self._sim_stop.clear()
            self._unsubscribe = self.store.subscribe(lambda _event: self._sim_wake.set())
            self._sim_thread = threading.Thread(
                target=self._run_simulation, name="sim-cluster-simulation", daemon=True
            )
            self._sim_thread.start()
        self.kubeconfig = self.write_kubeconfig(self.workdir / "kubeconfig")
        return self

    def stop(self) -> None:
        """Stop serving and simulating; removes the work dir if the cluster made it."""
        self._stop_server()
        if self._port_keeper is not None:
            self._port_keeper.close()
            self._port_keeper = None
        if self._sim_thread is not None:
            self._sim_stop.set()
            self._sim_wake.set()
            self._sim_thread.join(timeout=10)
            self._sim_thread = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.sim is not None and hasattr(self.sim, "close"):
            self.sim.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the API server (dropping every connection and watch), stay down for
        `down_seconds`, and serve again on the same port. State and simulation carry on."""
        self._stop_server()
        if down_seconds > 0:
            time.sleep(down_seconds)
        self._start_server()

    def make_unreachable(self) -> None:
        """Stop serving (every connection and watch drops) and keep the port bound but not
        listening, so clients get "connection refused" and no other server can take the port
        meanwhile. State and simulation carry on; `make_reachable` serves again."""
        if self._port_keeper is not None:
            return
        self._stop_server()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        keeper = socket.socket(family, socket.SOCK_STREAM)
        keeper.bind((self.host, self._port))
        self._port_keeper = keeper

    def make_reachable(self) -> None:
        """Serve again on the same port after `make_unreachable`."""
        if self._port_keeper is None:
            return
        self._port_keeper.close()
        self._port_keeper = None
        self._start_server()

    @property
    def reachable(self) -> bool:
        return self._server is not None

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self._port}"

    @property
    def ca_pem(self) -> bytes | None:
        return self._certs.ca_pem if self._certs else None

    @property
    def ca_file(self) -> str | None:
        return str(self._certs.ca_file) if self._certs else None

    # ----------------------------------------------------------------- users, kubeconfigs, log

    def add_user(
        self,
        name: str,
        token: str,
        rules: Iterable[Rule | Mapping[str, Any]],
        groups: Iterable[str] = ("system:authenticated",),
    ) -> None:
        """Let `token` authenticate as `name` with RBAC-like `rules` (see auth.rule)."""
        self.authorizer.add_user(name, token, rules, groups)
        self._tokens[name] = token

    def token_of(self, user: str) -> str:
        return self._tokens[user]

    def write_kubeconfig(
        self,
        path: str | Path | None = None,
        *,
        user: str = "admin",
        namespace: str | None = None,
        context: str = "sim",
        tls: bool = True,
        client_certificate: bool = False,
    ) -> str:
        """Write a kubeconfig for `user` (token auth; `client_certificate=True`: a client
        certificate for `user` in client-certificate-data/client-key-data instead); `tls=False`
        on a TLS cluster writes insecure-skip-tls-verify instead of the CA data. Returns the
        path."""
        if path is None:
            self._kubeconfig_count += 1
            path = self.workdir / f"kubeconfig-{user}-{self._kubeconfig_count}"
        config = build_kubeconfig(
            self.url,
            token=self._tokens[user],
            user=user,
            context=context,
            namespace=namespace or "default",
            ca_pem=self.ca_pem,
            insecure=not tls,
        )
        if client_certificate:
            cert, key = self.client_certificate(user)
            config["users"][0]["user"] = {
                "client-certificate-data": base64.b64encode(cert).decode("ascii"),
                "client-key-data": base64.b64encode(key).decode("ascii"),
            }
        return str(write_kubeconfig_file(Path(path), config))

    def client_certificate(self, user: str, groups: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
        """A client certificate and key (PEM) that authenticate as `user` (its CN)."""
        if self._certs is None:
            raise RuntimeError("a plain HTTP cluster has no client certificates")
        return issue_client_certificate(self._certs, user, groups)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far, oldest first (a copy)."""
        with self._state.requests_lock:
            return list(self._state.requests)

    @property
    def dropped_connections(self) -> list[str]:
        """Connections the server closed before reading a request (TLS handshake failed,
        nothing sent), with when and why: a clue when a client reports a TLS error."""
        return list(self._state.dropped_connections)

    def clear_requests(self) -> None:
        with self._state.requests_lock:
            self._state.requests.clear()

    # ----------------------------------------------------------------- generic objects

    def create(self, resource: str, obj: dict) -> dict:
        """Create through the API semantics (defaults, validation); raises ApiError."""
        rt = resources.resolve(resource)
        namespace = (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        if rt.namespaced and not namespace:
            namespace = "default"
        return self.api.create(rt, namespace, obj, manager=HARNESS_MANAGER)

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        """A copy of the object, or None."""
        return self.store.get(resources.resolve(resource).plural, namespace, name)

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict]:
        return self.store.list(resources.resolve(resource).plural, namespace, label_selector,
                               field_selector)  # fmt: skip

    def patch(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "strategic",
        *,
        field_manager: str | None = None,
    ) -> dict:
        """Patch ("strategic" | "merge" | "json") as the API would; raises ApiError.
        `field_manager`: who to record in managedFields (as kubectl's `fieldManager`)."""
        return self.api.patch(resources.resolve(resource), namespace, name, patch, patch_type,
                              manager=field_manager)  # fmt: skip

    def update_status(self, resource: str, obj: dict) -> dict:
        """Replace an object's status (to stage what a controller would report)."""
        return self.store.update_status(resources.resolve(resource).plural, obj)

    def delete(self, resource: str, namespace: str | None, name: str) -> dict | None:
        """Delete (with dependents, as the garbage collector would); None if it did not exist."""
        try:
            return self.api.delete(resources.resolve(resource), namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    # ----------------------------------------------------------------- typed helpers

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> dict:
        """Create a namespace; an existing one is returned as is."""
        existing = self.store.get("namespaces", None, name)
        if existing is not None:
            return existing
        return self.create("namespaces", {"metadata": {"name": name, "labels": dict(labels or {})}})

    @property
    def can_wait_for_rollouts(self) -> bool:
        return self.sim is not None

    def set_behaviour(self, namespace: str, workload: str, behaviour: Any) -> None:
        """Pods created from now on for the workload follow `behaviour` (behaviours.py);
        `workload` is a Deployment's name or KIND/NAME ("statefulset/db", "ds/agent")."""
        if self.sim is None:
            raise RuntimeError("this cluster runs without a simulation")
        self.sim.set_behaviour(namespace, workload, behaviour)

    def set_behaviours(self, namespace: str, workload: str, behaviours: Any) -> None:
        """Pods created from now on take these behaviours in creation order, the last one
        repeating (e.g. two pods that heal, then one that never does)."""
        if self.sim is None:
            raise RuntimeError("this cluster runs without a simulation")
        self.sim.set_behaviours(namespace, workload, behaviours)

    def set_pod_quota(self, namespace: str, limit: int | None) -> None:
        """Allow at most `limit` Pods in the namespace (None: no limit), like a ResourceQuota."""
        if self.sim is None:
            raise RuntimeError("this cluster runs without a simulation")
        self.sim.set_pod_quota(namespace, limit)

    def create_secret(self, namespace: str, name: str, data: Mapping[str, str] | None = None,
                      *, type: str = "Opaque", after: float | None = None) -> dict | None:  # noqa: A002  # fmt: skip
        """A Secret; `data` values are plain text (base64-encoded here, as the API stores them).

        `after`: not now, but that many seconds after the first container that needs it
        found it missing (an operator creating it late); returns None then."""
        self.create_namespace(namespace)
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()}
        obj = {"metadata": {"name": name, "namespace": namespace}, "type": type, "data": encoded}
        return self._create_maybe_later("secrets", obj, after)

    def create_configmap(self, namespace: str, name: str,
                         data: Mapping[str, str] | None = None, *,
                         after: float | None = None) -> dict | None:  # fmt: skip
        """A ConfigMap; `after` as for `create_secret`."""
        self.create_namespace(namespace)
        obj = {"metadata": {"name": name, "namespace": namespace}, "data": dict(data or {})}
        return self._create_maybe_later("configmaps", obj, after)

    def _create_maybe_later(self, resource: str, obj: dict, after: float | None) -> dict | None:
        if after is None:
            return self.create(resource, obj)
        if self.sim is None:
            raise RuntimeError("this cluster runs without a simulation")
        self.sim.create_when_needed(resource, obj, after)
        return None

    def create_service(
        self,
        namespace: str,
        name: str,
        selector: Mapping[str, str],
        *,
        type: str = "ClusterIP",  # noqa: A002 - the field's name
        ports: list[dict] | None = None,
        load_balancer_ingress: list[dict | str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict:
        """A Service; `load_balancer_ingress` ("1.2.3.4", "lb.example.com" or dicts) is
        written to status.loadBalancer.ingress as a cloud controller would."""
        self.create_namespace(namespace)
        ports = deep_copy(ports) or [{"name": "http", "port": 80, "targetPort": 8080}]
        if type in ("NodePort", "LoadBalancer"):
            for index, port in enumerate(ports):
                port.setdefault("nodePort", 30080 + index)
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if annotations:
            metadata["annotations"] = dict(annotations)
        service = self.create("services", {"metadata": metadata, "spec": {
            "type": type, "selector": dict(selector), "ports": ports}})  # fmt: skip
        if load_balancer_ingress:
            service["status"] = {"loadBalancer": {"ingress": _lb_ingress(load_balancer_ingress)}}
            service = self.update_status("services", service)
        return service

    def create_ingress(
        self,
        namespace: str,
        name: str,
        *,
        rules: list[dict],
        tls: list[dict] | None = None,
        ingress_class: str | None = None,
        load_balancer_ingress: list[dict | str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict:
        """An Ingress with `rules` (networking.k8s.io/v1 shape) and optional `tls`."""
        self.create_namespace(namespace)
        spec: dict[str, Any] = {"rules": deep_copy(rules)}
        if tls:
            spec["tls"] = deep_copy(tls)
        if ingress_class:
            spec["ingressClassName"] = ingress_class
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if annotations:
            metadata["annotations"] = dict(annotations)
        ingress = self.create("ingresses", {"metadata": metadata, "spec": spec})
        if load_balancer_ingress:
            ingress["status"] = {"loadBalancer": {"ingress": _lb_ingress(load_balancer_ingress)}}
            ingress = self.update_status("ingresses", ingress)
        return ingress

    # ----------------------------------------------------------------- waiting

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0,
                 message: str = "") -> Any:  # fmt: skip
        """Re-evaluate `predicate` whenever the store changes (and at least every 0.1 s) until
        it returns something truthy, and return that; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.store.resource_version
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(message or f"condition not met within {timeout} s")
            self.store.wait_for_change(seen, min(remaining, 0.1))

    def wait_for_rollout(
        self, namespace: str, name: str, timeout: float = 30.0, *, kind: str = "Deployment"
    ) -> dict:
        """Wait until the workload's rollout is complete by kubectl's rule for its kind
        (rollout_status.py); returns it. `name` may be KIND/NAME ("sts/db"). Under OnDelete,
        where kubectl has no rule, waits until every Pod is ready and available."""
        if "/" in name:
            kind, name = resources.workload_key(name)
        plural = resources.resolve(kind).plural

        def complete() -> dict | None:
            obj = self.get(plural, namespace, name)
            return obj if rollout_settled(obj) else None

        return self.wait_for(
            complete, timeout, f"rollout of {kind} {namespace}/{name} not complete"
        )

    # ----------------------------------------------------------------- internals

    def _start_server(self) -> None:
        context = (
            make_ssl_context(
                str(self._certs.cert_file),
                str(self._certs.key_file),
                str(self._certs.ca_file) if self._certs.ca_key_file else None,
            )
            if self._certs
            else None
        )
        server = SimHTTPServer((self.host, self._port), self._state, context)
        self._port = server.server_address[1]
        self._state.server_address = f"{self.host}:{self._port}"
        self._server = server
        self._server_thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1},
            name="sim-cluster-http", daemon=True,
        )  # fmt: skip
        self._server_thread.start()

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        self.store.wake_waiters()
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout=10)
            self._server_thread = None

    def _run_simulation(self) -> None:
        while not self._sim_stop.is_set():
            self._sim_wake.clear()
            try:
                delay = self.sim.step()
            except Exception:  # report it and keep the cluster serving
                self.sim_errors.append(traceback.format_exc())
                traceback.print_exc(file=sys.stderr)
                delay = None
            self._sim_wake.wait(timeout=delay)


def _lb_ingress(entries: list[dict | str]) -> list[dict]:
    result = []
    for entry in entries:
        if isinstance(entry, dict):
            result.append(dict(entry))
        elif entry.replace(".", "").isdigit() or ":" in entry:
            result.append({"ip": entry})
        else:
            result.append({"hostname": entry})
    return result
