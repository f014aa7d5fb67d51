"""The /metrics benchmark runs end to end on a small store: a real server is scraped, both ways of writing the
per-certificate series agree, and the event rules are matched (the benchmark checks its own results and exits
non-zero otherwise).

The store is tiny here, so the figures mean nothing; PostgreSQL is measured too when the tests have one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ..conftest import PG_URL

BENCH = Path(__file__).resolve().parents[2] / "bench" / "metrics_scrape.py"
SIZE = 1000


def run(*args: str) -> subprocess.CompletedProcess[str]:
    postgres = ["--postgres", PG_URL] if PG_URL else []
    result = subprocess.run([sys.executable, str(BENCH), "--size", str(SIZE), "--scrapes", "1", "--rules", "100",
                             "--events", "400", *postgres, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_metrics_bench_reports_json() -> None:
    report = json.loads(run("--json").stdout)
    assert set(report["backends"]) == ({"SQLite", "PostgreSQL"} if PG_URL else {"SQLite"})
    for figures in report["backends"].values():
        with_expiry = SIZE * 96 // 100  # pending, failed and timed-out certificates have no NotAfter
        assert figures["size"] == SIZE and figures["series"] == with_expiry and figures["dropped"] == 0
        assert figures["series_samples"] == 2 * with_expiry and figures["bytes"] > 100 * with_expiry
        for key in ("scrape_seconds", "page_seconds", "aggregates_seconds", "series_direct_seconds", "series_library_seconds"):
            assert 0 < figures[key] < 60, key
        assert isinstance(figures["goal_met"], bool)
    rules = report["rules"]
    assert rules["rules"] == 100 and rules["events"] == 400 and rules["matches_per_event"] > 0
    assert rules["events_per_second"] > 0 and rules["plain_events_per_second"] > 0


def test_metrics_bench_prints_a_table() -> None:
    out = run().stdout
    assert re.search(r"^  scrape over HTTP \(certsmith serve\)(\s+\d+ ms)+$", out, flags=re.MULTILINE), out
    assert re.search(r"^  bytes per scrape(\s+[\d.]+ MB)+$", out, flags=re.MULTILINE), out
    assert re.search(r"^  RuleMatcher.match\s+[\d,]+ events/s", out, flags=re.MULTILINE), out
