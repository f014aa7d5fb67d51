"""A real Knot DNS (`knotd`) on loopback, for tests of RFC 2136 providers.

Knot is authoritative for the given zones and accepts RFC 2136 updates and zone transfers signed with one
TSIG key. Its configuration, zone files and databases all live in ``home``; nothing is written elsewhere.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .bind import free_dns_port
from .processes import is_running, launch, wait_dns_ready
from .server import stop_process

__all__ = ["TSIG_ALGORITHM", "Knot", "start_knot"]

TSIG_ALGORITHM = "hmac-sha256"
_KEY_NAME = "certsmith-key"
_HOST = "127.0.0.1"
_NAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
_SECRET = re.compile(r"secret:\s*(\S+)")


@dataclass
class Knot:
    """A running `knotd`: its folder, port, TSIG key and zones."""

    home: Path
    port: int
    tsig_name: str
    tsig_secret: str
    process: subprocess.Popen[bytes] | None
    zones: tuple[str, ...]
    binary: str = "knotd"
    ready_within: float = 15.0

    tsig_algorithm = TSIG_ALGORITHM

    @property
    def address(self) -> str:
        return f"{_HOST}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.home / "knot.conf"

    @property
    def log_path(self) -> Path:
        return self.home / "knotd.log"

    @property
    def running(self) -> bool:
        return is_running(self.process)

    def start(self) -> None:
        """(Re)start `knotd` with the same configuration and port; returns once the first zone's SOA answers."""
        launch(self, [self.binary, "-c", str(self.config_path)],
               lambda: wait_dns_ready("knotd", self.process, self.port, self.zones[0], self.log_path, self.ready_within))

    def stop(self) -> None:
        """Stop `knotd` (SIGTERM, then SIGKILL after 10 s) and wait for it to exit."""
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> Knot:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _tsig_key(home: Path, keymgr: str) -> str:
    """Make the TSIG key with `keymgr` into ``home/tsig.conf`` (a knot.conf ``key`` section); return its secret."""
    text = subprocess.run([keymgr, "-t", _KEY_NAME, TSIG_ALGORITHM], capture_output=True, check=True,
                          timeout=30).stdout.decode()
    path = home / "tsig.conf"
    path.write_text(text)
    path.chmod(0o600)
    found = _SECRET.search(text)
    if found is None:
        raise RuntimeError("keymgr printed no secret")
    return found.group(1)


def _config(home: Path, port: int, zones: Sequence[str], locked: Sequence[str]) -> str:
    lines = [
        "server:",
        f'    rundir: "{home}"',
        f"    listen: [ {_HOST}@{port} ]",
        "database:",
        f'    storage: "{home}/db"',
        "log:",
        "  - target: stderr",
        "    any: info",
        f'include: "{home}/tsig.conf"',
        "acl:",
        "  - id: certsmith-key",
        f"    key: {_KEY_NAME}",
        "    action: [ update, transfer ]",
        "template:",
        "  - id: default",
        f'    storage: "{home}/zones"',
        '    file: "%s.zone"',
        "    zonefile-sync: 0",
        "    journal-content: none",
        "    semantic-checks: off",
        "zone:",
    ]
    for zone in zones:
        lines += [f"  - domain: {zone}"] + ([] if zone in locked else ["    acl: certsmith-key"])
    return "\n".join(lines) + "\n"


def start_knot(home: Path, *, zones: Sequence[str] = ("example.test",), locked: Sequence[str] = (), binary: str = "knotd",
               keymgr: str = "keymgr", port: int | None = None, ready_within: float = 15.0) -> Knot:
    """Start `knotd` with its files in ``home`` on 127.0.0.1 (a free port unless ``port`` is given).

    The key may update and transfer each of ``zones``; the ``locked`` zones are served too, but the key may do neither.
    Returns once the first zone's SOA answers; raises RuntimeError with the log's tail if `knotd` exits or is
    not ready within ``ready_within`` seconds.
    """
    locked = tuple(zone.strip().lower().rstrip(".") for zone in locked)
    names = tuple(dict.fromkeys([*(zone.strip().lower().rstrip(".") for zone in zones), *locked]))
    if not names:
        raise ValueError("zones must name at least one zone")
    for zone in names:
        if not _NAME.match(zone):
            raise ValueError(f"zone {zone!r} is not a valid DNS zone name")
    home = home.resolve()
    if '"' in str(home) or "\n" in str(home):
        raise ValueError(f"home {str(home)!r} must not contain quotes or newlines")
    (home / "zones").mkdir(parents=True, exist_ok=True)
    (home / "db").mkdir(exist_ok=True)
    secret = _tsig_key(home, keymgr)
    for zone in names:
        (home / "zones" / f"{zone}.zone").write_text("\n".join([
            f"$ORIGIN {zone}.", "$TTL 60", "@ IN SOA ns1 hostmaster 1 60 60 3600 60", "  IN NS ns1",
            f"ns1 IN A {_HOST}", ""]))
    port = port or free_dns_port()
    (home / "knot.conf").write_text(_config(home, port, names, locked))
    knot = Knot(home, port, _KEY_NAME, secret, None, names, binary, ready_within)
    knot.start()
    return knot

