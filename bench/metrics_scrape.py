"""GET /metrics on a large store, and event rules matched per second.

For each backend (a SQLite file; PostgreSQL when --postgres or CERTSMITH_BENCH_PG_URL names a server where a
database may be created): migrate a new store and bulk-insert N ACM certificates (default 100,000: private,
public and imported; ISSUED, pending, expired, failed, revoked; a ~700-byte PEM body and a chain each, as real rows
carry), their versions (one in ten renewed), renewal summaries (some failed or waiting), 500 jobs, 10,000 event
deliveries and 1,000 probed endpoints. Then:

- through a real `certsmith serve --no-worker` on loopback (uvicorn, HTTP, the server's own process), a warm-up
  scrape and --scrapes timed ones: the median wall time seen by the client, and the bytes of a page;
- in this process, on the same store (median of the same number of runs): the aggregate families through the
  client library (``generate_latest`` of certsmith's collector), and the per-certificate series written directly
  (certsmith's way) against the same rows built as ``GaugeMetricFamily`` samples and formatted by ``generate_latest``
  (the client library's way).

Last, without a database: ``RuleMatcher`` with --rules EventBridge patterns (sources, detail-types, prefixes,
numeric ranges, anything-but, wildcards) against --events events, against the plain loop over every rule's
``EventPattern.matches`` (the peer: what a dispatcher without an index does).

Usage: python bench/metrics_scrape.py [--size 100000] [--scrapes 5] [--postgres URL] [--rules 1000] [--events 20000]
       [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
from databases import pg_database
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from renewal_sweep import naive, pem_pair
from sqlalchemy import select

from certsmith.domain.clock import SystemClock
from certsmith.domain.event_patterns import RuleMatcher, compile_pattern
from certsmith.metrics import Metrics
from certsmith.metrics.certificates import CHUNK, DAYS_TO_EXPIRY, NOT_AFTER, certificate_series
from certsmith.metrics.collector import DatabaseCollector
from certsmith.metrics.endpoints import endpoint_series
from certsmith.metrics.sql import epoch_seconds, issuer_label
from certsmith.store.database import Database, migrate
from certsmith.store.tables import CertificateRow
from certsmith.testing.server import start_server

GOAL_SECONDS = 0.5
ACCOUNT, REGION = "123456789012", "us-east-1"
STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DATETIME on SQLite
CERT_COLUMNS = ("id", "arn", "account_id", "region", "type", "status", "domain_name", "names", "key_algorithm",
                "authority_arn", "serial", "subject", "issuer", "signature_algorithm", "not_before", "not_after",
                "certificate_pem", "chain_pem", "key_usages", "extended_key_usages", "options", "export_option",
                "exported", "in_use_by", "tags", "key_pair_origin", "created_at", "issued_at", "issuer_name", "renewal",
                "version")
VERSION_COLUMNS = ("certificate_id", "version", "action", "serial", "not_before", "not_after", "issued_at", "key_id",
                   "issuer", "certificate_pem")
JOB_COLUMNS = ("kind", "payload", "state", "run_after", "attempts", "max_attempts", "created_at", "updated_at")
DELIVERY_COLUMNS = ("outbox_id", "target_id", "account_id", "state", "attempts", "next_attempt_at", "created_at")
ENDPOINT_COLUMNS = ("id", "account_id", "region", "host", "port", "server_name", "certificate_arn", "interval_seconds",
                    "created_at", "next_probe_at", "status", "probed_at", "handshake_ms", "served_serial",
                    "served_not_after", "hostname_match", "trusted")
PEM, CHAIN = pem_pair()  # the bodies every issued row repeats
CAS = [f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/{uuid.UUID(int=i + 1)}" for i in range(10)]


# -- the store ---------------------------------------------------------------------------------------------------------
def summary(status: str, reason: str | None = None) -> str:
    fields: dict[str, Any] = {"RenewalStatus": status, "DomainValidationOptions": [], "UpdatedAt": "2030-01-01T00:00:00Z"}
    if reason:
        fields["RenewalStatusReason"] = reason
    return json.dumps(fields)


def certificate(n: int, now: datetime) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """Row ``n`` of the store (COLUMNS order, datetimes naive UTC) and its versions."""
    ident = str(uuid.UUID(int=n + 1_000_000))
    kind, status, mix = "PRIVATE", "ISSUED", n % 100
    authority, issuer_name, issuer = CAS[n % len(CAS)], None, "certsmith bench CA"
    if 70 <= mix < 85 or mix in (94, 95, 97, 99):
        kind, authority, issuer_name, issuer = "AMAZON_ISSUED", None, ("letsencrypt", "zerossl")[n % 2], "Let's Encrypt"
    elif 85 <= mix < 94:
        kind, authority, issuer_name = "IMPORTED", None, None
        issuer = 'Quote "Org" \\ Back' if n % 1000 == 85 else f"Imported CA {n % 7}"
    status = {94: "PENDING_VALIDATION", 95: "PENDING_VALIDATION", 96: "EXPIRED", 97: "FAILED", 98: "REVOKED",
              99: "VALIDATION_TIMED_OUT"}.get(mix, status)
    issued = status in ("ISSUED", "EXPIRED", "REVOKED")
    not_after = now + timedelta(days=(-5 if status == "EXPIRED" else n * 7919 % 395), seconds=n % 86400)
    not_before = not_after - timedelta(days=395)
    created = not_before - timedelta(seconds=(0.004 if kind == "PRIVATE" else 30 + n % 600))
    renewal = None
    if kind != "IMPORTED" and issued:
        renewal = {1: summary("SUCCESS"), 2: summary("PENDING_AUTO_RENEWAL", "CA_UNREACHABLE"),
                   3: summary("PENDING_AUTO_RENEWAL"), 4: summary("FAILED", "OTHER"),
                   5: summary("PENDING_VALIDATION", "PENDING_DOMAIN_VALIDATION")}.get(n * 7 % 250)
    renewed = issued and kind != "IMPORTED" and n % 10 == 0
    domain = f"host{n}.metrics.bench.test" if n % 1000 != 86 else 'odd"name\\.bench.test'
    row = (ident, f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/{ident}", ACCOUNT, REGION, kind, status, domain,
           json.dumps([domain]), "EC_prime256v1", authority, f"{n:032x}", f"CN={domain}", issuer, "SHA256WITHECDSA",
           naive(not_before) if issued else None, naive(not_after) if issued else None, PEM if issued else None,
           CHAIN if issued else None, "[]", "[]", "{}", "DISABLED", False, "[]", "[]", "AWS_MANAGED", naive(created),
           naive(not_before) if issued else None, issuer_name, renewal, (2 if renewed else 1) if issued else 0)
    versions = []
    if issued:
        first = "IMPORT" if kind == "IMPORTED" else "ISSUANCE"
        versions.append((ident, 1, first, f"{n:032x}", naive(not_before), naive(not_after), naive(not_before),
                         "ab" * 32, issuer, PEM))
        if renewed:
            versions.append((ident, 2, "RENEWAL", f"{n:031x}f", naive(not_before), naive(not_after),
                             naive(not_before + timedelta(days=1)), "cd" * 32, issuer, PEM))
    return row, versions


def others(now: datetime) -> dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """Jobs, event deliveries and endpoints: the other tables /metrics reads."""
    kinds = ("renewal.check", "public.validate", "public.order", "acm.fill-key-pool", "pca.refresh-crl")
    jobs = [(kinds[i % 5], "{}", ("ready", "leased", "dead")[i % 3], naive(now - timedelta(seconds=i * 13 % 900)),
             i % 4, 8, naive(now), naive(now)) for i in range(500)]
    deliveries = [(i // 3, str(uuid.UUID(int=i % 40)), ACCOUNT, ("DELIVERED", "DELIVERED", "PENDING", "DEAD")[i % 4],
                   i % 5, naive(now), naive(now)) for i in range(10_000)]
    endpoints = [(str(uuid.UUID(int=i + 5)), ACCOUNT, REGION, f"web{i}.metrics.bench.test", 443,
                  f"web{i}.metrics.bench.test", f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/{uuid.UUID(int=i + 1_000_000)}",
                  3600, naive(now), naive(now + timedelta(hours=1)), ("OK", "OK", "DRIFT", "UNREACHABLE")[i % 4],
                  naive(now - timedelta(seconds=i)), 3.5 + i % 20, f"{i:032x}", naive(now + timedelta(days=i % 300)),
                  True, True) for i in range(1000)]
    return {"jobs": (JOB_COLUMNS, jobs), "event_deliveries": (DELIVERY_COLUMNS, deliveries),
            "endpoints": (ENDPOINT_COLUMNS, endpoints)}


def batches(size: int, now: datetime) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    rows: list[tuple[Any, ...]] = []
    versions: list[tuple[Any, ...]] = []
    for n in range(size):
        row, kept = certificate(n, now)
        rows.append(row)
        versions.extend(kept)
        if len(rows) == 10_000:
            yield rows, versions
            rows, versions = [], []
    yield rows, versions


@contextmanager
def raw(url: str) -> Iterator[Any]:
    """A raw autocommit connection (sqlite3 or psycopg)."""
    if url.startswith("sqlite"):
        import sqlite3

        with closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as conn:
            yield conn
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        yield conn


def load(url: str, size: int, now: datetime) -> float:
    """Migrate and fill the store; returns the seconds it took."""
    started = time.monotonic()
    migrate(url, REGION)
    tables: list[tuple[str, tuple[str, ...]]] = [("certificates", CERT_COLUMNS), ("certificate_versions", VERSION_COLUMNS)]
    with raw(url) as conn:
        sqlite = url.startswith("sqlite")
        if sqlite:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")

        def put(table: str, columns: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
            if sqlite:
                text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                conn.executemany(text, [tuple(v.strftime(STAMP) if isinstance(v, datetime) else v for v in row)
                                        for row in values])
                return
            with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)

        for rows, versions in batches(size, now):
            put(*tables[0], rows)
            put(*tables[1], versions)
        for table, (columns, values) in others(now).items():
            put(table, columns, values)
        if sqlite:
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
        else:
            conn.execute("VACUUM (ANALYZE)")
            conn.execute("CHECKPOINT")
    os.sync()  # the load written out before anything is measured
    return time.monotonic() - started


# -- measuring ---------------------------------------------------------------------------------------------------------
def median_of(runs: int, call: Callable[[], Any]) -> tuple[float, Any]:
    """The median seconds of ``runs`` calls and the last call's result."""
    seconds, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def via_client_library(database: Database, limit: int) -> bytes:
    """The per-certificate series as ``GaugeMetricFamily`` samples formatted by ``generate_latest`` (same query)."""
    c = CertificateRow
    query = (select(c.arn, c.domain_name, c.type, c.status, issuer_label(), epoch_seconds(c.not_after, database.is_sqlite))
             .where(c.not_after.is_not(None)).order_by(c.not_after).limit(limit))
    names = ["arn", "domain", "type", "status", "issuer"]
    not_after = GaugeMetricFamily(NOT_AFTER, "When the certificate expires.", labels=names)
    days = GaugeMetricFamily(DAYS_TO_EXPIRY, "Days until the certificate expires.", labels=names)
    stamp = time.time()
    with database.read() as session:
        for partition in session.connection().execution_options(yield_per=CHUNK).execute(query).partitions():
            for arn, domain, kind, status, issuer, at in partition:
                values = [arn, domain, kind, status, issuer]
                not_after.add_metric(values, at)
                days.add_metric(values, (at - stamp) / 86400)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([not_after, days]))
    return generate_latest(registry)


