"""``serve --tls auto``: an internal root in ``<data-dir>/tls`` and a server certificate it signs, renewed
by certsmith itself.

Files (the keys are PEM encrypted under a password derived from the master key, so they are
sealed at rest like every other key):

    tls/ca.pem        the internal root, for clients' AWS_CA_BUNDLE / --ca-bundle
    tls/ca.key        its key
    tls/server.pem    the server certificate followed by the root
    tls/server.key    its key
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["AutoTLS", "key_password", "server_names"]

ROOT_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=90)
RENEW_BEFORE = dt.timedelta(days=30)


def key_password(master_key: bytes) -> bytes:
    """The password of the TLS key files: derived from the master key, never stored."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"certsmith server TLS key files").derive(master_key).hex().encode()


def server_names(host: str, public_url: str | None) -> list[str]:
    """The names the server certificate covers: loopback, this host's names, the listening and public hosts."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    if public_url:
        public_host = urlsplit(public_url).hostname
        if public_host:
            names.append(public_host)
    unique: list[str] = []
    for name in names:
        if name and name not in unique:
            unique.append(name)
    return unique


@dataclass(frozen=True, slots=True)
class AutoTLS:
    directory: Path
    password: bytes
    names: tuple[str, ...]

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def cert_path(self) -> Path:
        return self.directory / "server.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "server.key"

    def ensure(self, now: dt.datetime | None = None) -> bool:
        """Make the root and a server certificate when missing, due for renewal, or for other names.
        Returns True when it wrote a new server certificate. Safe to call from several processes."""
        now = now or dt.datetime.now(dt.UTC)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock():
            if not self._server_due(now):
                return False
            root_cert, root_key = self._root(now)
            key = ec.generate_private_key(ec.SECP256R1())
            sans: list[x509.GeneralName] = []
            for name in self.names:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    sans.append(x509.DNSName(name))
            cert = (_builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.names[0])]), root_cert.subject,
                             key.public_key(), now, SERVER_VALIDITY)
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                    .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
                    .sign(root_key, hashes.SHA256()))
            self._write(self.key_path, self._encrypted(key))
            chain = cert.public_bytes(serialization.Encoding.PEM) + root_cert.public_bytes(serialization.Encoding.PEM)
            self._write(self.cert_path, chain)
            return True

    def reencrypt(self, new_password: bytes) -> None:
        """Re-encrypt both key files under another password (a master key rotation)."""
        for path in (self.directory / "ca.key", self.key_path):
            if path.exists():
                key = serialization.load_pem_private_key(path.read_bytes(), self.password)
                self._write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.BestAvailableEncryption(new_password)))

    def _server_due(self, now: dt.datetime) -> bool:
        if not (self.cert_path.exists() and self.key_path.exists() and self.ca_path.exists()):
            return True
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        if cert.not_valid_after_utc - now < RENEW_BEFORE:
            return True
        try:
            serialization.load_pem_private_key(self.key_path.read_bytes(), self.password)
        except (ValueError, TypeError):  # sealed under another master key: make a new one
            return True
        try:
            covered = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return True
        have = {str(v) for v in covered.get_values_for_type(x509.IPAddress)} | set(covered.get_values_for_type(x509.DNSName))
        return not set(self.names) <= have

    def _root(self, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key_file = self.directory / "ca.key"
        if self.ca_path.exists() and key_file.exists():
            cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
            try:
                key = serialization.load_pem_private_key(key_file.read_bytes(), self.password)
            except (ValueError, TypeError):  # sealed under another master key: a new root, to be trusted anew
                key = None
            if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc - now > SERVER_VALIDITY:
                return cert, key
        key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certsmith"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"certsmith internal TLS root {socket.gethostname()}")])
        cert = (_builder(name, name, key.public_key(), now, ROOT_VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                .sign(key, hashes.SHA384()))
        self._write(key_file, self._encrypted(key))
        self._write(self.ca_path, cert.public_bytes(serialization.Encoding.PEM))
        return cert, key

    def _encrypted(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(self.password))

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime,
             validity: dt.timedelta) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + validity)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
