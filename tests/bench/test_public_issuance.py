"""The public issuance benchmark runs end to end with two certificates: lego and certsmith each issue them
against the same Pebble and BIND, and every figure and ratio is printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..conftest import need_binary

BENCH = Path(__file__).resolve().parents[2] / "bench" / "public_issuance.py"


def test_public_issuance_bench_prints_every_figure() -> None:
    for binary in ("named", "nsupdate", "pebble", "lego"):
        need_binary(binary)
    run = subprocess.run([sys.executable, str(BENCH), "--count", "2"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = dict(re.findall(r"^  (lego sequential|lego 4 parallel|certsmith together)\s*:\s+([\d.]+) s", run.stdout,
                              flags=re.MULTILINE))
    assert set(figures) == {"lego sequential", "lego 4 parallel", "certsmith together"}, run.stdout
    assert all(float(value) > 0 for value in figures.values())
    assert re.search(r"certsmith speed-up\s*:\s+[\d.]+x over lego sequential", run.stdout), run.stdout
