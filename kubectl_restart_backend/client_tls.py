"""TLS for the API client: the cluster's CA and the user's client certificate, in memory.

The kubernetes client writes ``certificate-authority-data``, ``client-certificate-data`` and
``client-key-data`` to files in the system temp directory and removes them only in an atexit
handler, which a signal (a cancelled CI job) or ``os._exit`` skips: a client key left behind
in ``/tmp``. So the client never sees TLS material. We load it into one ``SSLContext`` up
front (a CA straight from memory; a certificate and key, which OpenSSL only reads from files,
through files created 0600 in a private 0700 directory that is removed as soon as OpenSSL has
read them, before any request), and hand that context to the client's connection pools.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import ssl
import tempfile
from typing import Any, Iterator, Mapping, Optional

from .errors import UsageError, shown

TLS_KEYS_OF_CLUSTER = ("certificate-authority", "certificate-authority-data")
TLS_KEYS_OF_USER = (
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
)


def build_ssl_context(
    cluster: Mapping[str, Any],
    user: Optional[Mapping[str, Any]],
    *,
    cluster_name: Optional[str],
    user_name: Optional[str],
    client_pem: Optional[tuple[bytes, bytes]] = None,
) -> ssl.SSLContext:
    """One context for every connection: the cluster's CA (or the public roots), TLS
    verification exactly as the kubeconfig says, and the client certificate if any.

    ``client_pem`` (certificate, key) comes from an exec credential plugin and wins over the
    user entry's certificate, as in kubectl.
    """
    from urllib3.util.ssl_ import create_urllib3_context

    verify = cluster.get("insecure-skip-tls-verify") is not True
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
    _load_ca(context, cluster, cluster_name, verify)
    user = user or {}
    try:
        if client_pem is None:
            client_pem = _client_pem_from_data(user)
        if client_pem is not None:
            with private_directory() as directory:
                cert_file = _write_private(directory, "client.crt", client_pem[0])
                key_file = _write_private(directory, "client.key", client_pem[1])
                context.load_cert_chain(cert_file, key_file)
        elif user.get("client-certificate") and user.get("client-key"):
            context.load_cert_chain(user["client-certificate"], user["client-key"])
    except (ssl.SSLError, OSError, ValueError):
        raise UsageError(
            f"User {shown(user_name)}: the client certificate and key cannot be used (not PEM, "
            "encrypted, or they do not belong together)",
            "Fix client-certificate(-data) and client-key(-data) in the kubeconfig",
        ) from None
    return context


def use_ssl_context(api_client: Any, context: ssl.SSLContext) -> None:
    """Make the client's connection pools use ``context`` instead of reading files."""
    pool_kw = api_client.rest_client.pool_manager.connection_pool_kw
    pool_kw.update(ssl_context=context, ca_certs=None, cert_file=None, key_file=None)


def without_tls_files(body: Optional[Mapping[str, Any]], keys: tuple[str, ...]) -> dict:
    """A kubeconfig entry without the TLS material (the client gets the rest)."""
    return {k: v for k, v in (body or {}).items() if k not in keys}


@contextlib.contextmanager
def private_directory() -> Iterator[str]:
    """A 0700 directory of our own, removed on the way out whatever ends the block."""
    directory = tempfile.mkdtemp(prefix="kubectl-restart-backend-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _write_private(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _load_ca(
    context: ssl.SSLContext, cluster: Mapping[str, Any], name: Optional[str], verify: bool
) -> None:
    data, path = cluster.get("certificate-authority-data"), cluster.get("certificate-authority")
    try:
        if data:
            raw = base64.b64decode("".join(str(data).split()))
            try:
                context.load_verify_locations(cadata=raw.decode("ascii"))  # PEM
            except UnicodeDecodeError:
                context.load_verify_locations(cadata=raw)  # DER
        elif path:
            context.load_verify_locations(cafile=path)
        elif verify:
            import certifi  # the client's default roots when the kubeconfig names no CA

            context.load_verify_locations(cafile=certifi.where())
    except (ssl.SSLError, OSError, ValueError):
        which = "certificate-authority-data" if data else "certificate-authority"
        raise UsageError(
            f"Cluster {shown(name)}: {which} is not a PEM certificate",
            f"Fix {which} in the kubeconfig (kubectl config view --raw shows it)",
        ) from None


def _client_pem_from_data(user: Mapping[str, Any]) -> Optional[tuple[bytes, bytes]]:
    """Certificate and key when either comes as ``-data`` (the other may be a file)."""
    if not user.get("client-certificate-data") and not user.get("client-key-data"):
        return None
    return _bytes_of(user, "client-certificate"), _bytes_of(user, "client-key")


def _bytes_of(user: Mapping[str, Any], key: str) -> bytes:
    data = user.get(f"{key}-data")
    if data:
        return base64.b64decode("".join(str(data).split()))
    with open(str(user.get(key) or ""), "rb") as handle:
        return handle.read()
