"""Shared pytest configuration: the simulated cluster's fixtures (`cluster`, `make_cluster`)."""

pytest_plugins = ["tests.cluster.fixtures"]
