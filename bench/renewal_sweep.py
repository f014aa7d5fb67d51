"""The renewal scheduler's sweep on a large store: time and memory to find and enqueue the due certificates.

For each backend (a SQLite file; PostgreSQL when --postgres or CERTSMITH_BENCH_PG_URL names a server where a
database may be created) and each size N: migrate a new store, bulk-insert N ACM certificate rows (a ~700-byte
PEM body and a chain, a renewal plan, the columns a row carries), 1 % of them due, the rest planned over the
next 13 months, then time `RenewalScheduler.sweep` (the call every worker makes each renewal_sweep_seconds):
it claims the due rows and inserts one "renewal.check" job each.

Each measurement runs in a fresh process (its memory is the call's alone) after a warm-up sweep
that finds nothing (connection and statements ready, as in a running worker; the OS cache is warm after the
load, which is written out first). The store is put back between runs (the claimed times restored, the jobs
deleted, a checkpoint: the sweep's writes are the first since one, as for rows untouched for months). Reported:
the median time with 1 % due, the time per due certificate, the time with a fixed number due (the smallest
size's 1 %: what the rows not due cost), the peak of Python allocations during the call (tracemalloc, in a
run of its own, as tracemalloc slows the code) and the growth of the peak resident set. That peak is the one
ru_maxrss reports, read as VmHWM after resetting it (/proc/self/clear_refs): ru_maxrss itself is kept across
fork and exec on Linux, so a child would report the loading parent's peak (over 1 GB) and a delta of zero.
When the sweep misses the goal (under 1 s, under 200 MB) it is profiled with cProfile (or with --profile).

Usage: python bench/renewal_sweep.py [--sizes 100000,1000000] [--runs 3] [--postgres URL] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from databases import pg_database

from certsmith.store.database import migrate

GOAL_SECONDS = 1.0
GOAL_BYTES = 200 * 1024 * 1024
BASE = datetime(2030, 1, 1, tzinfo=UTC)  # the due rows are due 1 s, 2 s ... after this; the others a day on
ACCOUNT, REGION = "123456789012", "us-east-1"
STRIDE = 7919  # a prime: rank = k * STRIDE mod due spreads the due times over the due rows in no order
PLAN_HEAD = '{"eligibility": "ELIGIBLE", "at": "'
PLAN_TAIL = ('", "reason": "60 days before expiry (lifetime over 180 days), spread by 2 days 3 hours", '
             '"source": "default", "strict": false, "reuse_key": false}')
COLUMNS = ("id", "arn", "account_id", "region", "type", "status", "domain_name", "names", "key_algorithm",
           "authority_arn", "serial", "subject", "issuer", "signature_algorithm", "not_before", "not_after",
           "certificate_pem", "chain_pem", "key_usages", "extended_key_usages", "options", "export_option", "exported",
           "in_use_by", "tags", "key_pair_origin", "created_at", "issued_at", "next_renewal_at", "renewal_plan",
           "next_notice_at", "version")


def pem_pair() -> tuple[str, str]:
    """A leaf (EC P-256, two names, ~700 bytes of PEM) and its CA's certificate: the bodies every row repeats."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name.from_rfc4514_string("CN=Bench Root,O=certsmith bench")
    start = BASE - timedelta(days=335)

    def build(subject: x509.Name, public: Any, ca: bool, names: list[str]) -> str:
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + timedelta(days=395))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()

    leaf = build(x509.Name.from_rfc4514_string("CN=host.renewal.bench.test"), key.public_key(), False,
                 ["host.renewal.bench.test", "www.host.renewal.bench.test"])
    return leaf, build(ca_name, ca_key.public_key(), True, [])


