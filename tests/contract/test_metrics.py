"""GET /metrics against a real `certsmith serve`: real certificates through boto3, real probes, the real parser.

The module's server requires a bearer token (CERTSMITH_METRICS_TOKEN) and keeps three per-certificate series
(CERTSMITH_METRICS_CERTIFICATE_SERIES); the shared server, started without either, shows that /metrics is open by
default. The renewal-at-risk reasons and the validation time are also checked on rows written straight into a
database of the backend under test, in states a server reaches only over days (overdue, failed, waiting).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from certsmith.domain.clock import FixedClock
from certsmith.metrics.certificates import series_rows
from certsmith.metrics.collector import DatabaseCollector
from certsmith.store.database import Database, migrate
from certsmith.store.renewal_tables import CertificateVersionRow
from certsmith.store.tables import CertificateRow
from certsmith.testing.pki import WAIT, root_ca

from ..conftest import Server, backend_url, free_port, start_server

TOKEN = "metrics-token-7f3a9c"
SERIES = 3  # the soonest to expire: the short-lived import and the two private certificates, not the vector import
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "ec"
FAMILIES = {  # as the parser names them: a counter's family drops its _total
    "certsmith_certificate_not_after_timestamp_seconds", "certsmith_certificate_days_to_expiry",
    "certsmith_certificate_series_dropped", "certsmith_certificates", "certsmith_renewals",
    "certsmith_renewal_failures", "certsmith_issuance_duration_seconds", "certsmith_validation_duration_seconds",
    "certsmith_jobs", "certsmith_job_oldest_age_seconds", "certsmith_event_deliveries",
    "certsmith_event_delivery_attempts_failed", "certsmith_api_requests", "certsmith_endpoint_up",
    "certsmith_endpoint_drift", "certsmith_endpoint_days_to_expiry", "certsmith_endpoint_handshake_seconds",
    "certsmith_endpoint_probe_timestamp_seconds", "certsmith_certificate_renewal_at_risk",
}
Samples = dict[str, list[tuple[str, dict[str, str], float]]]


def scrape(server: Server, token: str | None = TOKEN) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server.endpoint}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return {family.name: [(s.name, s.labels, s.value) for s in family.samples]
            for family in text_string_to_metric_families(response.text)}


def value(samples: Samples, family: str, sample: str | None = None, **labels: str) -> float | None:
    """The value of the one sample of ``family`` with these labels (among others), or None."""
    found = [v for name, have, v in samples[family]
             if (sample is None or name == sample) and all(have.get(k) == want for k, want in labels.items())]
    assert len(found) <= 1, f"{family} {labels}: {found}"
    return found[0] if found else None


def requests_counted(server: Server, operation: str, code: str) -> float:
    return value(scrape(server), "certsmith_api_requests", service="acm", operation=operation, code=code) or 0.0


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("metrics"), backend_url(),
                       settings={"metrics_token": TOKEN, "metrics_certificate_series": SERIES})
    yield srv
    srv.stop()
    assert not srv.errors(), srv.errors()


@pytest.fixture(scope="module")
def acm(metered: Server) -> Any:
    return metered.client("acm")


def short_lived() -> tuple[bytes, bytes, bytes]:
    """A leaf valid for ten more days, its key and its CA's certificate (PEM), made here."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Metrics "Test" CA'),
                         x509.NameAttribute(NameOID.COMMON_NAME, "Metrics Test Root")])

    def build(subject: x509.Name, public: Any, ca: bool, days: int) -> bytes:
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("soon.metrics.test")]), False)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soon.metrics.test")]), key.public_key(), False, 10)
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return leaf, pem_key, build(ca_name, ca_key.public_key(), True, 365)


