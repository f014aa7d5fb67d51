"""Driving a server with wrk and measuring what it spent: the load side shared by the benchmarks."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Result", "lua_script", "median", "run_wrk", "tree_cpu_seconds"]


@dataclass(frozen=True)
class Result:
    rate: float  # certificates per second
    cpu_ms: float  # CPU milliseconds per certificate, all of the server's processes together


def median(results: list[Result]) -> Result:
    """The run with the median rate (the lower middle one of an even number)."""
    return sorted(results, key=lambda result: result.rate)[(len(results) - 1) // 2]


def lua_script(path: Path, method: str, body: str, headers: dict[str, str]) -> None:
    lines = [f"wrk.method = {json.dumps(method)}", f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (uvicorn's worker processes, say)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier += children
    return sum(times.get(member, 0.0) for member in tree)



def run_wrk(url: str, script: Path, seconds: int, connections: int, threads: int) -> tuple[int, int, float]:
    """(requests, non-2xx responses, seconds) as wrk reports them."""
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    assert total, out
    elapsed = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(total.group(1)), int(bad.group(1)) if bad else 0, elapsed
