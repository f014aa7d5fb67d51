"""The internal root and server certificate of `serve --tls auto`: made once, renewed when due."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsmith.tls.auto import AutoTLS, key_password, server_names

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def _served(auto: AutoTLS) -> x509.Certificate:
    return x509.load_pem_x509_certificates(auto.cert_path.read_bytes())[0]


def test_made_once_then_renewed_when_due(tmp_path: Path) -> None:
    auto = AutoTLS(tmp_path / "tls", key_password(b"\x01" * 32), ("localhost", "127.0.0.1"))
    assert auto.ensure(NOW)
    first = _served(auto)
    root = x509.load_pem_x509_certificate(auto.ca_path.read_bytes())
    first.verify_directly_issued_by(root)
    sans = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]

    assert not auto.ensure(NOW + dt.timedelta(days=59))  # 31 days left: not yet
    assert auto.ensure(NOW + dt.timedelta(days=61))  # 29 days left: renewed
    renewed = _served(auto)
    assert renewed.serial_number != first.serial_number
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    assert x509.load_pem_x509_certificate(auto.ca_path.read_bytes()) == root  # the root stays

    wider = AutoTLS(auto.directory, auto.password, ("localhost", "127.0.0.1", "ca.example.internal"))
    assert wider.ensure(NOW + dt.timedelta(days=61))  # a new name: a new certificate at once
    names = _served(wider).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "ca.example.internal" in names.get_values_for_type(x509.DNSName)


def test_key_files_follow_a_master_key_rotation(tmp_path: Path) -> None:
    old, new = key_password(b"\x01" * 32), key_password(b"\x02" * 32)
    auto = AutoTLS(tmp_path, old, ("localhost",))
    auto.ensure(NOW)
    auto.reencrypt(new)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(auto.key_path.read_bytes(), old)
    serialization.load_pem_private_key(auto.key_path.read_bytes(), new)
    assert not AutoTLS(tmp_path, new, ("localhost",)).ensure(NOW)  # nothing to remake


def test_server_names() -> None:
    names = server_names("0.0.0.0", "https://pki.example.test:8443")
    assert names[:3] == ["localhost", "127.0.0.1", "::1"] and "pki.example.test" in names and "0.0.0.0" not in names
    assert "10.1.2.3" in server_names("10.1.2.3", None)