@pytest.fixture(scope="module")
def fleet(metered: Server, acm: Any) -> dict[str, Any]:
    """On the module's fresh server: a root CA, two private certificates (one revoked), two imported (one expiring in
    ten days, one in 2066)."""
    ca = root_ca(metered.client("acm-pca"), "Metrics Root")
    arns = []
    for name in ("one.metrics.test", "two.metrics.test"):
        arn = acm.request_certificate(DomainName=name, CertificateAuthorityArn=ca,
                                      KeyAlgorithm="EC_prime256v1")["CertificateArn"]
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
        arns.append(arn)
    acm.export_certificate(CertificateArn=arns[1], Passphrase=b"metrics passphrase")  # only exported ones revoke
    acm.revoke_certificate(CertificateArn=arns[1], RevocationReason="SUPERSEDED")
    imported = acm.import_certificate(Certificate=(VECTORS / "leaf.pem").read_bytes(),
                                      PrivateKey=(VECTORS / "leaf.key").read_bytes(),
                                      CertificateChain=(VECTORS / "chain.pem").read_bytes())["CertificateArn"]
    leaf, key, chain = short_lived()
    soon = acm.import_certificate(Certificate=leaf, PrivateKey=key, CertificateChain=chain)["CertificateArn"]
    return {"ca": ca, "issued": arns[0], "revoked": arns[1], "imported": imported, "soon": soon}


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A TLS server on loopback serving the EC vector leaf and its chain; it completes each handshake, then closes."""
    folder = tmp_path_factory.mktemp("tls")
    (folder / "chain.pem").write_bytes((VECTORS / "leaf.pem").read_bytes() + (VECTORS / "chain.pem").read_bytes())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "chain.pem", VECTORS / "leaf.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so that the loop sees the stop
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    listener.close()


# -- access --------------------------------------------------------------------------------------------------------------
def test_a_token_is_required_when_one_is_set(metered: Server) -> None:
    page = f"{metered.endpoint}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.get(page, headers=headers, timeout=10)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer") and TOKEN not in response.text
    assert "certsmith_certificates" in scrape(metered)


def test_metrics_are_open_without_a_token(server: Server) -> None:
    assert FAMILIES <= set(scrape(server, token=None))


# -- certificates ----------------------------------------------------------------------------------------------------------
def test_every_family_is_there(metered: Server) -> None:
    assert FAMILIES <= set(scrape(metered))


def test_certificates_by_type_and_status(metered: Server, fleet: dict[str, Any]) -> None:
    samples = scrape(metered)
    counts = {(labels["type"], labels["status"]): v for _, labels, v in samples["certsmith_certificates"]}
    assert counts == {("PRIVATE", "ISSUED"): 1, ("PRIVATE", "REVOKED"): 1, ("IMPORTED", "ISSUED"): 2}
    assert value(samples, "certsmith_certificate_series_dropped") == 1  # four with a NotAfter, three series
    issuance = {labels["le"]: v for name, labels, v in samples["certsmith_issuance_duration_seconds"]
                if name.endswith("_bucket") and labels["type"] == "PRIVATE"}
    assert issuance["+Inf"] == 2 and list(issuance.values()) == sorted(issuance.values())  # cumulative
    assert value(samples, "certsmith_issuance_duration_seconds", "certsmith_issuance_duration_seconds_count",
                 type="PRIVATE") == 2
    assert value(samples, "certsmith_issuance_duration_seconds", type="IMPORTED") is None  # imported: not issued here
    assert samples["certsmith_renewals"] == [] and samples["certsmith_renewal_failures"] == []


def test_the_certificates_expiring_first_have_their_expiry(metered: Server, acm: Any, fleet: dict[str, Any]) -> None:
    samples = scrape(metered)
    now = datetime.now(UTC)
    for key, kind, status, issuer in (("soon", "IMPORTED", "ISSUED", 'Metrics "Test" CA'),
                                      ("issued", "PRIVATE", "ISSUED", fleet["ca"]),
                                      ("revoked", "PRIVATE", "REVOKED", fleet["ca"])):
        detail = acm.describe_certificate(CertificateArn=fleet[key])["Certificate"]
        labels = {"arn": fleet[key], "domain": detail["DomainName"], "type": kind, "status": status, "issuer": issuer}
        not_after = value(samples, "certsmith_certificate_not_after_timestamp_seconds", **labels)
        days = value(samples, "certsmith_certificate_days_to_expiry", **labels)
        assert not_after == detail["NotAfter"].timestamp(), (key, not_after, detail["NotAfter"])
        assert days is not None and abs(days - (detail["NotAfter"] - now).total_seconds() / 86400) < 1, (key, days)
    assert abs((value(samples, "certsmith_certificate_days_to_expiry", arn=fleet["soon"]) or 0) - 10) < 1
    shown = {labels["arn"] for _, labels, _ in samples["certsmith_certificate_days_to_expiry"]}
    assert len(shown) == SERIES and fleet["imported"] not in shown  # it expires last: left out by the cap
    # Among them only the import is at risk: certsmith renews the private certificate, the revoked one is not ISSUED.
    assert samples["certsmith_certificate_renewal_at_risk"] == [("certsmith_certificate_renewal_at_risk", {
        "arn": fleet["soon"], "domain": "soon.metrics.test", "type": "IMPORTED", "reason": "imported"}, 1.0)]


def test_a_renewal_is_counted(metered: Server, acm: Any, fleet: dict[str, Any]) -> None:
    before = value(scrape(metered), "certsmith_renewals", "certsmith_renewals_total", type="PRIVATE") or 0
    acm.renew_certificate(CertificateArn=fleet["issued"])
    deadline = time.monotonic() + 30
    while (acm.describe_certificate(CertificateArn=fleet["issued"])["Certificate"].get("RenewalSummary", {})
           .get("RenewalStatus") != "SUCCESS"):
        assert time.monotonic() < deadline, "the renewal did not succeed within 30 s"
        time.sleep(0.1)
    samples = scrape(metered)
    assert value(samples, "certsmith_renewals", "certsmith_renewals_total", type="PRIVATE") == before + 1
    assert samples["certsmith_renewal_failures"] == []


# -- API requests ----------------------------------------------------------------------------------------------------------
def test_api_requests_are_counted_by_operation_and_error_code(metered: Server, acm: Any) -> None:
    missing = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-4000-8000-000000000000"
    failed_before = requests_counted(metered, "DescribeCertificate", "ResourceNotFoundException")
    listed_before = requests_counted(metered, "ListCertificates", "OK")
    with pytest.raises(ClientError) as info:
        acm.describe_certificate(CertificateArn=missing)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    acm.list_certificates()
    acm.list_certificates()
    assert requests_counted(metered, "DescribeCertificate", "ResourceNotFoundException") == failed_before + 1
    assert requests_counted(metered, "ListCertificates", "OK") == listed_before + 2


# -- queue, deliveries, endpoints ------------------------------------------------------------------------------------------
def test_jobs_and_deliveries(metered: Server) -> None:
    samples = scrape(metered)
    states = {labels["state"]: v for _, labels, v in samples["certsmith_event_deliveries"]}
    assert set(states) >= {"PENDING", "DELIVERED", "DEAD"} and all(v >= 0 for v in states.values())
    assert value(samples, "certsmith_event_delivery_attempts_failed") == 0
    kinds = {labels["kind"] for _, labels, _ in samples["certsmith_jobs"]}
    assert kinds == {labels["kind"] for _, labels, _ in samples["certsmith_job_oldest_age_seconds"]}
    assert all(v >= 0 for _, _, v in samples["certsmith_job_oldest_age_seconds"])


def test_endpoints_from_their_last_probe(metered: Server, tls_port: int) -> None:
    own = metered.client("certsmith")
    closed = free_port()
    for port in (tls_port, closed):
        endpoint = own.create_endpoint(Host="127.0.0.1", Port=port, ServerName="ec.vectors.test")["Endpoint"]
        own.probe_endpoint(EndpointId=endpoint["EndpointId"])
    samples = scrape(metered)
    now = time.time()
    served = {"host": "127.0.0.1", "port": str(tls_port), "server_name": "ec.vectors.test", "arn": ""}
    down = {**served, "port": str(closed)}
    assert value(samples, "certsmith_endpoint_up", **served) == 1
    assert value(samples, "certsmith_endpoint_up", **down) == 0
    assert value(samples, "certsmith_endpoint_drift", **served) == 0
    leaf = x509.load_pem_x509_certificate((VECTORS / "leaf.pem").read_bytes())
    days = value(samples, "certsmith_endpoint_days_to_expiry", **served)
    assert days is not None and abs(days - (leaf.not_valid_after_utc.timestamp() - now) / 86400) < 1
    assert value(samples, "certsmith_endpoint_days_to_expiry", **down) is None  # nothing was served
    handshake = value(samples, "certsmith_endpoint_handshake_seconds", **served)
    assert handshake is not None and 0 < handshake < 10
    for labels in (served, down):
        probed = value(samples, "certsmith_endpoint_probe_timestamp_seconds", **labels)
        assert probed is not None and now - 120 < probed <= now + 1


# -- renewal at risk and validation time, on the backend's own SQL ----------------------------------------------------------
def _row(n: int, now: datetime, *, kind: str = "PRIVATE", status: str = "ISSUED", days: float = 5.0,
         plan: dict[str, Any] | None = None, next_at: timedelta | None = None, renewal: dict[str, Any] | None = None,
         created: timedelta = timedelta(days=2), validated: timedelta | None = None) -> CertificateRow:
    """A certificate row as the services leave it (only the columns /metrics reads matter)."""
    ident = f"00000000-0000-4000-8000-{n:012d}"
    return CertificateRow(
        id=ident, arn=f"arn:aws:acm:us-east-1:123456789012:certificate/{ident}", account_id="123456789012",
        region="us-east-1", type=kind, status=status, domain_name=f"c{n}.risk.test", names=[f"c{n}.risk.test"],
        key_algorithm="EC_prime256v1", not_before=now - timedelta(days=1), not_after=now + timedelta(days=days),
        key_usages=[], extended_key_usages=[], options={}, export_option="DISABLED", exported=False, in_use_by=[],
        tags=[], key_pair_origin="AWS_MANAGED", created_at=now - created, renewal_plan=plan,
        next_renewal_at=None if next_at is None else now + next_at, renewal=renewal,
        validated_at=None if validated is None else now - created + validated, version=1)


def _plan(now: datetime, at: timedelta, **extra: Any) -> dict[str, Any]:
    return {"eligibility": "ELIGIBLE", "at": (now + at).isoformat(), "reason": "a third of its lifetime", **extra}


def _summary(status: str, reason: str | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {"RenewalStatus": status, "DomainValidationOptions": [], "UpdatedAt": "2030-01-01"}
    return summary | ({"RenewalStatusReason": reason} if reason else {})


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A migrated database of the backend under test, without a server: rows in states hard to reach through it."""
    url = backend_url() or f"sqlite:///{tmp_path_factory.mktemp('risk') / 'risk.db'}"
    migrate(url)
    db = Database(url)
    yield db
    db.dispose()


