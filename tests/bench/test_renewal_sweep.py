"""The renewal sweep benchmark runs end to end on small stores: every figure is measured and every due
certificate claimed and enqueued (the benchmark checks that itself, and exits non-zero otherwise).

Its stores are tiny here, so the figures mean nothing; PostgreSQL is measured too when the tests have one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ..conftest import PG_URL

BENCH = Path(__file__).resolve().parents[2] / "bench" / "renewal_sweep.py"
SIZES = [1000, 5000]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    postgres = ["--postgres", PG_URL] if PG_URL else []
    result = subprocess.run([sys.executable, str(BENCH), "--sizes", ",".join(map(str, SIZES)), "--runs", "1",
                             *postgres, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_renewal_sweep_bench_reports_every_size_as_json() -> None:
    report = json.loads(run("--json").stdout)
    assert set(report["backends"]) == ({"SQLite", "PostgreSQL"} if PG_URL else {"SQLite"})
    for figures in report["backends"].values():
        assert [f["size"] for f in figures] == SIZES
        assert [f["due"] for f in figures] == [size // 100 for size in SIZES]
        assert all(f["fixed_due"] == SIZES[0] // 100 for f in figures)
        for f in figures:
            assert 0 < f["seconds"] < 60 and 0 < f["fixed_seconds"] < 60 and f["per_due_us"] > 0
            assert 0 < f["peak_bytes"] < 200 * 1024 * 1024 and 0 <= f["rss_growth_bytes"] < f["rss_bytes"]
            assert isinstance(f["goal_met"], bool)


def test_renewal_sweep_bench_prints_a_table_and_a_profile() -> None:
    result = run("--profile")
    out = result.stdout
    assert re.search(r"^  SQLite\s+N = 1,000\s+N = 5,000$", out, flags=re.MULTILINE), out
    assert re.search(r"^  sweep, 1 % due\s+[\d.]+ s\s+[\d.]+ s$", out, flags=re.MULTILINE), out
    assert re.search(r"^  sweep, 10 due\s+[\d.]+ s\s+[\d.]+ s$", out, flags=re.MULTILINE), out
    assert re.search(r"^  peak Python memory \(tracemalloc\)\s+[\d.]+ MB\s+[\d.]+ MB$", out, flags=re.MULTILINE), out
    assert re.search(r"^  goal\s+(met|NOT met)\s+(met|NOT met)$", out, flags=re.MULTILINE), out
    assert "profile of SQLite, N = 5,000 (50 due), by own time:" in out and "scheduler.py" in out
    assert "certificates loaded in" in result.stderr