def in_process(url: str, runs: int, limit: int) -> dict[str, Any]:
    database = Database(url)
    clock = SystemClock()
    aggregates = CollectorRegistry(auto_describe=False)
    aggregates.register(DatabaseCollector(database, clock, limit))

    def rest() -> bytes:  # what /metrics computes beside the per-certificate series (on its second thread)
        return generate_latest(aggregates) + endpoint_series(database, clock.now()).encode()

    rest()  # warm-up: connections and statements ready
    figures: dict[str, Any] = {}
    figures["aggregates_seconds"], _ = median_of(runs, rest)
    figures["series_direct_seconds"], direct = median_of(runs, lambda: certificate_series(database, clock.now(), limit))
    figures["series_library_seconds"], library = median_of(runs, lambda: via_client_library(database, limit))
    metrics = Metrics(database, clock, token=None, certificate_series=limit, operations={})
    figures["page_seconds"], _ = median_of(runs, metrics.render)
    figures["series_samples"] = direct.count("\n") - 4
    library_samples = library.count(b"\n") - 4
    if library_samples != figures["series_samples"]:
        raise SystemExit(f"the two ways wrote {figures['series_samples']} and {library_samples} samples")
    database.dispose()
    return figures


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(folder: Path, url: str, runs: int) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    server = start_server(folder, url, ["--no-worker"])
    try:
        page = f"{server.endpoint}/metrics"
        with httpx.Client(timeout=120) as client:
            for _ in range(2):  # warm-up: connections, statements, the database's caches
                client.get(page).raise_for_status()
            cpu = cpu_seconds(server.process.pid)
            seconds, body = median_of(runs, lambda: client.get(page).raise_for_status().content)
            cpu = (cpu_seconds(server.process.pid) - cpu) / runs
        errors = server.errors()
    finally:
        server.stop()
    if errors:
        raise SystemExit("the server logged errors:\n" + "\n".join(errors))
    return {"scrape_seconds": seconds, "server_cpu_seconds": cpu, "bytes": len(body),
            "series": body.count(b"\n" + DAYS_TO_EXPIRY.encode() + b"{"), "dropped": dropped_of(body)}


