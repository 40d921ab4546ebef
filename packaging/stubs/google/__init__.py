"""Binary-only stand-in for the ``google`` namespace (see packaging/stubs/README.md)."""
