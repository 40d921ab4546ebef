"""Run a simulated cluster in the foreground: `python -m tests.cluster` (or scripts/dev-cluster).

Seeds namespace `shop` with the Deployment `backend` labelled for repo `acme/shop`, branch
`main` (3 replicas, a Service and an Ingress), prints `export KUBECONFIG=...`, and serves until
Ctrl-C. `--bench-deployments N` adds N more Deployments (in namespace `bench`) for benchmarks.
`--clusters staging,prod-eu,prod-us` runs a fleet instead: one cluster per name, each seeded
alike, with its own CA and token, and one kubeconfig with a context per cluster.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .cluster import SimCluster
from .fleet import SimFleet
from .simulation import SimConfig

REPO_LABELS = {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"}
REPO_ANNOTATIONS = {"restart-backend/repo": "acme/shop", "restart-backend/branch": "main"}


def seed(cluster: SimCluster) -> None:
    """The sample the plugin's README and demo use."""
    cluster.create_deployment(
        "shop",
        "backend",
        replicas=3,
        labels={"app": "backend", **REPO_LABELS},
        annotations=REPO_ANNOTATIONS,
        wait_ready=False,
    )
    cluster.create_service("shop", "backend", {"app": "backend"},
                           ports=[{"name": "http", "port": 80, "targetPort": 8080}])  # fmt: skip
    cluster.create_ingress(
        "shop",
        "backend",
        rules=[{"host": "shop.example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "backend", "port": {"number": 80}}}}]}}],
        tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
        load_balancer_ingress=["203.0.113.10"],
    )  # fmt: skip


def seed_bench(cluster: SimCluster, deployments: int, replicas: int) -> None:
    for index in range(deployments):
        cluster.create_deployment("bench", f"app-{index:05d}", replicas=replicas,
                                  wait_ready=False)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dev-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any)")
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    parser.add_argument("--kubeconfig", type=Path, help="where to write the kubeconfig")
    parser.add_argument("--no-seed", action="store_true", help="start empty")
    parser.add_argument("--bench-deployments", type=int, default=0, metavar="N")
    parser.add_argument("--bench-replicas", type=int, default=2, metavar="N")
    parser.add_argument("--quiet-events", action="store_true",
                        help="record no Events (large benchmarks)")  # fmt: skip
    parser.add_argument("--clusters", metavar="NAMES", type=_names,
                        help="a fleet: one cluster per comma-separated name (a context each); "
                             "with --port, ports PORT, PORT+1, ...")  # fmt: skip
    return parser.parse_args(argv)


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one cluster")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = SimConfig(record_events=not args.quiet_events)
    if args.clusters:
        ports = {name: args.port + i for i, name in enumerate(args.clusters)} if args.port else {}
        served: SimCluster | SimFleet = SimFleet(
            args.clusters, ports=ports, tls=not args.http, sim_config=config
        )
    else:
        served = SimCluster(tls=not args.http, port=args.port, sim_config=config)
    served.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.kubeconfig:
            served.kubeconfig = served.write_kubeconfig(args.kubeconfig)
        clusters = list(served) if isinstance(served, SimFleet) else [served]
        for cluster in clusters:
            if not args.no_seed:
                seed(cluster)
            if args.bench_deployments:
                seed_bench(cluster, args.bench_deployments, args.bench_replicas)
        if isinstance(served, SimFleet):
            for name in served.names:
                print(f"Simulated cluster {name} serving at {served[name].url} (context {name})",
                      file=sys.stderr)  # fmt: skip
            print("Ctrl-C stops them all", file=sys.stderr)
        else:
            print(f"Simulated cluster serving at {served.url} (Ctrl-C to stop)", file=sys.stderr)
        print(f"export KUBECONFIG={served.kubeconfig}", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()
        print("Simulated cluster stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
