"""Start and stop the official control plane on loopback: etcd, kube-apiserver,
kube-controller-manager and our fake kubelet, each a process of its own, stopped by PID.

The flags follow what kwok's `kwokctl` (binary runtime) and controller-runtime's envtest use:
one CA for everything, client certificates for identities, `--advertise-address=127.0.0.1`
(mandatory on a machine without a default route), `--authorization-mode=Node,RBAC`, no
endpoint reconciler, etcd without fsync. The admission chain is the default one, ServiceAccount
admission included, so Pods wait for their namespace's `default` ServiceAccount exactly as on a
real cluster (`ControlPlane.create_namespace` waits for it).

State (addresses, PIDs, certificates) is written to `<workdir>/state.json`, so another process
can attach to a running control plane (`ControlPlane.attach`) and stop it by PID.

`audit_groups` turns on the API server's audit log for requests of users in those groups (the
identity a test gives the plugin), so a test can read the server's own record of what was sent
to it (`audit_events`): every request, not only the ones that changed an object.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tests.cluster.kubeconfig import write_kubeconfig_file

from . import build
from .pki import Authority
from .rest import Rest, RestError

__all__ = ["ControlPlane", "ControlPlaneError", "State", "CONTROLLERS", "audit_policy"]

ROOT = Path(__file__).resolve().parents[2]
SERVICE_CIDR = "10.0.0.0/24"
# What the real tier needs: Deployments roll out (deployment, replicaset), StatefulSets and
# DaemonSets come next, owners are collected, namespaces cleaned up, default ServiceAccounts and
# the kube-root-ca.crt ConfigMap made (Pods need them), quotas counted (ReplicaFailure), Pods of
# vanished nodes collected, and the Nodes' `not-ready` taint (set at registration) lifted once
# they are Ready, as on any cluster (DaemonSet Pods do not tolerate it).
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "resourcequota-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
)
# The fake kubelet's timing (tests.cluster.simulation.SimConfig): the simulated cluster's
# defaults, kubelet back-offs scaled from 10 s..300 s to 0.2 s..6 s, except that a failed pull
# shows as ErrImagePull for a second (not 50 ms) before ImagePullBackOff, as a kubelet shows
# it until its next sync: a plugin reading pods over a busy API server still sees that state.
# The differential tests run the simulated side with the same settings.
DEFAULT_SIM: dict[str, Any] = {"pull_error_delay": 1.0}


class ControlPlaneError(RuntimeError):
    """A component did not start or answer; the message quotes its log."""


@dataclass
class State:
    workdir: str
    server: str = ""
    ca_file: str = ""
    admin_cert: str = ""
    admin_key: str = ""
    admin_kubeconfig: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    etcd_url: str = ""
    audit_log: str = ""  # the API server's audit log, when audit_groups were given

    def save(self) -> None:
        Path(self.workdir, "state.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, workdir: Path) -> State:
        return cls(**json.loads((workdir / "state.json").read_text()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kubeconfig_for(
    server: str,
    ca_pem: bytes,
    cert: Path,
    key: Path,
    *,
    user: str,
    context: str = "real",
    namespace: str | None = None,
) -> dict:
    """A one-context kubeconfig with an embedded client certificate."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    ctx: dict[str, Any] = {"cluster": context, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(cert.read_bytes()),
                    "client-key-data": b64(key.read_bytes()),
                },
            }
        ],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }


