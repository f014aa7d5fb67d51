"""RequestCertificate latency: an ACM private certificate, with the key pool and without it.

One client sends RequestCertificate requests one after another (raw HTTP, signed once with SigV4 and
replayed: each makes a new certificate) to a `certsmith serve` of its own, for RSA_2048 keys (an RSA
CA signs them) and EC_prime256v1 keys (an EC CA signs them). After each answer it calls
DescribeCertificate, as boto3's certificate_validated waiter does first, and then polls it until the
certificate is ISSUED. It prints, per key algorithm and configuration:

  answer        RequestCertificate's round trip, p50 and p99
  first poll    how many certificates the first DescribeCertificate found ISSUED (the waiter returns
                at once) rather than PENDING_VALIDATION (the waiter sleeps 60 s)
  until ISSUED  from sending RequestCertificate to the DescribeCertificate that reads ISSUED

"pool" runs with key_pool_size = the number of requests, and waits until the worker has made that
many RSA_2048 keys, so every request finds one (the worker makes new ones meanwhile, as it would in
service); "no pool" runs with key_pool_size = 0. EC keys are never pooled (generating one costs
less than claiming one), so both EC rows measure the same path.

Usage: python bench/request_latency.py [--requests 300] [--pg-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import pg_database

from certsmith.testing.pki import root_ca
from certsmith.testing.server import RunningServer, start_server

CAS = {"RSA_2048": ("RSA_2048", "SHA256WITHRSA"), "EC_prime256v1": ("EC_prime256v1", "SHA256WITHECDSA")}


@dataclass
class Server:
    running: RunningServer
    database_url: str

    @property
    def endpoint(self) -> str:
        return self.running.endpoint

    def credentials(self) -> Credentials:
        return Credentials(*self.running.access_key)

    def client(self, service: str) -> Any:
        return self.running.client(service)

    def stop(self) -> None:
        self.running.stop()


def start(folder: Path, pool_size: int, database_url: str | None) -> Server:
    folder.mkdir(parents=True)
    config = folder / "certsmith.toml"
    config.write_text(f"key_pool_size = {pool_size}\nlog_level = \"warning\"\n")
    try:
        running = start_server(folder, database_url, ["--config", str(config)])
    except RuntimeError as error:
        raise SystemExit(str(error)) from None
    return Server(running, database_url or f"sqlite:///{running.data_dir / 'certsmith.db'}")


def signed(server: Server, operation: str, request: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(request).encode()
    aws = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"CertificateManager.{operation}"})
    SigV4Auth(server.credentials(), "acm", "us-east-1").add_auth(aws)
    return body, dict(aws.headers.items())


def call(http: httpx.Client, server: Server, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    body, headers = signed(server, operation, request)
    response = http.post(server.endpoint + "/", content=body, headers=headers)
    if response.status_code != 200:
        raise SystemExit(f"{operation} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def wait_for_spare_keys(server: Server, algorithm: str, count: int) -> None:
    engine = create_engine(server.database_url)
    deadline = time.monotonic() + 600
    try:
        while True:
            with engine.connect() as connection:
                have = connection.execute(text("SELECT count(*) FROM key_pool WHERE key_algorithm = :a"),
                                          {"a": algorithm}).scalar_one()
            if have >= count:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker made {have} of {count} {algorithm} keys in 10 minutes")
            time.sleep(0.1)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Row:
    answers_ms: list[float]
    issued_ms: list[float]
    issued_at_first_poll: int


def measure(server: Server, ca: str, algorithm: str, requests: int) -> Row:
    """Sequential requests: RequestCertificate, DescribeCertificate, and polls until ISSUED."""
    body, headers = signed(server, "RequestCertificate", {
        "DomainName": "latency.internal.test", "CertificateAuthorityArn": ca, "KeyAlgorithm": algorithm})
    answers, issued, first = [], [], 0
    with httpx.Client(timeout=30) as http:
        for _ in range(requests):
            started = time.perf_counter()
            response = http.post(server.endpoint + "/", content=body, headers=headers)
            answered = time.perf_counter()
            if response.status_code != 200:
                raise SystemExit(f"RequestCertificate answered {response.status_code}: {response.text}")
            arn = response.json()["CertificateArn"]
            status = call(http, server, "DescribeCertificate", {"CertificateArn": arn})["Certificate"]["Status"]
            first += status == "ISSUED"
            while status == "PENDING_VALIDATION":
                time.sleep(0.002)
                status = call(http, server, "DescribeCertificate", {"CertificateArn": arn})["Certificate"]["Status"]
            if status != "ISSUED":
                raise SystemExit(f"certificate {arn} is {status}")
            answers.append((answered - started) * 1000)
            issued.append((time.perf_counter() - started) * 1000)
    return Row(answers, issued, first)


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def run_configuration(folder: Path, pooled: bool, args: argparse.Namespace) -> dict[str, Row]:
    database_url = pg_database(args.pg_url, "cs_latency") if args.pg_url else None
    server = start(folder, args.requests if pooled else 0, database_url)
    try:
        pca = server.client("acm-pca")
        cas = {algorithm: root_ca(pca, f"Latency {algorithm} Root", key_algorithm=key, signing=signing)
               for algorithm, (key, signing) in CAS.items()}
        if pooled:
            wait_for_spare_keys(server, "RSA_2048", args.requests)
        rows = {}
        # EC first: after the RSA row the worker makes the pool's keys again, which would share the CPU with it.
        for algorithm in sorted(cas, key=lambda name: name != "EC_prime256v1"):
            measure(server, cas[algorithm], algorithm, min(10, args.requests))  # warm up: connections, CA contexts
            if pooled and algorithm == "RSA_2048":
                wait_for_spare_keys(server, "RSA_2048", args.requests)  # the warm-up's keys are made again
            rows[algorithm] = measure(server, cas[algorithm], algorithm, args.requests)
        return rows
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per key algorithm and setting")
    parser.add_argument("--pg-url", help="run certsmith on PostgreSQL: a new database on this server per setting "
                                         "(a SQLAlchemy URL, postgresql+psycopg://...)")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be 1 or more")
    backend = "PostgreSQL" if args.pg_url else "SQLite"
    with tempfile.TemporaryDirectory(prefix="certsmith-latency-") as tmp:
        results = {label: run_configuration(Path(tmp) / label.replace(" ", "_"), label == "pool", args)
                   for label in ("pool", "no pool")}
    print(f"RequestCertificate, one client, {args.requests} sequential requests per row ({backend}, "
          f"{os.cpu_count()} CPUs)")
    for algorithm in CAS:
        for label, rows in results.items():
            row = rows[algorithm]
            answer_p50, answer_p99 = percentiles(row.answers_ms)
            issued_p50, issued_p99 = percentiles(row.issued_ms)
            print(f"  {algorithm:<14} {label:<8}: answer p50 {answer_p50:6.2f} ms  p99 {answer_p99:6.2f} ms   "
                  f"ISSUED at the first poll {row.issued_at_first_poll}/{len(row.answers_ms)}   "
                  f"until ISSUED p50 {issued_p50:6.2f} ms  p99 {issued_p99:6.2f} ms")


if __name__ == "__main__":
    main()