def dropped_of(body: bytes) -> float:
    line = next(line for line in body.splitlines() if line.startswith(b"certsmith_certificate_series_dropped "))
    return float(line.split()[1])


def scrapes(backend: str, url: str, size: int, runs: int, folder: Path) -> dict[str, Any]:
    """Load the store and scrape it over HTTP (checking the page's series)."""
    seconds = load(url, size, datetime.now(UTC))
    print(f"{backend}: {size:,} certificates loaded in {seconds:.1f} s", file=sys.stderr, flush=True)
    # In a fresh process: a client that has read and dropped many pages reads the next ones slower.
    child = subprocess.run([sys.executable, __file__, "--scrape-child", json.dumps(
        {"folder": str(folder / f"server-{backend}"), "url": url, "runs": runs})], capture_output=True, text=True,
        timeout=1800)
    if child.returncode != 0:
        raise SystemExit(f"{backend}: scraping failed:\n{child.stderr[-4000:]}")
    served: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    with_expiry = sum(1 for n in range(size) if n % 100 not in (94, 95, 97, 99))
    if served["series"] != min(with_expiry, 100_000) or served["dropped"] != max(0, with_expiry - 100_000):
        raise SystemExit(f"{backend}: expected {with_expiry} series, the page has {served['series']}")
    return {"size": size, "load_seconds": seconds, **served, "goal_met": served["scrape_seconds"] < GOAL_SECONDS}


