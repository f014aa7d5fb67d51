"""Certificates per second: certsmith's IssueCertificate API against `cfssl serve`.

Both are driven by the same load generator (wrk) replaying one prepared request for a few seconds
from several connections: for certsmith an IssueCertificate request signed once with SigV4 (valid
for 15 minutes), for cfssl a sign request (bench/cfssl_peer.py). Both sign a CSR for an EC P-256
key with an EC P-256 CA on this machine.

cfssl runs twice: its plain sign endpoint (no authentication, nothing stored), which is the
reference of the goal; and its authsign endpoint with its certificate database on SQLite, where it
authenticates each request and stores each certificate as certsmith does.

certsmith issues asynchronously (the API stores the request and a job; a worker signs), so its
figure counts certificates that reached ISSUED, from the first request to the last signature.
cfssl signs inside the request, so its figure is wrk's count of successful responses.

Beside the rates it prints the CPU time each server spent per certificate (all its processes, read
from /proc around the run), and the floors of bench/floors.py: what the cryptography, the HTTP
server and the storage of one issuance cost on this machine, each alone.

Usage: python bench/issue_throughput.py [--seconds 5] [--connections 16] [--threads 2] [--runs 1]
       [--pg-url postgresql+psycopg://...]  (certsmith on PostgreSQL instead of SQLite)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cfssl_peer import CFSSL_CONFIGURATIONS, bench_cfssl
from databases import pg_database
from floors import crypto_floor, http_floor, storage_floor
from load import Result, lua_script, median, run_wrk, tree_cpu_seconds
from sqlalchemy import create_engine, text

from certsmith.testing.pki import make_csr, root_ca
from certsmith.testing.server import free_port, start_server


def instant(value: datetime | str) -> datetime:
    """A timestamp column's value: PostgreSQL gives datetimes, SQLite the text SQLAlchemy stored."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def postmaster_of(backend_pid: int) -> int:
    stat = Path(f"/proc/{backend_pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def measure_floors(folder: Path, csr: bytes, args: argparse.Namespace) -> dict[str, float]:
    body = json.dumps({"CertificateAuthorityArn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"
                       + "0" * 36, "Csr": base64.b64encode(csr).decode(),
                       "SigningAlgorithm": "SHA256WITHECDSA", "Validity": {"Type": "DAYS", "Value": 30}})

    def load(url: str, script: Path) -> int:
        requests, bad, _ = run_wrk(url, script, args.seconds, args.connections, args.threads)
        return requests - bad

    return {
        "pyca/cryptography: check the CSR, build and sign the certificate": crypto_floor(csr),
        "uvicorn: answer one POST with a minimal ASGI app": http_floor(folder / "http", free_port(), body, load,
                                                                     tree_cpu_seconds),
        "SQLite (raw sqlite3): certsmith's rows of one issuance": storage_floor(folder / "storage"),
    }


def bench_certsmith(tmp: Path, csr: bytes, args: argparse.Namespace, label: str, serve_args: list[str],
                    separate_worker: bool) -> Result:
    """One certsmith configuration: `certsmith serve <serve_args>`, with or without a `certsmith worker`."""
    folder = tmp / label.replace(" ", "_")
    folder.mkdir(parents=True)
    database_url = pg_database(args.pg_url, "cs_throughput") if args.pg_url else None
    server = start_server(folder, database_url, extra=serve_args)
    url = database_url or f"sqlite:///{server.data_dir / 'certsmith.db'}"
    worker = subprocess.Popen([sys.executable, "-m", "certsmith", "worker", "--data-dir", str(server.data_dir),
                               *(["--database-url", database_url] if database_url else [])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if separate_worker else None
    engine = create_engine(url)
    try:
        pca = server.client("acm-pca")
        ca = root_ca(pca, "Bench Root")
        access, secret = server.access_key
        body = json.dumps({"CertificateAuthorityArn": ca, "Csr": base64.b64encode(csr).decode(),
                           "SigningAlgorithm": "SHA256WITHECDSA", "Validity": {"Type": "DAYS", "Value": 30}})
        request = AWSRequest(method="POST", url=server.endpoint + "/", data=body.encode(), headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "ACMPrivateCA.IssueCertificate"})
        SigV4Auth(Credentials(access, secret), "acm-pca", "us-east-1").add_auth(request)
        check = httpx.post(server.endpoint + "/", content=body, headers=dict(request.headers.items()))
        assert check.status_code == 200, check.text
        script = tmp / "certsmith.lua"
        lua_script(script, "POST", body, {k: v for k, v in request.headers.items() if k.lower() != "content-length"})

        def counts() -> tuple[int, int]:
            with engine.connect() as conn:
                issued = conn.execute(text("SELECT count(*) FROM issued_certificates WHERE status='ISSUED'")).scalar_one()
                pending = conn.execute(text("SELECT count(*) FROM issued_certificates WHERE status='PENDING'")).scalar_one()
            return issued, pending

        processes = [server.process.pid] + ([worker.pid] if worker is not None else [])
        if database_url:  # PostgreSQL's own processes work for certsmith too: count their CPU
            with engine.connect() as conn:
                processes.append(postmaster_of(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()))
        before, _ = counts()
        cpu_before = sum(tree_cpu_seconds(pid) for pid in processes)
        started = time.monotonic()
        requests, bad, _ = run_wrk(server.endpoint + "/", script, args.seconds, args.connections, args.threads)
        while counts()[1] > 0:
            time.sleep(0.05)
        finished = time.monotonic()
        cpu = sum(tree_cpu_seconds(pid) for pid in processes) - cpu_before
        issued, _ = counts()
        with engine.connect() as conn:
            first, last = conn.execute(text("SELECT min(created_at), max(issued_at) FROM issued_certificates "
                                            "WHERE status='ISSUED' AND id > :before"), {"before": before}).one()
        span = (instant(last) - instant(first)).total_seconds()
        made = issued - before
        print(f"{label}: {requests} requests ({bad} non-2xx), {made} certificates issued; "
              f"first request to last signature {span:.2f} s (queue drained {finished - started:.2f} s after start); "
              f"{cpu:.2f} s of CPU")
        return Result(made / span, cpu / made * 1000)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait()
        server.stop()
        engine.dispose()


# (label, arguments of `certsmith serve`, whether a separate `certsmith worker` process runs beside it)
CONFIGURATIONS: list[tuple[str, list[str], bool]] = [
    ("certsmith serve (API and worker, one process)", [], False),
    ("certsmith serve --processes 2 (API and worker in each)", ["--processes", "2"], False),
    ("certsmith serve --no-worker + certsmith worker", ["--no-worker"], True),
    ("certsmith serve --processes 2 --no-worker + certsmith worker", ["--processes", "2", "--no-worker"], True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1, help="runs of every configuration; the median is reported")
    parser.add_argument("--pg-url", help="run certsmith on PostgreSQL: a new database on this server for each run "
                                         "(postgresql+psycopg://user@host:port/db); its CPU is counted too")
    args = parser.parse_args()
    for tool in ("wrk", "cfssl", "cfssljson"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install wrk golang-cfssl)")
    csr, _ = make_csr("bench.example.test", ["bench.example.test"])
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)
        floors = measure_floors(tmp / "floors", csr, args)  # first, while the machine is quiet
        cfssl_runs: dict[str, list[Result]] = {label: [] for label, _ in CFSSL_CONFIGURATIONS}
        runs: dict[str, list[Result]] = {label: [] for label, _, _ in CONFIGURATIONS}
        for number in range(args.runs):  # interleaved, so that a slow spell of the machine hits every one alike
            for label, variant in CFSSL_CONFIGURATIONS:
                cfssl_runs[label].append(bench_cfssl(tmp / f"run{number}", csr, args, label, variant, free_port()))
            for label, serve_args, separate in CONFIGURATIONS:
                runs[label].append(bench_certsmith(tmp / f"run{number}", csr, args, label, serve_args, separate))
    references = [(label, median(results)) for label, results in cfssl_runs.items()]
    (_, goal), (_, stored) = references
    results = [(label, median(results)) for label, results in runs.items()]
    cores = os.cpu_count() or 1
    print(f"\ncertificates per second, EC P-256 CA and key, {args.connections} connections, {args.seconds} s "
          f"({cores} cores; median of {args.runs} runs; certsmith on {'PostgreSQL' if args.pg_url else 'SQLite'}); "
          "CPU per certificate counts every process of the server:")
    for label, result in references:
        print(f"  {label:62}: {result.rate:8.1f}   CPU {result.cpu_ms:.3f} ms")
    for label, result in results:
        print(f"  {label:62}: {result.rate:8.1f}   CPU {result.cpu_ms:.3f} ms   ratio to cfssl {result.rate / goal.rate:.2f}"
              f" (to cfssl authenticating and storing {result.rate / stored.rate:.2f})")
    print("\nfloors: each part of issuing a certificate done alone, CPU per certificate (bench/floors.py):")
    for label, milliseconds in floors.items():
        print(f"  {label:62}: {milliseconds:.3f} ms")
    total = sum(floors.values())
    print(f"  {'together':62}: {total:.3f} ms, against cfssl's {goal.cpu_ms:.3f} ms for everything")


if __name__ == "__main__":
    main()
