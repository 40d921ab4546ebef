"""A throw-away CA and a server certificate for 127.0.0.1 / localhost.

Generating keys is the slow part of starting a cluster, so `session_certificates()` makes one
set per process and every cluster of a test session reuses it (each run of the test suite or
of `scripts/dev-cluster` still gets its own CA, as the issue asks).
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Certificates",
    "generate_certificates",
    "issue_client_certificate",
    "session_certificates",
]


@dataclass(frozen=True)
class Certificates:
    """PEM files on disk (ssl wants files) plus the CA PEM for kubeconfigs."""

    ca_pem: bytes
    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_key_file: Path | None = None  # to issue client certificates (the server trusts the CA)


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate_certificates(directory: Path) -> Certificates:
    """Write ca.crt, server.crt and server.key (EC P-256: fast to generate) into `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("simulated-cluster-ca"))
        .issuer_name(_name("simulated-cluster-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files = Certificates(
        ca_pem,
        directory / "ca.crt",
        directory / "server.crt",
        directory / "server.key",
        directory / "ca.key",
    )
    files.ca_file.write_bytes(ca_pem)
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(_private_pem(key))
    files.key_file.chmod(0o600)
    files.ca_key_file.write_bytes(_private_pem(ca_key))
    files.ca_key_file.chmod(0o600)
    return files


def _private_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def issue_client_certificate(
    certs: Certificates, common_name: str, groups: tuple[str, ...] = ()
) -> tuple[bytes, bytes]:
    """A client certificate (PEM) and its key (PEM) signed by the cluster's CA.

    As for kube-apiserver: the subject's CN is the user name, each O a group.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if certs.ca_key_file is None:
        raise ValueError("these certificates were made without keeping the CA key")
    ca_key = serialization.load_pem_private_key(certs.ca_key_file.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(certs.ca_pem)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _private_pem(key)


_session: Certificates | None = None
_session_lock = threading.Lock()


def session_certificates() -> Certificates:
    """One set of certificates per process, in a temp dir removed at exit."""
    global _session
    with _session_lock:
        if _session is None:
            directory = Path(tempfile.mkdtemp(prefix="sim-cluster-pki-"))
            atexit.register(shutil.rmtree, directory, True)
            _session = generate_certificates(directory)
        return _session
