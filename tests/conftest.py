"""Shared pytest configuration: the simulated cluster's fixtures (`cluster`, `make_cluster`)."""

import pytest

pytest_plugins = ["tests.cluster.fixtures"]


@pytest.fixture
def checkout(tmp_path):
    """A real git checkout of acme/shop on branch main (origin on GitHub)."""
    from tests.plugin_runner import make_checkout

    return make_checkout(tmp_path / "shop")
