"""The RequestCertificate latency benchmark runs end to end: both settings answer, and the pool issues at once.

It makes ten requests per row, so its figures mean nothing here; what is checked is that every row
was measured, that with the pool every RSA certificate was ISSUED at the first DescribeCertificate
(the boto3 waiter's first poll), and that EC certificates were, with the pool or without.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "request_latency.py"
ROW = re.compile(r"^  (\S+)\s+(pool|no pool)\s*: answer p50\s+([\d.]+) ms  p99\s+([\d.]+) ms   "
                 r"ISSUED at the first poll (\d+)/(\d+)   until ISSUED p50\s+([\d.]+) ms  p99\s+([\d.]+) ms$",
                 flags=re.MULTILINE)


def test_request_latency_bench_measures_every_row() -> None:
    run = subprocess.run([sys.executable, str(BENCH), "--requests", "10"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {(algorithm, setting): values for algorithm, setting, *values in ROW.findall(run.stdout)}
    assert set(rows) == {(a, s) for a in ("RSA_2048", "EC_prime256v1") for s in ("pool", "no pool")}, run.stdout
    for values in rows.values():
        assert all(float(figure) > 0 for figure in values[:2] + values[4:]) and values[3] == "10", run.stdout
    assert rows["RSA_2048", "pool"][2] == "10", run.stdout
    assert rows["EC_prime256v1", "pool"][2] == rows["EC_prime256v1", "no pool"][2] == "10", run.stdout