def test_the_renewal_at_risk_reasons(database: Database) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    hour = timedelta(hours=1)
    cases: list[tuple[str | None, dict[str, Any]]] = [
        (None, dict(plan=_plan(now, 3 * hour), next_at=3 * hour)),  # healthy: renewed in three hours
        (None, dict(plan=_plan(now, 3 * hour), next_at=3 * hour, renewal=_summary("SUCCESS"))),  # renewed before
        (None, dict(plan=_plan(now, 3 * hour, ari=None), next_at=-hour / 2)),  # a check half an hour late
        (None, dict(plan=_plan(now, -hour / 2, renewing="t"), renewal=_summary("PENDING_AUTO_RENEWAL"))),  # under way
        ("overdue", dict(plan=_plan(now, 3 * hour), next_at=-2 * hour)),  # no worker sweeps
        ("overdue", dict(plan=_plan(now, -2 * hour, renewing="t"), renewal=_summary("PENDING_AUTO_RENEWAL"))),
        ("overdue", dict(plan=_plan(now, -2 * hour))),  # claimed two hours ago, its job never ran
        ("imported", dict(kind="IMPORTED", plan={"eligibility": "INELIGIBLE", "reason": "imported"})),
        ("renewal_failed", dict(plan=_plan(now, -hour), renewal=_summary("FAILED", "OTHER"))),
        ("needs_action", dict(plan=_plan(now, -hour), renewal=_summary("PENDING_VALIDATION", "PENDING_DOMAIN_VALIDATION"))),
        ("needs_action", dict(plan=_plan(now, -hour), next_at=hour, renewal=_summary("PENDING_AUTO_RENEWAL", "OTHER"))),
        ("not_eligible", dict(plan={"eligibility": "INELIGIBLE", "reason": "StrictEligibility"})),
        (None, dict(plan=None)),  # stored before managed renewal: planned at the next start
        (None, dict(kind="IMPORTED", status="EXPIRED", days=-1)),
        (None, dict(status="REVOKED", plan={"eligibility": "INELIGIBLE"})),
        (None, dict(kind="AMAZON_ISSUED", plan=_plan(now, 20 * hour, ari={"start": "x", "end": "y"}), next_at=hour)),
    ]
    with database.transaction() as session:
        session.add_all([_row(100 + n, now, **fields) for n, (_, fields) in enumerate(cases)])
    found = {row[0]: row[-1] for row in series_rows(database, 1000, now)}
    want = {_row(100 + n, now).arn: reason for n, (reason, _) in enumerate(cases)}
    assert {arn: found.get(arn) for arn in want} == want


