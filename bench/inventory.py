"""Latency of the ACM inventory calls with 100,000 certificates in the store, on SQLite and PostgreSQL.

For each database: start `certsmith serve`, load N certificates straight into its database (70 %
RSA_2048, 30 % EC_prime256v1; a few hundred FAILED; spread over a year of CreatedAt), then time
DescribeCertificate, the first ListCertificates page (MaxItems=100, the default RSA filter), and a
filtered page (Includes.keyTypes=EC_prime256v1, CertificateStatuses=ISSUED), each request signed
with SigV4 once and sent again and again over one HTTP connection (the client is not what is
measured). Prints the median and p99 in milliseconds.

Usage: python bench/inventory.py [--count 100000] [--requests 300] [--pg-url postgresql+psycopg://...]
(PostgreSQL is measured when --pg-url or CERTSMITH_TEST_PG_URL names a server where a database
may be created.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from databases import pg_database
from sqlalchemy import create_engine, insert, text

from certsmith.domain.acm import certificate_facts
from certsmith.store.tables import Base
from certsmith.testing.server import RunningServer as Server
from certsmith.testing.server import start_server

VECTORS = ROOT / "tests" / "vectors"
TARGET_MS = 20.0


def signed(server: Server, operation: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    access, secret = server.access_key
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"CertificateManager.{operation}"})
    SigV4Auth(Credentials(access, secret), "acm", "us-east-1").add_auth(request)
    return data, dict(request.headers.items())


def load(url: str, account: str, count: int) -> str:
    """Insert ``count`` certificates for ``account``; returns one ARN to describe."""
    from cryptography import x509

    samples = {}
    for algorithm, folder in (("RSA_2048", "rsa"), ("EC_prime256v1", "ec")):
        pem = (VECTORS / folder / "leaf.pem").read_text()
        samples[algorithm] = (pem, certificate_facts(x509.load_pem_x509_certificate(pem.encode())))
    table = Base.metadata.tables["certificates"]
    engine = create_engine(url)
    start = datetime.now(UTC) - timedelta(days=365)
    arn_of_one = ""
    batch: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for index in range(count):
            algorithm = "EC_prime256v1" if index % 10 < 3 else "RSA_2048"
            pem, facts = samples[algorithm]
            ident = str(uuid.uuid4())
            arn = f"arn:aws:acm:us-east-1:{account}:certificate/{ident}"
            arn_of_one = arn_of_one or arn
            failed = index % 250 == 0
            name = f"host{index}.inventory.test"
            batch.append({
                "id": ident, "arn": arn, "account_id": account, "region": "us-east-1", "type": "PRIVATE",
                "status": "FAILED" if failed else "ISSUED", "domain_name": name, "names": [name, f"www.{name}"],
                "key_algorithm": algorithm, "authority_arn": None, "serial": None if failed else facts.serial,
                "subject": None if failed else f"CN={name}", "issuer": None if failed else facts.issuer,
                "signature_algorithm": None if failed else facts.signature_algorithm,
                "not_before": None if failed else facts.not_before, "not_after": None if failed else facts.not_after,
                "certificate_pem": None if failed else pem, "chain_pem": None, "sealed_key": None,
                "key_usages": [] if failed else facts.key_usages,
                "extended_key_usages": [] if failed else facts.extended_key_usages,
                "options": {"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED"},
                "export_option": "DISABLED", "exported": False, "in_use_by": [], "tags": [],
                "key_pair_origin": "AWS_MANAGED", "failure_reason": "PCA_INVALID_STATE" if failed else None,
                "renewal": None, "revoked_at": None, "revocation_reason": None, "idempotency_token": None,
                "created_at": start + timedelta(seconds=index * 300), "issued_at": None, "imported_at": None})
            if len(batch) == 5000:
                connection.execute(insert(table), batch)
                batch = []
        if batch:
            connection.execute(insert(table), batch)
    engine.dispose()
    return arn_of_one


def measure(server: Server, operation: str, body: dict[str, Any], requests: int) -> tuple[float, float]:
    data, headers = signed(server, operation, body)
    timings = []
    with httpx.Client(base_url=server.endpoint) as client:
        for attempt in range(requests + 20):
            started = time.perf_counter()
            response = client.post("/", content=data, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{operation} failed: {response.text}")
            if attempt >= 20:  # the first ones warm caches
                timings.append(elapsed)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def run(label: str, database_url: str | None, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder), database_url)
        try:
            url = database_url or f"sqlite:///{server.data_dir / 'certsmith.db'}"
            account = _account(url)
            started = time.monotonic()
            one = load(url, account, args.count)
            print(f"{label}: loaded {args.count} certificates in {time.monotonic() - started:.1f} s", flush=True)
            listed = server.client("acm").list_certificates(MaxItems=100)["CertificateSummaryList"]
            assert len(listed) == 100, len(listed)
            return {
                "DescribeCertificate": measure(server, "DescribeCertificate", {"CertificateArn": one}, args.requests),
                "ListCertificates, first page": measure(server, "ListCertificates", {"MaxItems": 100}, args.requests),
                "ListCertificates, filtered page": measure(server, "ListCertificates", {
                    "MaxItems": 100, "CertificateStatuses": ["ISSUED"],
                    "Includes": {"keyTypes": ["EC_prime256v1"]}}, args.requests),
            }
        finally:
            server.stop()


def _account(url: str) -> str:
    """The account the server made on its first start (the one its credentials file belongs to)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        account = str(connection.execute(text("SELECT id FROM accounts")).scalar_one())
    engine.dispose()
    return account


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pg-url", default=os.environ.get("CERTSMITH_TEST_PG_URL"))
    args = parser.parse_args()
    results = {"SQLite": run("SQLite", None, args)}
    if args.pg_url:
        results["PostgreSQL"] = run("PostgreSQL", pg_database(args.pg_url, "cs_inventory"), args)
    else:
        print("PostgreSQL: not measured (give --pg-url or CERTSMITH_TEST_PG_URL)")
    print(f"\nlatency in ms with {args.count} certificates ({args.requests} requests each, after 20 to warm up):")
    for database, figures in results.items():
        for operation, (median, p99) in figures.items():
            print(f"  {database:10} {operation:34} median {median:7.2f}   p99 {p99:7.2f}")
    first_page = results["SQLite"]["ListCertificates, first page"][0]
    verdict = "met" if first_page < TARGET_MS else "NOT met"
    print(f"\ngoal: first ListCertificates page under {TARGET_MS:.0f} ms median on SQLite: {verdict} ({first_page:.2f} ms)")


if __name__ == "__main__":
    main()