# -- event rules ------------------------------------------------------------------------------------------------------
DETAIL_TYPES = ("ACM Certificate Available", "ACM Certificate Approaching Expiration", "ACM Certificate Expired",
                "ACM Certificate Renewal Action Required", "Certsmith Endpoint Drift", "Certsmith CRL Published")


def patterns(count: int, rng: random.Random) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for i in range(count):
        shape = i % 6
        if shape == 0:
            made.append({"source": ["aws.acm"], "detail-type": ["ACM Certificate Approaching Expiration"],
                         "detail": {"DaysToExpiry": [{"numeric": ["<=", rng.randint(1, 60)]}]}})
        elif shape == 1:
            made.append({"source": ["aws.acm"], "resources": [{"prefix": f"arn:aws:acm:{REGION}:{100000000000 + i % 97}"}]})
        elif shape == 2:
            made.append({"source": ["certsmith"], "detail-type": [{"prefix": "Certsmith Endpoint"}],
                         "detail": {"Host": [{"suffix": f".team{i % 50}.example.com"}]}})
        elif shape == 3:
            made.append({"account": [str(100000000000 + i % 97)],
                         "detail-type": [{"anything-but": ["ACM Certificate Available"]}]})
        elif shape == 4:
            made.append({"source": ["aws.acm"], "detail": {"CommonName": [{"wildcard": f"*.team{i % 50}.example.com"}],
                                                           "Action": ["RENEWAL", "ISSUANCE"]}})
        else:
            made.append({"source": ["aws.acm-pca", "certsmith"], "detail-type": ["Certsmith CRL Published"],
                         "region": [rng.choice(["us-east-1", "eu-west-1", "ap-south-1"])]})
    return made


