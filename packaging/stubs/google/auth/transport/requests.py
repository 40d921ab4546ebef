"""Binary-only stand-in for ``google.auth.transport.requests`` (see packaging/stubs/README.md)."""

from google.auth import GCP_UNSUPPORTED, GcpAuthProviderUnsupported


class Request:
    def __init__(self, *_args, **_kwargs):
        raise GcpAuthProviderUnsupported(GCP_UNSUPPORTED)
