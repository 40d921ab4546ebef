"""Run the official control plane in the foreground: `python -m tests.controlplane` (or
`scripts/dev-cluster --real`).

etcd, kube-apiserver and kube-controller-manager (built once by tests/controlplane/build.py)
plus the fake kubelet, seeded like the simulated dev cluster: namespace `shop`, Deployment
`backend` (3 replicas) labelled for repo `acme/shop`, branch `main`, a Service and an Ingress.
Prints `export KUBECONFIG=...`; Ctrl-C stops every process.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from . import build
from .cluster import RealCluster
from .launcher import ControlPlane, ControlPlaneError


def seed(cluster: RealCluster) -> None:
    """The sample the README's demo uses, as on the simulated dev cluster."""
    cluster.link("shop", "backend", wait_ready=False)
    cluster.create_service(
        "shop",
        "backend",
        {"app": "backend"},
        ports=[{"name": "http", "port": 80, "targetPort": 8080}],
    )
    backend = {"service": {"name": "backend", "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    cluster.create_ingress(
        "shop",
        "backend",
        rules=[{"host": "shop.example.com", "http": {"paths": [path]}}],
        tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev-cluster --real", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where state, certificates and logs go")
    parser.add_argument("--no-seed", action="store_true", help="start empty")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        metavar="X",
        help="kubelet seconds (back-offs of 10 s doubling to 5 min, slow warm-ups) times X "
        "(default: the simulation's 0.02; 1 for a real kubelet's pace)",
    )
    args = parser.parse_args(argv)
    try:
        for name in build.CONTROL_PLANE:
            build.ensure_built(name, log=lambda message: print(message, file=sys.stderr))
    except build.BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="real-cluster-"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim = {} if args.time_scale is None else {"time_scale": args.time_scale}
    plane = ControlPlane(workdir, sim=sim)
    try:
        plane.start()
        if not args.no_seed:
            seed(RealCluster(plane, "", workdir))
        print(
            f"Official control plane (Kubernetes {build.KUBERNETES_VERSION}) serving at "
            f"{plane.server}; logs in {workdir / 'logs'} (Ctrl-C to stop)",
            file=sys.stderr,
        )
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        while not stop.wait(0.5):
            if not plane.running():
                print("error: a control-plane process exited; see the logs", file=sys.stderr)
                return 1
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        plane.stop()
        print("Control plane stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
