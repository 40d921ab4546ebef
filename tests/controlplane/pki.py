"""The control plane's PKI: one CA, serving certificates, client certificates per user.

Kubernetes authenticates a client certificate as user = subject CN, groups = subject O
(`O=system:masters` is the superuser group RBAC never restricts). Keys are EC P-256: fast to
make, accepted everywhere here, including for service-account token signing (ES256).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["Authority", "KeyPair"]


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


class Authority:
    """A CA in `directory` that issues certificates next to it (made on first use, loaded
    from ca.crt/ca.key when the directory has them)."""

    def __init__(self, directory: Path, name: str = "restart-backend-test-ca") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        self._not_before = now - datetime.timedelta(hours=1)
        self._not_after = now + datetime.timedelta(days=30)
        if (directory / "ca.key").exists():  # an existing CA: issue more from it
            self._key = serialization.load_pem_private_key(
                (directory / "ca.key").read_bytes(), None
            )
            self._cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
            self.ca_pem = (directory / "ca.crt").read_bytes()
            self.ca_file = directory / "ca.crt"
            return
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = self._name(name, ())
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), False)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_pem = self._cert.public_bytes(serialization.Encoding.PEM)
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(self.ca_pem)
        _write_private(directory / "ca.key", _pem_key(self._key))

    @staticmethod
    def _name(common_name: str, organizations: Iterable[str]):
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return x509.Name(attributes)

    def issue(
        self,
        file_stem: str,
        common_name: str,
        *,
        groups: Sequence[str] = (),
        hosts: Sequence[str] = (),
        client: bool = True,
    ) -> KeyPair:
        """A certificate for `common_name` (user name) in `groups`; with `hosts` (IPs or DNS
        names) it also serves TLS for them."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509.oid import ExtendedKeyUsageOID

        key = ec.generate_private_key(ec.SECP256R1())
        usages = []
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if hosts:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(self._name(common_name, groups))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
        )
        if hosts:
            names: list = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        pair = KeyPair(self.directory / f"{file_stem}.crt", self.directory / f"{file_stem}.key")
        pair.cert.write_bytes(cert.public_bytes(Encoding.PEM))
        _write_private(pair.key, _pem_key(key))
        return pair

    def signing_key(self, file_stem: str) -> KeyPair:
        """A bare key pair (public key PEM as `cert`): service-account token signing."""
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        key = ec.generate_private_key(ec.SECP256R1())
        pair = KeyPair(self.directory / f"{file_stem}.pub", self.directory / f"{file_stem}.key")
        pair.cert.write_bytes(
            key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
        _write_private(pair.key, _pem_key(key))
        return pair