def audit_policy(groups: Sequence[str]) -> dict:
    """An audit Policy recording each finished request of a user in `groups` once (metadata:
    who, verb, URI, object, response code), and nothing of anyone else (the controllers and
    the fake kubelet would fill the log)."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "userGroups": list(groups)}, {"level": "None"}],
    }


class ControlPlane:
    """One control plane in `workdir`. `start()` brings it up; `stop()` ends its processes."""

    def __init__(
        self,
        workdir: Path,
        *,
        sim: dict | None = None,
        log=None,
        audit_groups: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.sim = {**DEFAULT_SIM, **(sim or {})}
        self.audit_groups = tuple(audit_groups)
        self._log = log or (lambda message: print(message, file=sys.stderr))
        self.state = State(str(self.workdir))
        self._rest: Rest | None = None
        self._authority_cache: Authority | None = None

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def attach(cls, workdir: Path) -> ControlPlane:
        """A handle on a control plane another process started in `workdir`."""
        plane = cls(workdir)
        plane.state = State.load(Path(workdir))
        config = Path(workdir) / "fake-kubelet.json"
        if config.exists():
            plane.sim = json.loads(config.read_text()).get("sim") or plane.sim
        return plane

    def start(self) -> ControlPlane:
        kubernetes = build.find_binaries("kubernetes")
        etcd = build.find_binaries("etcd")
        if kubernetes is None or etcd is None:
            raise ControlPlaneError(
                "the control-plane binaries are not built: run `python -m tests.controlplane.build`"
                " (the first build takes ~10 minutes on two cores)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        try:
            pki = self._pki()
            self._start_etcd(etcd / "etcd")
            self._start_apiserver(kubernetes / "kube-apiserver", pki)
            self._start_controller_manager(kubernetes / "kube-controller-manager", pki)
            self._start_fake_kubelet(pki)
            self._wait_for_default_service_account("default")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM every process at once, SIGKILL what is left after `grace` seconds: the
        state is thrown away, and kube-apiserver would otherwise wait for open watches (as
        measured, only the controller-manager ends within seconds of SIGTERM)."""
        _terminate(list(self.state.pids.values()), grace)
        self.state.pids.clear()
        if Path(self.state.workdir, "state.json").exists():
            self.state.save()
        if self._rest is not None:
            self._rest.close()

    def running(self) -> bool:
        return bool(self.state.pids) and all(_alive(pid) for pid in self.state.pids.values())

    # ----------------------------------------------------------------- clients

    @property
    def server(self) -> str:
        return self.state.server

    @property
    def kubeconfig(self) -> str:
        return self.state.admin_kubeconfig

    @property
    def rest(self) -> Rest:
        """The admin's REST client (system:masters)."""
        if self._rest is None:
            self._rest = Rest(
                self.state.server,
                ca_file=self.state.ca_file,
                cert_file=self.state.admin_cert,
                key_file=self.state.admin_key,
            )
        return self._rest

    def user_kubeconfig(
        self,
        user: str,
        *,
        groups: Sequence[str] = (),
        namespace: str | None = None,
        path: Path | None = None,
    ) -> Path:
        """A kubeconfig file authenticating as `user` (client certificate, CN=user, O=groups)."""
        config = self.user_config(user, groups=groups, namespace=namespace)
        target = path or self.workdir / "kubeconfigs" / f"{_stem(user)}-{time.monotonic_ns()}"
        return write_kubeconfig_file(target, config)

    def user_config(
        self,
        user: str,
        *,
        groups: Sequence[str] = (),
        namespace: str | None = None,
        context: str = "real",
        entry: str | None = None,
    ) -> dict:
        """The kubeconfig (a dict) of `user_kubeconfig`: context `context`, its cluster entry
        named the same, the user entry named `entry` (default: `user`), so that the configs of
        several control planes can be merged into one."""
        authority = self._authority()
        pair = authority.issue(_stem(user), user, groups=groups)
        return kubeconfig_for(
            self.state.server,
            authority.ca_pem,
            pair.cert,
            pair.key,
            user=entry or user,
            context=context,
            namespace=namespace,
        )

    def audit_events(self, user: str | None = None) -> list[dict]:
        """The audit log's events (audit.k8s.io/v1 Event), of `user` only when given: one per
        finished request (a watch also has one when its response started)."""
        if not self.state.audit_log:
            raise ControlPlaneError("this control plane was started without audit_groups")
        path = Path(self.state.audit_log)
        lines = path.read_text().splitlines() if path.exists() else []
        events = [json.loads(line) for line in lines if line.strip()]
        return [e for e in events if user is None or e["user"]["username"] == user]

    # ----------------------------------------------------------------- components

    def _pki(self) -> dict:
        authority = Authority(self.workdir / "pki")
        self._authority_cache = authority
        pki = {
            "authority": authority,
            "apiserver": authority.issue(
                "apiserver",
                "kube-apiserver",
                client=False,
                hosts=(
                    "127.0.0.1",
                    "localhost",
                    "10.0.0.1",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ),
            ),
            "kubelet-client": authority.issue(
                "apiserver-kubelet-client", "kube-apiserver-kubelet-client"
            ),
            "admin": authority.issue("admin", "kubernetes-admin", groups=("system:masters",)),
            # The controller-manager and the fake kubelet act for many controllers and nodes.
            "kcm": authority.issue(
                "kube-controller-manager",
                "system:kube-controller-manager",
                groups=("system:masters",),
            ),
            "fake-kubelet": authority.issue(
                "fake-kubelet", "fake-kubelet", groups=("system:masters",)
            ),
            "kubelet-serving": authority.issue(
                "kubelet-serving", "fake-kubelet", client=False, hosts=("127.0.0.1", "localhost")
            ),
            "service-accounts": authority.signing_key("sa"),
        }
        self.state.ca_file = str(authority.ca_file)
        self.state.admin_cert = str(pki["admin"].cert)
        self.state.admin_key = str(pki["admin"].key)
        return pki

    def _authority(self) -> Authority:
        cached = self._authority_cache
        if cached is None:
            cached = Authority(Path(self.state.workdir) / "pki")
            self._authority_cache = cached
        return cached

    def _start_etcd(self, binary: Path) -> None:
        client, peer = _free_port(), _free_port()
        url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                str(binary),
                "--name",
                "n0",
                "--data-dir",
                str(self.workdir / "etcd"),
                "--listen-client-urls",
                url,
                "--advertise-client-urls",
                url,
                "--listen-peer-urls",
                peer_url,
                "--initial-advertise-peer-urls",
                peer_url,
                "--initial-cluster",
                f"n0={peer_url}",
                "--initial-cluster-state",
                "new",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
                "--quota-backend-bytes",
                str(2 << 30),
            ],
        )
        self.state.etcd_url = url
        self._wait("etcd", lambda: _http_ok(f"{url}/health"), 60)

    def _start_apiserver(self, binary: Path, pki: dict) -> None:
        port = _free_port()
        self.state.server = f"https://127.0.0.1:{port}"
        ca = str(pki["authority"].ca_file)
        self._spawn(
            "kube-apiserver",
            [
                str(binary),
                "--advertise-address=127.0.0.1",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--etcd-servers={self.state.etcd_url}",
                f"--tls-cert-file={pki['apiserver'].cert}",
                f"--tls-private-key-file={pki['apiserver'].key}",
                f"--client-ca-file={ca}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki['service-accounts'].cert}",
                f"--service-account-signing-key-file={pki['service-accounts'].key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--endpoint-reconciler-type=none",
                f"--kubelet-client-certificate={pki['kubelet-client'].cert}",
                f"--kubelet-client-key={pki['kubelet-client'].key}",
                f"--kubelet-certificate-authority={ca}",
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
                "--shutdown-delay-duration=0s",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                *self._audit_flags(),
            ],
        )
        admin = write_kubeconfig_file(
            self.workdir / "admin.kubeconfig",
            kubeconfig_for(
                self.state.server,
                pki["authority"].ca_pem,
                pki["admin"].cert,
                pki["admin"].key,
                user="kubernetes-admin",
                namespace="default",
            ),
        )
        self.state.admin_kubeconfig = str(admin)
        self.state.save()
        self._wait("kube-apiserver", self._readyz, 120)

    def _audit_flags(self) -> list[str]:
        if not self.audit_groups:
            return []
        policy = self.workdir / "audit-policy.json"
        policy.write_text(json.dumps(audit_policy(self.audit_groups), indent=2))
        self.state.audit_log = str(self.workdir / "logs" / "audit.log")
        # Blocking: each event is written while its request is handled, not in a batch
        # flushed later; a test reads the log after the plugin has exited.
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.state.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        ]

    def _start_controller_manager(self, binary: Path, pki: dict) -> None:
        kubeconfig = write_kubeconfig_file(
            self.workdir / "kcm.kubeconfig",
            kubeconfig_for(
                self.state.server,
                pki["authority"].ca_pem,
                pki["kcm"].cert,
                pki["kcm"].key,
                user="system:kube-controller-manager",
            ),
        )
        self._spawn(
            "kube-controller-manager",
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--root-ca-file={pki['authority'].ca_file}",
                f"--service-account-private-key-file={pki['service-accounts'].key}",
                "--use-service-account-credentials=false",
            ],
        )

    def _start_fake_kubelet(self, pki: dict) -> None:
        config = {
            "server": self.state.server,
            "ca": str(pki["authority"].ca_file),
            "cert": str(pki["fake-kubelet"].cert),
            "key": str(pki["fake-kubelet"].key),
            "serving": {
                "cert": str(pki["kubelet-serving"].cert),
                "key": str(pki["kubelet-serving"].key),
            },
            "sim": self.sim,
        }
        path = self.workdir / "fake-kubelet.json"
        path.write_text(json.dumps(config, indent=2))
        self._spawn(
            "fake-kubelet",
            [sys.executable, "-m", "tests.controlplane.fake_kubelet", str(path)],
            cwd=ROOT,
        )
        nodes = self.sim.get("nodes") or ("sim-node-1", "sim-node-2", "sim-node-3")

        def nodes_ready() -> bool:
            listed = self.rest.get("/api/v1/nodes").get("items") or []
            return {n["metadata"]["name"] for n in listed} >= set(nodes)

        self._wait("fake-kubelet", nodes_ready, 60)

    def _wait_for_default_service_account(self, namespace: str) -> None:
        self._wait("kube-controller-manager", lambda: self.service_account_exists(namespace), 60)

    def service_account_exists(self, namespace: str) -> bool:
        try:
            self.rest.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
            return True
        except RestError as error:
            if error.status == 404:
                return False
            raise

    # ----------------------------------------------------------------- processes

    def _spawn(self, name: str, args: list[str], cwd: Path | None = None) -> None:
        log = (self.workdir / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd or self.workdir,
            start_new_session=True,
        )
        log.close()
        self.state.pids[name] = process.pid
        self.state.save()

    def _wait(self, name: str, ready, timeout: float) -> None:
        """Poll `ready()` until it holds; fail early, with the log, if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.state.pids.get(name)
            if pid and not _alive(pid):
                raise ControlPlaneError(f"{name} exited at start-up:\n{self.log_tail(name)}")
            try:
                if ready():
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(0.2)
        raise ControlPlaneError(f"{name} not ready after {timeout:.0f} s:\n{self.log_tail(name)}")

    def _readyz(self) -> bool:
        return self.rest.request("GET", "/readyz", raw=True).strip() == "ok"

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = Path(self.state.workdir) / "logs" / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stem(user: str) -> str:
    """The file name of a user's certificate and kubeconfig."""
    return "user-" + "".join(c if c.isalnum() else "-" for c in user)


def _alive(pid: int) -> bool:
    """Is `pid` running? A process another process started (a control plane shared by
    pytest-xdist workers) stays a zombie until its parent reaps it: that counts as ended."""
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:  # not our child
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _terminate(pids: list[int], grace: float = 3.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    while any(_alive(pid) for pid in pids):
        time.sleep(0.05)


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our loopback etcd
        return response.status == 200
