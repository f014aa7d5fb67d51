"""The throughput benchmark runs end to end on this machine: every server it compares answers and signs.

It runs for one second per configuration, so the figures mean nothing here; what is checked is that
each configuration of certsmith issued certificates, that cfssl signed (and, with its certificate
database, stored what it signed), and that the floors were measured.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..conftest import need_binary

BENCH = Path(__file__).resolve().parents[2] / "bench" / "issue_throughput.py"


def test_issue_throughput_bench_runs_every_configuration() -> None:
    for binary in ("wrk", "cfssl", "cfssljson"):
        need_binary(binary)
    run = subprocess.run([sys.executable, str(BENCH), "--seconds", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    rates = dict(re.findall(r"^  (c\S+ serve[^:]*?)\s*:\s+([\d.]+)   CPU", out, flags=re.MULTILINE))
    assert len(rates) == 6, out
    assert all(float(rate) > 0 for rate in rates.values()), out
    assert len(re.findall(r"ratio to cfssl [\d.]+ \(to cfssl authenticating and storing [\d.]+\)", out)) == 4, out
    assert re.search(r"authsign \+ certdb \(SQLite WAL\): \d+ requests \(0 non-2xx\) .*, \d+ certificates stored", out), out
    issued = re.findall(r"(\d+) requests \((\d+) non-2xx\), (\d+) certificates issued", out)
    assert len(issued) == 4 and all(int(bad) == 0 and int(made) > 0 for _, bad, made in issued), out
    assert re.search(r"^  together\s+: [\d.]+ ms, against cfssl's [\d.]+ ms", out, flags=re.MULTILINE), out