def test_validation_time_counts_first_requests_only(database: Database) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [_row(200, now, kind="AMAZON_ISSUED", validated=timedelta(seconds=40)),
            _row(201, now, kind="AMAZON_ISSUED", validated=timedelta(hours=2)),
            _row(202, now, kind="AMAZON_ISSUED", status="PENDING_VALIDATION", validated=timedelta(seconds=3)),
            _row(203, now, kind="AMAZON_ISSUED", validated=timedelta(days=1, hours=1)),  # a renewal's, after v1
            _row(204, now, kind="PRIVATE")]
    with database.transaction() as session:
        session.add_all(rows)
        session.add_all([CertificateVersionRow(certificate_id=r.id, version=1, action="ISSUANCE", serial="01",
                                               not_before=now, not_after=now, issued_at=now - timedelta(days=1),
                                               key_id="ab", issuer=None, certificate_pem="-")
                         for r in rows if r.status == "ISSUED"])
    families = {f.name: f for f in DatabaseCollector(database, FixedClock(now), 1000).collect()}
    samples = {(s.name, s.labels.get("le")): s.value for s in families["certsmith_validation_duration_seconds"].samples
               if s.labels["type"] == "AMAZON_ISSUED"}
    assert samples[("certsmith_validation_duration_seconds_count", None)] == 3
    assert samples[("certsmith_validation_duration_seconds_bucket", "5.0")] == 1
    assert samples[("certsmith_validation_duration_seconds_bucket", "60.0")] == 2
    assert samples[("certsmith_validation_duration_seconds_bucket", "+Inf")] == 3
    assert abs(samples[("certsmith_validation_duration_seconds_sum", None)] - (40 + 7200 + 3)) < 0.5
    assert not [s for s in families["certsmith_validation_duration_seconds"].samples if s.labels["type"] == "PRIVATE"]
