"""Fuzz certsmith's AWS API: inputs generated from botocore's models of ACM and ACM-PCA (and of
certsmith's own service once its model ships), SigV4-signed, over JSON 1.1 and RPC v2 CBOR.

Every operation of every service is fuzzed: random members, lengths, enums, types, nesting and
timestamps at the extremes, and bodies broken on the wire (src/certsmith/testing/fuzz.py). A 5xx, a
dropped connection or an error answer outside the AWS shape is a finding; each is printed with its
operation, protocol, body and status. The server it started is stopped at the end and its log read:
an ERROR record (an answer can be fine while the server failed behind it) is printed too. The exit
status is 1 when there was any of either.

Without --endpoint it starts its own `certsmith serve` (SQLite, in a temporary folder) and stops it
afterwards; with --endpoint it fuzzes that server with the access key in --credentials. It creates an
ACTIVE CA and a few certificates first, so that inputs can name real resources: do not point it at a
server whose data matters.

Usage: python bench/fuzz_api.py --requests 100000 [--seed S] [--endpoint URL [--credentials FILE]]
       [--concurrency 2] [--service acm --service acm-pca ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from certsmith.testing.fuzz import available_services
from certsmith.testing.fuzz_runner import Finding, run_fuzz
from certsmith.testing.server import read_access_key, start_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, required=True, help="inputs to send")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--endpoint", help="fuzz this running server instead of starting one")
    parser.add_argument("--credentials", type=Path, default=Path("certsmith-data/credentials"),
                        help="the access key file of --endpoint's server")
    parser.add_argument("--concurrency", type=int, default=2, help="connections sending at once")
    parser.add_argument("--service", action="append", dest="services",
                        help=f"a botocore service to fuzz (repeatable; default: {', '.join(available_services())})")
    args = parser.parse_args()

    def show(finding: Finding) -> None:
        print(f"FINDING {finding.describe()}", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        server = None
        if args.endpoint:
            endpoint, access_key = args.endpoint, read_access_key(args.credentials)
        else:
            server = start_server(Path(folder))
            endpoint, access_key = server.endpoint, server.access_key
        errors: list[str] = []
        try:
            report = run_fuzz(endpoint, access_key, requests=args.requests, seed=args.seed, services=args.services,
                              concurrency=args.concurrency, on_finding=show)
        finally:
            if server is not None:
                server.stop()
                errors = server.errors()
    print(f"\n{report.requests} requests in {report.seconds:.1f} s: {report.rate:.0f} requests per second "
          f"({args.concurrency} connections, seed {args.seed})")
    for answer, count in report.answers.most_common():
        print(f"  {answer:58} {count:8}")
    print(f"{len(report.operations)} operations fuzzed; answered 200:")
    for target in sorted(report.operations):
        print(f"  {target:58} {report.successes[target]:8}")
    print(f"{len(report.findings)} findings")
    for finding in report.findings:
        print(f"  {finding.describe()}")
    if errors:  # an answer can be fine while the server failed behind it (an audit entry it could not store)
        print(f"the server logged {len(errors)} errors; the first ones:")
        for error in errors[:20]:
            print("  " + error.replace("\n", "\n  "))
    return 1 if report.findings or errors else 0


if __name__ == "__main__":
    sys.exit(main())
