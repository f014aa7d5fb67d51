"""The fan-out benchmark runs end to end on a small world (--quick: 20 files bindings, 4 nginx blocks, one run):
certsmith's renewal reaches every binding, the shell loop does the same work, and both times are printed.

The world is tiny and the machine shared, so the figures mean nothing here; the benchmark checks its own results
(every binding on the new serial, every block verified and served, the shell loop's handshakes) and exits non-zero
otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import need_binary

BENCH = Path(__file__).resolve().parents[2] / "bench" / "deploy_fanout.py"


def test_deploy_fanout_bench_runs_small() -> None:
    for binary in ("nginx", "openssl"):
        need_binary(binary)
    run = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "command: " in out and "shell loop command: bash " in out and "cores" in out, out
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["files"], result["nginx"], result["runs"]) == (20, 4, 1), result
    assert result["certsmith"]["seconds"] > 0 and result["shell_seconds"] > 0 and result["ratio"] > 0, result
    assert "the server logged" not in run.stderr, run.stderr
