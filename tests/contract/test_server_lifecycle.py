"""First start, later starts, and settings from flags, a TOML file and the environment."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from certsmith.settings import load_settings
from certsmith.testing.pki import activate_root, create_ca, issue, make_csr

from ..conftest import backend_url, start_server


def test_restart_reuses_everything_and_public_url_is_baked_in(tmp_path: Path) -> None:
    url = backend_url()
    first = start_server(tmp_path, url, extra=["--public-url", "http://pki.example.test:8080"])
    try:
        key_before = (first.data_dir / "master.key").read_bytes()
        credentials_before = first.credentials.read_text()
        pca = first.client("acm-pca")
        arn = create_ca(pca, "ROOT", "Restart Root", revocation={"CrlConfiguration": {"Enabled": True}})
        activate_root(pca, arn)
        csr, _ = make_csr("restart.test")
        _, issued = issue(pca, arn, csr)
    finally:
        first.stop()
    cert = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0].full_name[0].value
    assert cdp == f"http://pki.example.test:8080/crl/{arn.rsplit('/', 1)[-1]}.crl"

    second = start_server(tmp_path, url)
    try:
        assert (second.data_dir / "master.key").read_bytes() == key_before
        assert second.credentials.read_text() == credentials_before
        pca = second.client("acm-pca")
        described = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
        assert described["Status"] == "ACTIVE"
        csr, _ = make_csr("after-restart.test")
        issue(pca, arn, csr)  # the sealed CA key still opens with the same master key
        report = pca.create_certificate_authority_audit_report(CertificateAuthorityArn=arn, S3BucketName="reports",
                                                               AuditReportResponseFormat="CSV")
        pca.get_waiter("audit_report_created").wait(CertificateAuthorityArn=arn, AuditReportId=report["AuditReportId"],
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        rows = list(csv.DictReader(io.StringIO(httpx.get(f"{second.endpoint}/{report['S3Key']}").text)))
        assert len(rows) == 3  # the root's own certificate and two leaves
        assert list(rows[0]) == ["awsAccountId", "requestedByServicePrincipal", "certificateArn", "serial", "subject",
                                 "notBefore", "notAfter", "issuedAt", "revokedAt", "revocationReason", "templateArn"]
        assert httpx.get(f"{second.endpoint}/audit-report/x/{report['AuditReportId']}.json").status_code == 404
    finally:
        second.stop()


def test_settings_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "certsmith.toml"
    config.write_text('[certsmith]\nport = 9100\nregion = "eu-west-1"\ndata-dir = "/srv/certsmith"\n')
    monkeypatch.setenv("CERTSMITH_REGION", "eu-central-1")
    settings = load_settings(config, port=None, host="0.0.0.0")
    assert settings.port == 9100 and settings.region == "eu-central-1" and settings.host == "0.0.0.0"
    assert str(settings.data_dir) == "/srv/certsmith"
    assert settings.effective_public_url == "http://0.0.0.0:9100"
    config.write_text('[certsmith]\nprot = 1\n')
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        load_settings(config)
    monkeypatch.setenv("CERTSMITH_PORT", "eighty")
    with pytest.raises(ValueError, match="port must be a whole number"):
        load_settings(None)


def test_several_api_processes(tmp_path: Path) -> None:
    server = start_server(tmp_path, backend_url(), extra=["--processes", "2"])
    try:
        pca = server.client("acm-pca")
        arn = create_ca(pca, "ROOT", "Multi-process Root")
        activate_root(pca, arn)
        for index in range(20):
            csr, _ = make_csr(f"p{index}.test")
            issue(pca, arn, csr)
        listed = pca.list_certificate_authorities()["CertificateAuthorities"]
        assert [ca["Arn"] for ca in listed] == [arn]
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log, log