def events(count: int, rng: random.Random) -> list[dict[str, Any]]:
    made = []
    for i in range(count):
        detail_type = DETAIL_TYPES[i % len(DETAIL_TYPES)]
        account = str(100000000000 + rng.randrange(97))
        team = rng.randrange(60)
        made.append({
            "version": "0", "id": str(uuid.UUID(int=i)), "detail-type": detail_type,
            "source": "certsmith" if detail_type.startswith("Certsmith") else "aws.acm", "account": account,
            "time": "2030-01-01T00:00:00Z", "region": rng.choice(["us-east-1", "eu-west-1"]),
            "resources": [f"arn:aws:acm:{REGION}:{account}:certificate/{uuid.UUID(int=i)}"],
            "detail": {"DaysToExpiry": rng.randrange(90), "CommonName": f"host{i}.team{team}.example.com",
                       "Action": rng.choice(["ISSUANCE", "RENEWAL", "IMPORT"]), "Host": f"web{i}.team{team}.example.com"},
        })
    return made


def rule_matching(rule_count: int, event_count: int) -> dict[str, Any]:
    rng = random.Random(14)
    compiled = [(i, compile_pattern(p)) for i, p in enumerate(patterns(rule_count, rng))]
    sample = events(event_count, rng)
    started = time.perf_counter()
    matcher = RuleMatcher(compiled)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    matched = [matcher.match(e) for e in sample]
    seconds = time.perf_counter() - started
    plain_sample = sample[: max(1, event_count // 20)]  # the plain loop is slow: a twentieth of the events
    started = time.perf_counter()
    plain = [[k for k, p in compiled if p.matches(e)] for e in plain_sample]
    plain_seconds = time.perf_counter() - started
    if [sorted(m) for m in matched[: len(plain)]] != [sorted(m) for m in plain]:
        raise SystemExit("RuleMatcher and the plain loop disagree")
    return {"rules": rule_count, "events": event_count, "build_seconds": build_seconds,
            "events_per_second": event_count / seconds, "plain_events_per_second": len(plain_sample) / plain_seconds,
            "matches_per_event": sum(map(len, matched)) / event_count}


# -- report -------------------------------------------------------------------------------------------------------------
def report(results: dict[str, dict[str, Any]], rules: dict[str, Any], runs: int) -> None:
    print(f"\nGET /metrics, median of {runs} scrapes (goal under {GOAL_SECONDS * 1000:.0f} ms)")
    lines: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("certificates", lambda f: format(f["size"], ",")),
        ("scrape over HTTP (certsmith serve)", lambda f: f"{f['scrape_seconds'] * 1000:.0f} ms"),
        ("  server CPU per scrape (both threads)", lambda f: f"{f['server_cpu_seconds'] * 1000:.0f} ms"),
        ("bytes per scrape", lambda f: f"{f['bytes'] / 1e6:.1f} MB"),
        ("per-certificate samples", lambda f: format(f["series_samples"], ",")),
        ("in process: the whole page (Metrics.render)", lambda f: f"{f['page_seconds'] * 1000:.0f} ms"),
        ("  aggregates and endpoints (second thread)", lambda f: f"{f['aggregates_seconds'] * 1000:.0f} ms"),
        ("  per-certificate series, written directly", lambda f: f"{f['series_direct_seconds'] * 1000:.0f} ms"),
        ("  the same through the client library", lambda f: f"{f['series_library_seconds'] * 1000:.0f} ms"),
        ("goal", lambda f: "met" if f["goal_met"] else "NOT met"),
    ]
    print("\n  " + " " * 44 + "".join(f"{backend:>14}" for backend in results))
    for label, shown in lines:
        print(f"  {label:44}" + "".join(f"{shown(f):>14}" for f in results.values()))
    print(f"\nevent rules: {rules['rules']:,} rules, {rules['events']:,} events, "
          f"{rules['matches_per_event']:.1f} matches per event")
    print(f"  RuleMatcher.match          {rules['events_per_second']:>12,.0f} events/s (index built in "
          f"{rules['build_seconds'] * 1000:.0f} ms)")
    print(f"  every EventPattern.matches {rules['plain_events_per_second']:>12,.0f} events/s "
          f"({rules['events_per_second'] / rules['plain_events_per_second']:.0f}x fewer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="certificates in the store")
    parser.add_argument("--scrapes", type=int, default=5, help="timed scrapes (and in-process runs); the median counts")
    parser.add_argument("--postgres", default=os.environ.get("CERTSMITH_BENCH_PG_URL"),
                        help="a PostgreSQL server where databases may be created (postgresql+psycopg://...); "
                             "default: CERTSMITH_BENCH_PG_URL")
    parser.add_argument("--rules", type=int, default=1000, help="event rules")
    parser.add_argument("--events", type=int, default=20_000, help="events matched against them")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--scrape-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scrape_child:
        spec = json.loads(args.scrape_child)
        print(json.dumps(over_http(Path(spec["folder"]), spec["url"], spec["runs"])))
        return
    if args.size < 100:
        parser.error("--size must be at least 100")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        stores = [("SQLite", f"sqlite:///{folder}/metrics.db")]
        if args.postgres:
            stores.append(("PostgreSQL", pg_database(args.postgres, "cs_metrics")))
        else:
            print("PostgreSQL: not measured (give --postgres or CERTSMITH_BENCH_PG_URL)", file=sys.stderr)
        try:
            # Every scrape over HTTP first: the in-process comparisons leave this (the client's) process a large heap,
            # which slows the client's reading of later pages.
            for backend, url in stores:
                results[backend] = scrapes(backend, url, args.size, args.scrapes, folder)
            for backend, url in stores:
                results[backend].update(in_process(url, args.scrapes, 100_000))
        finally:
            for backend, url in stores:
                if backend == "PostgreSQL":
                    drop(args.postgres, url)
    rules = rule_matching(args.rules, args.events)
    if args.json:
        print(json.dumps({"goal_seconds": GOAL_SECONDS, "scrapes": args.scrapes, "backends": results, "rules": rules},
                         indent=2))
    else:
        report(results, rules, args.scrapes)


def drop(server_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
