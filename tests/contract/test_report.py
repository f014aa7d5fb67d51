"""The compliance report against a real `certsmith serve` (its own, so the account holds only this module's fleet).

The fleet: an imported RSA-1024 certificate signed with SHA-1 (certsmith imports what ACM imports), an imported
certificate whose intermediate has an RSA-1024 key, an imported one expiring in 5 days, private certificates (a
wildcard under env=prod, one under env=staging, one valid 7 days whose renewal is planned, one valid 7 days whose
renewal waits for its disabled CA), and one renewed while a TLS server on loopback, a monitored endpoint, still serves
its first version.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certsmith.testing.pki import WAIT, root_ca

from ..conftest import Server, backend_url, start_server
from ..unit.test_compliance import resigned
from .test_cli import cli
from .test_renewal_api import until

PASSPHRASE = b"compliance report"
PROD = [{"Key": "env", "Value": "prod"}]


# -- certificates made here -----------------------------------------------------------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: Any, issuer: str, signer: Any, *, ca: bool, names: list[str] | None = None,
                 digest: Any = None, days: float = 200) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    certificate = builder.sign(signer, hashes.SHA256())
    return resigned(certificate, signer, digest) if digest is not None else certificate


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _key_pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


# -- a TLS server on loopback ---------------------------------------------------------------------------------------
def serve_tls(tmp: Path, chain_pem: str, encrypted_key: str) -> socket.socket:
    """Serves the chain on 127.0.0.1 until the socket is closed."""
    (tmp / "chain.pem").write_text(chain_pem)
    (tmp / "key.pem").write_text(encrypted_key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "chain.pem", tmp / "key.pem", password=PASSPHRASE)
    sock = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock


# -- fixtures ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("report"), backend_url())
    yield server
    server.stop()
    assert "Traceback" not in server.log_path.read_text()


@pytest.fixture(scope="module")
def api(own: Server) -> Any:
    return own.client("certsmith")


def _issued(acm: Any, ca: str, domain: str, tags: list[dict[str, str]] | None = None,
            names: list[str] | None = None) -> str:
    extra: dict[str, Any] = {"Tags": tags} if tags else {}
    if names:
        extra["SubjectAlternativeNames"] = names
    arn: str = acm.request_certificate(DomainName=domain, CertificateAuthorityArn=ca, KeyAlgorithm="EC_prime256v1",
                                       **extra)["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn


@pytest.fixture(scope="module")
def fleet(own: Server, api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    acm, pca = own.client("acm"), own.client("acm-pca")
    arns: dict[str, Any] = {}
    # Imported: RSA 1024, self-signed with SHA-1.
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak = _certificate("weak.report.test", weak_key, "weak.report.test", weak_key, ca=False,
                        names=["weak.report.test"], digest=hashes.SHA1())
    arns["weak"] = acm.import_certificate(Certificate=_pem(weak), PrivateKey=_key_pem(weak_key))["CertificateArn"]
    # Imported: a sound leaf under an intermediate whose key is RSA 1024 (certsmith checks an imported chain's
    # signatures, and cryptography verifies no SHA-1 signature: a SHA-1 chain is the unit tests' part).
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _certificate("Report Root 2048", root_key, "Report Root 2048", root_key, ca=True)
    middle_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    middle = _certificate("Report Small Intermediate", middle_key, "Report Root 2048", root_key, ca=True)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _certificate("chain.report.test", leaf_key, "Report Small Intermediate", middle_key, ca=False,
                        names=["chain.report.test"])
    arns["chain"] = acm.import_certificate(Certificate=_pem(leaf), PrivateKey=_key_pem(leaf_key),
                                           CertificateChain=_pem(middle, root))["CertificateArn"]
    # Imported, 5 days left: certsmith cannot renew it.
    soon = _certificate("soon.report.test", leaf_key, "soon.report.test", leaf_key, ca=False, names=["soon.report.test"],
                        days=5.5)
    arns["soon"] = acm.import_certificate(Certificate=_pem(soon), PrivateKey=_key_pem(leaf_key))["CertificateArn"]
    # Private certificates of a CA of this server.
    ca = root_ca(pca, "Report Root")
    arns["wildcard"] = _issued(acm, ca, "*.shop.report.test", PROD, ["*.shop.report.test", "shop.report.test"])
    arns["staging"] = _issued(acm, ca, "*.staging.report.test", [{"Key": "env", "Value": "staging"}])
    acm.export_certificate(CertificateArn=arns["staging"], Passphrase=PASSPHRASE)
    arns["short"] = _issued(acm, ca, "short.report.test", [{"Key": "certsmith:validity", "Value": "7d"}])
    # Renewed while a server still serves version 1.
    arns["drift"] = drift = _issued(acm, ca, "drift.report.test")
    exported = acm.export_certificate(CertificateArn=drift, Passphrase=PASSPHRASE)
    sock = serve_tls(tmp_path_factory.mktemp("tls"), exported["Certificate"] + exported["CertificateChain"],
                     exported["PrivateKey"])
    before = exported["Certificate"]
    acm.renew_certificate(CertificateArn=drift)
    until("the renewal", lambda: acm.get_certificate(CertificateArn=drift)["Certificate"] != before)
    endpoint = api.create_endpoint(Host="127.0.0.1", Port=sock.getsockname()[1], ServerName="drift.report.test",
                                   CertificateArn=drift)["Endpoint"]
    assert api.probe_endpoint(EndpointId=endpoint["EndpointId"])["Endpoint"]["Status"] == "DRIFT"
    arns["port"] = sock.getsockname()[1]
    # Valid 7 days too, but its renewal waits: its CA is disabled (last: nothing else is issued after this).
    arns["stuck"] = stuck = _issued(acm, ca, "stuck.report.test", [{"Key": "certsmith:validity", "Value": "7d"}])
    pca.update_certificate_authority(CertificateAuthorityArn=ca, Status="DISABLED")
    acm.renew_certificate(CertificateArn=stuck)
    until("the renewal to wait for the CA", lambda: acm.describe_certificate(CertificateArn=stuck)["Certificate"].get(
        "RenewalSummary", {}).get("RenewalStatusReason") == "PCA_INVALID_STATE")
    yield arns
    sock.close()


def by_arn(findings: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in findings:
        found.setdefault(finding["CertificateArn"], []).append(finding["Rule"])
    return found


def one(findings: list[dict[str, Any]], arn: str, rule: str) -> dict[str, Any]:
    matching = [f for f in findings if f["CertificateArn"] == arn and f["Rule"] == rule]
    assert len(matching) == 1, findings
    return matching[0]


# -- tests ------------------------------------------------------------------------------------------------------------
def test_each_rule_finds_its_certificates(api: Any, fleet: dict[str, Any]) -> None:
    report = api.get_compliance_report(WildcardForbiddenTags=PROD)
    findings = report["Findings"]
    assert abs(report["GeneratedAt"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert report["ExpiringWithinDays"] == 30
    rules = by_arn(findings)
    assert sorted(rules[fleet["weak"]]) == ["imported-no-renewal", "sha1-signature", "unused", "weak-rsa"]
    assert sorted(rules[fleet["chain"]]) == ["imported-no-renewal", "unused", "weak-rsa"]
    assert sorted(rules[fleet["soon"]]) == ["expiring", "imported-no-renewal", "unused"]
    assert sorted(rules[fleet["wildcard"]]) == ["forbidden-wildcard", "unused"]
    assert rules[fleet["staging"]] == ["unused"]
    assert rules[fleet["short"]] == ["unused"]  # 7 days left, but certsmith renews it in time: not expiring
    assert sorted(rules[fleet["stuck"]]) == ["expiring", "unused"]
    assert rules[fleet["drift"]] == ["endpoint-old-version"]  # a monitored endpoint is registered for it: not unused

    weak = one(findings, fleet["weak"], "weak-rsa")
    assert weak["Severity"] == "HIGH" and weak["DomainName"] == "weak.report.test"
    assert "1024-bit RSA" in weak["Detail"] and weak["RecommendedAction"]
    assert "SHA-1 (SHA1WITHRSA)" in one(findings, fleet["weak"], "sha1-signature")["Detail"]
    chain = one(findings, fleet["chain"], "weak-rsa")["Detail"]
    assert chain == "its chain's certificate CN=Report Small Intermediate has a 1024-bit RSA key"
    assert "certsmith cannot renew it" in one(findings, fleet["chain"], "imported-no-renewal")["Detail"]
    wildcard = one(findings, fleet["wildcard"], "forbidden-wildcard")
    assert "*.shop.report.test" in wildcard["Detail"] and "env=prod" in wildcard["Detail"]
    soon = one(findings, fleet["soon"], "expiring")
    assert soon["Severity"] == "HIGH" and "(in 5 days)" in soon["Detail"] and "ImportCertificate" in soon["RecommendedAction"]
    stuck = one(findings, fleet["stuck"], "expiring")
    assert stuck["Severity"] == "HIGH" and "expires on" in stuck["Detail"]
    assert "its managed renewal waits for action (PCA_INVALID_STATE" in stuck["Detail"]
    assert "clear what the renewal waits for" in stuck["RecommendedAction"]
    drift = one(findings, fleet["drift"], "endpoint-old-version")
    assert drift["Endpoint"] == {"Host": "127.0.0.1", "Port": fleet["port"], "ServerName": "drift.report.test"}
    assert "serves version 1" in drift["Detail"] and "the current one is version 2" in drift["Detail"]
    assert drift["Severity"] == "HIGH" and drift["DomainName"] == "drift.report.test"
    assert "it was exported" in one(findings, fleet["staging"], "unused")["Detail"]
    assert "exported" not in one(findings, fleet["short"], "unused")["Detail"]

    counts = {s["Rule"]: s["Count"] for s in report["Summary"]}
    assert counts == {rule: sum(1 for f in findings if f["Rule"] == rule) for rule in counts}
    assert list(counts) == ["expiring", "weak-rsa", "sha1-signature", "forbidden-wildcard", "unused",
                            "imported-no-renewal", "endpoint-old-version"]
    severities = [f["Severity"] for f in findings]
    assert severities == sorted(severities, key=["CRITICAL", "HIGH", "MEDIUM", "LOW"].index)


def test_rules_and_window_are_chosen_by_the_request(api: Any, fleet: dict[str, Any]) -> None:
    report = api.get_compliance_report(Rules=["expiring"], ExpiringWithinDays=400)
    assert report["Summary"] == [{"Rule": "expiring", "Count": len(report["Findings"])}]
    expiring = {f["CertificateArn"] for f in report["Findings"]}
    assert {fleet[k] for k in ("weak", "chain", "soon", "stuck")} <= expiring  # imported, or its renewal waits
    assert not {fleet[k] for k in ("wildcard", "staging", "short", "drift")} & expiring  # renewed in time by certsmith
    assert not any(f["Rule"] == "forbidden-wildcard" for f in api.get_compliance_report()["Findings"])
    with pytest.raises(ClientError) as info:
        api.get_compliance_report(Rules=["nope"])
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException" and "'nope'" in error["Message"] and "weak-rsa" in error["Message"]


def test_cli_json_csv_and_table(own: Server, api: Any, fleet: dict[str, Any]) -> None:
    expected = api.get_compliance_report(WildcardForbiddenTags=PROD)["Findings"]
    printed = json.loads(cli(own, "report", "--json", "--no-wildcards-tag", "env=prod").stdout)
    assert by_arn(printed["Findings"]) == by_arn(expected)

    result = cli(own, "report", "--csv", "--no-wildcards-tag", "env=prod", "--fail-on-findings", ok=False)
    assert result.returncode == 2, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["Rule", "Severity", "CertificateArn", "DomainName", "Detail", "RecommendedAction", "Endpoint"]
    assert len(rows) == len(expected) + 1
    assert [fleet["drift"], f"127.0.0.1:{fleet['port']}"] in [[r[2], r[6]] for r in rows if r[0] == "endpoint-old-version"]

    table = cli(own, "report", "--rule", "expiring", "--days", "10")
    assert table.returncode == 0 and "expiring" in table.stdout
    assert "soon.report.test" in table.stdout and "stuck.report.test" in table.stdout
    assert "short.report.test" not in table.stdout
    assert "2 findings (expiring 2); expiry window 10 days" in table.stderr
