"""Binary-only stand-in (see packaging/stubs/README.md)."""
