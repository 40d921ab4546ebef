"""Shared pytest configuration: the simulated cluster's fixtures (`cluster`, `make_cluster`)
and the real tier's (`control_plane`, `real_cluster`, `real_checkout`)."""

import signal
import socket
import threading
from dataclasses import dataclass, field

import pytest

pytest_plugins = ["tests.cluster.fixtures", "tests.controlplane.fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    """Let the plugins we start take Ctrl-C as a terminal gives it, even when the tests
    themselves run in the background (``scripts/test &``: a shell without job control
    starts background jobs with SIGINT ignored, that is inherited through exec, and Python
    then never raises KeyboardInterrupt; every Ctrl-C test would wait for nothing). A
    handler of our own is reset to the default at exec."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