def due_count(size: int) -> int:
    return max(1, size // 100)


def rows(size: int, pem: str, chain: str) -> Iterator[tuple[Any, ...]]:
    """``size`` certificate rows as tuples in COLUMNS order (datetimes naive UTC); every 100th is due."""
    due = due_count(size)
    stride = next(s for s in range(STRIDE, STRIDE + due + 2) if math.gcd(s, due) == 1)  # distinct due times
    ca = f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/{uuid.UUID(int=1)}"
    for n in range(size):
        ident = str(uuid.uuid4())
        name = f"host{n}.renewal.bench.test"
        if n % 100 == 0 and n // 100 < due:
            renew_at = BASE + timedelta(seconds=(n // 100) * stride % due + 1)
            not_after = BASE + timedelta(days=60)
        else:
            renew_at = BASE + timedelta(days=1, seconds=n * STRIDE % 34_000_000)
            not_after = renew_at + timedelta(days=60)
        not_before = not_after - timedelta(days=395)
        plan = PLAN_HEAD + renew_at.isoformat() + PLAN_TAIL
        yield (ident, f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/{ident}", ACCOUNT, REGION, "PRIVATE", "ISSUED",
               name, f'["{name}", "www.{name}"]', "EC_prime256v1", ca, f"{n:032x}", f"CN={name}",
               "CN=Bench Root,O=certsmith bench", "SHA256WITHECDSA", naive(not_before), naive(not_after), pem, chain,
               '[{"Name": "DIGITAL_SIGNATURE"}]',
               '[{"Name": "TLS_WEB_SERVER_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.1"}]',
               '{"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED"}', "DISABLED", False,
               "[]", "[]", "AWS_MANAGED", naive(not_before), naive(not_before), naive(renew_at), plan,
               naive(not_after - timedelta(days=45)), 1)


def naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


@dataclass
class Store:
    """One migrated store of ``size`` certificates: a SQLite file or a PostgreSQL database."""

    backend: str
    size: int
    url: str

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A raw connection in autocommit mode (sqlite3 or psycopg), closed when the block ends."""
        if self.backend == "SQLite":
            import sqlite3

            with closing(sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)) as conn:
                yield conn
            return
        import psycopg

        with psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            yield conn

    def load(self, pem: str, chain: str) -> float:
        """Migrate and fill the store; returns the seconds it took. The due rows' times are kept in bench_due."""
        started = time.monotonic()
        migrate(self.url, REGION)
        with self.connect() as conn:
            if self.backend == "SQLite":
                self._load_sqlite(conn, pem, chain)
            else:
                with conn.cursor().copy(f"COPY certificates ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows(self.size, pem, chain):
                        copy.write_row(row)
                conn.execute("CREATE TABLE bench_due AS SELECT id, next_renewal_at AS at FROM certificates "
                             "WHERE next_renewal_at < %s", (naive(BASE + timedelta(days=1)),))
                conn.execute("VACUUM (ANALYZE) certificates")  # what autovacuum does after a load
                conn.execute("CHECKPOINT")
        os.sync()  # the load's gigabytes written out before anything is measured
        return time.monotonic() - started

    def _load_sqlite(self, conn: Any, pem: str, chain: str) -> None:
        conn.execute("PRAGMA journal_mode=OFF")  # a new file: nothing to roll back; WAL (certsmith's mode) after
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        insert = f"INSERT INTO certificates ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        stamp = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DATETIME on SQLite
        batch: list[tuple[Any, ...]] = []
        conn.execute("BEGIN")
        for row in rows(self.size, pem, chain):
            batch.append(tuple(v.strftime(stamp) if isinstance(v, datetime) else v for v in row))
            if len(batch) == 10000:
                conn.executemany(insert, batch)
                batch = []
        conn.executemany(insert, batch)
        conn.execute("CREATE TABLE bench_due AS SELECT id, next_renewal_at AS at FROM certificates "
                     "WHERE next_renewal_at < ?", ((BASE + timedelta(days=1)).replace(tzinfo=None).strftime(stamp),))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")

    def restore(self) -> None:
        """Undo a sweep: the claimed rows due again, no jobs; then checkpoint, so that the next sweep writes its
        pages as the first change since a checkpoint (PostgreSQL: full-page images), as for rows untouched for
        months."""
        with self.connect() as conn:
            conn.execute("UPDATE certificates SET next_renewal_at = (SELECT at FROM bench_due "
                         "WHERE bench_due.id = certificates.id) WHERE next_renewal_at IS NULL")
            conn.execute("DELETE FROM jobs")
            if self.backend == "PostgreSQL":
                conn.execute("VACUUM certificates, jobs")
                conn.execute("CHECKPOINT")
            else:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.sync()


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One sweep in this (fresh) process: ``spec`` = url, claim (how many are due), mode (time/trace/profile)."""
    from sqlalchemy import func, select

    from certsmith.domain.clock import FixedClock
    from certsmith.services.renewal.scheduler import RenewalScheduler
    from certsmith.store.database import Database
    from certsmith.store.jobs import JobQueue
    from certsmith.store.tables import JobRow
    from certsmith.worker.loop import LocalSignal

    now = BASE + timedelta(seconds=spec["claim"])
    database = Database(spec["url"])
    scheduler = RenewalScheduler(database, JobQueue(), FixedClock(now), LocalSignal())
    assert scheduler.sweep(now=BASE) == []  # warm-up: nothing is due yet
    spent = time_statements(database.engine)
    gc.collect()
    result: dict[str, Any] = {}
    rss_before = reset_peak_rss()
    profiler = cProfile.Profile() if spec["mode"] == "profile" else None
    if spec["mode"] == "trace":
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    if profiler is not None:
        claimed = profiler.runcall(scheduler.sweep, now=now)
    else:
        claimed = scheduler.sweep(now=now)
    result["seconds"] = time.perf_counter() - started
    result["database_seconds"] = dict(spent)
    if spec["mode"] == "trace":
        result["peak_bytes"] = tracemalloc.get_traced_memory()[1] - traced_before
        tracemalloc.stop()
    rss_after = peak_rss()
    result["rss_growth_bytes"], result["rss_bytes"] = rss_after - rss_before, rss_after
    with database.read() as session:
        jobs = session.scalar(select(func.count()).select_from(JobRow).where(JobRow.kind == "renewal.check"))
    result.update(claimed=len(claimed), jobs=jobs)
    if profiler is not None:
        text = StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
        result["profile"] = text.getvalue()
    database.dispose()
    return result


def _proc_status(field: str) -> int | None:
    """A size from /proc/self/status, in bytes (None where there is no /proc)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":")), None)


def reset_peak_rss() -> int:
    """Start the peak resident set anew at the current one; returns it (bytes)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux 4.0+)
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return _proc_status("VmRSS") or 0


def peak_rss() -> int:
    """The peak resident set since reset_peak_rss (bytes)."""
    return _proc_status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_statements(engine: Any) -> dict[str, float]:
    """From now on, the seconds ``engine``'s connections spend in the driver and the database, by the statement's
    first word (SELECT, UPDATE, INSERT), and in COMMIT."""
    from sqlalchemy import event

    spent: dict[str, float] = {}

    def add(kind: str, seconds: float) -> None:
        spent[kind] = spent.get(kind, 0.0) + seconds

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        add(statement.split(None, 1)[0].upper(), time.perf_counter() - conn.info.pop("bench_started"))

    commit = engine.dialect.do_commit

    def timed_commit(dbapi_connection: Any) -> None:
        started = time.perf_counter()
        commit(dbapi_connection)
        add("COMMIT", time.perf_counter() - started)

    engine.dialect.do_commit = timed_commit
    return spent


def measure(store: Store, claim: int, mode: str) -> dict[str, Any]:
    run = subprocess.run([sys.executable, __file__, "--child", json.dumps({"url": store.url, "claim": claim,
                                                                           "mode": mode})],
                         capture_output=True, text=True, timeout=1800)
    store.restore()
    if run.returncode != 0:
        raise SystemExit(f"{store.backend} N={store.size}: the sweep failed:\n{run.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    if result["claimed"] != claim or result["jobs"] != claim:
        raise SystemExit(f"{store.backend} N={store.size}: expected {claim} claimed and enqueued, got {result}")
    return result


def bench_store(store: Store, fixed: int, runs: int, profile: bool) -> dict[str, Any]:
    due = due_count(store.size)
    timed = sorted((measure(store, due, "time") for _ in range(runs)), key=lambda r: r["seconds"])
    middle = timed[(len(timed) - 1) // 2]
    figures: dict[str, Any] = {
        "size": store.size, "due": due, "seconds": middle["seconds"], "database_seconds": middle["database_seconds"],
        "rss_growth_bytes": max(r["rss_growth_bytes"] for r in timed), "rss_bytes": max(r["rss_bytes"] for r in timed),
        "peak_bytes": measure(store, due, "trace")["peak_bytes"],
        "fixed_due": fixed, "fixed_seconds": statistics.median(measure(store, fixed, "time")["seconds"]
                                                               for _ in range(runs))}
    figures["per_due_us"] = figures["seconds"] / due * 1e6
    figures["goal_met"] = (figures["seconds"] < GOAL_SECONDS and figures["peak_bytes"] < GOAL_BYTES
                           and figures["rss_growth_bytes"] < GOAL_BYTES)
    if profile or not figures["goal_met"]:
        figures["profile"] = measure(store, due, "profile")["profile"]
    return figures


def mb(value: float) -> str:
    return f"{value / 1024 / 1024:.1f} MB"


def report(results: dict[str, list[dict[str, Any]]], runs: int) -> None:
    print(f"\nrenewal sweep (RenewalScheduler.sweep): find the due certificates and enqueue one job each; "
          f"median of {runs} runs, goal under {GOAL_SECONDS:.0f} s and under {mb(GOAL_BYTES)}")
    for backend, figures in results.items():
        print(f"\n  {backend:44}" + "".join(f"{'N = ' + format(f['size'], ','):>16}" for f in figures))
        lines: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
            ("due (1 %)", lambda f: format(f["due"], ",")),
            ("sweep, 1 % due", lambda f: f"{f['seconds']:.3f} s"),
            ("per due certificate", lambda f: f"{f['per_due_us']:.0f} us"),
            *((f"  of which {kind} (driver, database)", lambda f, kind=kind: f"{f['database_seconds'].get(kind, 0):.3f} s")
              for kind in ("SELECT", "UPDATE", "INSERT", "COMMIT")),
            ("  of which Python (certsmith, SQLAlchemy)",
             lambda f: f"{f['seconds'] - sum(f['database_seconds'].values()):.3f} s"),
            (f"sweep, {figures[0]['fixed_due']:,} due", lambda f: f"{f['fixed_seconds']:.3f} s"),
            ("peak Python memory (tracemalloc)", lambda f: mb(f["peak_bytes"])),
            ("peak RSS growth (VmHWM, ru_maxrss's peak)", lambda f: mb(f["rss_growth_bytes"])),
            ("peak RSS of the process", lambda f: mb(f["rss_bytes"])),
            ("goal", lambda f: "met" if f["goal_met"] else "NOT met"),
        ]
        for label, shown in lines:
            print(f"  {label:44}" + "".join(f"{shown(f):>16}" for f in figures))
    print("\n  (driver, database): inside the database driver's execute and commit calls; SQLite hands over the "
          "rows of a SELECT while they are read, so reading them counts as Python there.")
    for backend, figures in results.items():
        for f in figures:
            if "profile" in f:
                print(f"\nprofile of {backend}, N = {f['size']:,} ({f['due']:,} due), by own time:\n{f['profile']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="store sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each sweep; the median is reported")
    parser.add_argument("--postgres", default=os.environ.get("CERTSMITH_BENCH_PG_URL"),
                        help="a PostgreSQL server where databases may be created (postgresql+psycopg://...); "
                             "default: CERTSMITH_BENCH_PG_URL")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", action="store_true", help="profile every sweep, not only one missing the goal")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    if not sizes or sizes[0] < 100:
        parser.error("--sizes: every size must be at least 100")
    fixed = due_count(sizes[0])
    pem, chain = pem_pair()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        backends: list[tuple[str, Callable[[int], str]]] = [("SQLite", lambda size: f"sqlite:///{folder}/store{size}.db")]
        if args.postgres:
            backends.append(("PostgreSQL", lambda size: pg_database(args.postgres, "cs_renewal_sweep")))
        else:
            print("PostgreSQL: not measured (give --postgres or CERTSMITH_BENCH_PG_URL)", file=sys.stderr)
        for backend, url_of in backends:
            for size in sizes:
                store = Store(backend, size, url_of(size))
                try:
                    seconds = store.load(pem, chain)
                    print(f"{backend}: {size:,} certificates loaded in {seconds:.1f} s", file=sys.stderr, flush=True)
                    results.setdefault(backend, []).append(bench_store(store, fixed, args.runs, args.profile))
                finally:
                    drop(store, args.postgres)
    if args.json:
        print(json.dumps({"goal": {"seconds": GOAL_SECONDS, "bytes": GOAL_BYTES}, "runs": args.runs,
                          "backends": results}, indent=2))
    else:
        report(results, args.runs)


def drop(store: Store, server_url: str | None) -> None:
    """Remove the store (a SQLite file goes with its folder; a PostgreSQL database is dropped)."""
    if store.backend == "SQLite":
        for suffix in ("", "-wal", "-shm"):
            Path(store.url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    import psycopg

    assert server_url is not None
    name = store.url.rsplit("/", 1)[1]
    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
