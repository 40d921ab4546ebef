"""The baseline of benchmark 3: the 5-second poll loop the product spec describes.

Find the linked Deployment, patch the restart annotation, then every 5 s GET the Deployment
and LIST its pods until kubectl's completion rule holds and every pod is ready (at most 24
polls). Run as a subprocess by api_cost.py so its requests show in the simulated cluster's
request log like anyone else's. Prints the number of polls on stdout.

Usage: poll_loop.py KUBECONFIG LABEL_SELECTOR [INTERVAL]
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def complete(deployment: dict, pods: list[dict]) -> bool:
    """kubectl's rule for the observed generation, and every listed pod ready."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    updated = status.get("updatedReplicas", 0)
    rule = (
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and updated >= spec.get("replicas", 1)
        and status.get("replicas", 0) <= updated
        and status.get("availableReplicas", 0) >= updated
    )
    ready = all(
        any(c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or [])
        for p in pods
    )  # fmt: skip
    return rule and ready


def main(kubeconfig: str, selector: str, interval: float = 5.0) -> int:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)

    def body(response) -> dict:
        return json.loads(response.data)

    found = body(apps.list_deployment_for_all_namespaces(
        label_selector=selector, _preload_content=False))["items"]  # fmt: skip
    meta = found[0]["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    apps.patch_namespaced_deployment(name, namespace, patch, _preload_content=False)
    pod_selector = ",".join(
        f"{k}={v}" for k, v in found[0]["spec"]["selector"]["matchLabels"].items()
    )
    for poll in range(1, 25):
        deployment = body(apps.read_namespaced_deployment(name, namespace,
                                                          _preload_content=False))  # fmt: skip
        pods = body(core.list_namespaced_pod(namespace, label_selector=pod_selector,
                                             _preload_content=False))["items"]  # fmt: skip
        if complete(deployment, pods):
            print(poll)
            return 0
        time.sleep(interval)
    print(24)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], *(float(a) for a in sys.argv[3:4])))
