"""Public issuance: wall time to ISSUED through certsmith and through lego, against the same Pebble and DNS.

Both run in one process tree on loopback: BIND holds the user's zone example.test (RFC 2136 + TSIG) and
forwards the validation zone to certsmith's DNS server; Pebble (no VA sleep, no nonce rejects, no authz
reuse) validates through BIND. The same N names (bench0.example.test ...) are issued:

  lego sequential   one `lego run` per name, one after another (lego writes the TXT record with RFC 2136)
  lego 4 parallel   the same, four at a time
  certsmith         N RequestCertificate calls submitted together, with the validation CNAMEs already in
                    place (added once, after a first round that is not timed), until every one is ISSUED

It prints each wall time and certsmith's speed-up over both lego runs.

Usage: python bench/public_issuance.py [--count 20] [--pg-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from certsmith.testing.bind import Bind, free_dns_port, start_bind
from certsmith.testing.lego import run_lego
from certsmith.testing.pebble import Pebble, start_pebble
from certsmith.testing.server import RunningServer, start_server

ZONE = "acme.test"


def _wait_issued(acm: Any, arns: list[str], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    pending = set(arns)
    while pending:
        for arn in list(pending):
            status = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            if status["Status"] == "ISSUED":
                pending.discard(arn)
            elif status["Status"] != "PENDING_VALIDATION":
                raise RuntimeError(f"{arn} is {status['Status']} ({status.get('FailureReason')})")
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} certificates not ISSUED within {seconds:.0f} s")
        time.sleep(0.02)


def _request_all(acm: Any, names: list[str]) -> list[str]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda name: acm.request_certificate(DomainName=name, KeyAlgorithm="EC_prime256v1")
                             ["CertificateArn"], names))


def certsmith_run(server: RunningServer, bind: Bind, names: list[str]) -> float:
    acm = server.client("acm", config=__import__("botocore.config").config.Config(max_pool_connections=16))
    first = _request_all(acm, names)  # learn each name's record and add it once: not timed
    for arn in first:
        record = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"][0]["ResourceRecord"]
        bind.set_cname(record["Name"].rstrip("."), record["Value"].rstrip("."))
    _wait_issued(acm, first)
    started = time.monotonic()
    _wait_issued(acm, _request_all(acm, names))
    return time.monotonic() - started


def lego_run(home: Path, pebble: Pebble, bind: Bind, names: list[str], parallel: int) -> float:
    ca_bundle = home / "pebble-tls.pem"
    ca_bundle.write_text(pebble.tls_cert_pem)

    def one(name: str) -> None:
        folder = home / f"lego-{parallel}-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        run_lego(folder, directory_url=pebble.directory_url, ca_bundle=ca_bundle, bind=bind, domains=[name])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, names))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="certificates per run")
    parser.add_argument("--pg-url", help="run certsmith on this PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    for binary in ("named", "nsupdate", "pebble", "lego"):
        if shutil.which(binary) is None:
            sys.exit(f"{binary} is not installed (scripts/test.sh installs it)")
    home = Path(tempfile.mkdtemp(prefix="certsmith-public-bench-"))
    home.chmod(0o755)
    dns_port = free_dns_port()
    bind = start_bind(home / "bind", zones=("example.test",), forwards={ZONE: ("127.0.0.1", dns_port)})
    pebble = start_pebble(home / "pebble", bind.address)
    (home / "server").mkdir()
    server = start_server(home / "server", args.pg_url,
                          ["--validation-zone", ZONE, "--dns-listen", f"127.0.0.1:{dns_port}", "--resolvers", bind.address])
    try:
        server.client("certsmith").create_issuer(Name="pebble", AcmeDirectoryUrl=pebble.directory_url,
                                                 CaBundle=pebble.tls_cert_pem)
        lego_names = [f"lego{i}.example.test" for i in range(args.count)]
        names = [f"bench{i}.example.test" for i in range(args.count)]
        sequential = lego_run(home, pebble, bind, lego_names, 1)
        parallel = lego_run(home, pebble, bind, lego_names, 4)
        ours = certsmith_run(server, bind, names)
    finally:
        server.stop()
        pebble.stop()
        bind.stop()
    print(f"public issuance of {args.count} certificates (one name each, EC P-256), Pebble + BIND on loopback")
    print(f"  lego sequential     : {sequential:8.2f} s  ({sequential / args.count:.2f} s a certificate)")
    print(f"  lego 4 parallel     : {parallel:8.2f} s")
    print(f"  certsmith together  : {ours:8.2f} s")
    print(f"  certsmith speed-up  : {sequential / ours:6.1f}x over lego sequential, "
          f"{parallel / ours:6.1f}x over lego 4 parallel")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
