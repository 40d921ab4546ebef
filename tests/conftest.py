"""Shared pytest configuration: the simulated cluster's fixtures (`cluster`, `make_cluster`)
and the real tier's (`control_plane`, `real_cluster`, `real_checkout`)."""

import socket
import threading
from dataclasses import dataclass, field

import pytest

pytest_plugins = ["tests.cluster.fixtures", "tests.controlplane.fixtures"]


@pytest.fixture
def checkout(tmp_path):
    """A real git checkout of acme/shop on branch main (origin on GitHub)."""
    from tests.plugin_runner import make_checkout

    return make_checkout(tmp_path / "shop")


@dataclass
class SilentServer:
    port: int
    accepted: list = field(default_factory=list)  # every connection made to it


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    silent = SilentServer(server.getsockname()[1])
    stop = threading.Event()

    def accept():
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                silent.accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield silent
    stop.set()
    thread.join()
    for conn in silent.accepted:
        conn.close()
    server.close()
