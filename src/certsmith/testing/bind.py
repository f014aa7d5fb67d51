"""A real BIND 9 (`named`) on loopback, for tests and benchmarks of public-certificate validation.

BIND is authoritative for the user's zones (RFC 2136 updates signed with a TSIG key) and recursive for
loopback, with a local root zone so that nothing ever leaves 127.0.0.1. Each validation zone is forwarded
to another DNS server (host, port) and delegated in its parent zone, so that a TXT query for
``_acme-challenge.<name>`` whose CNAME points into a validation zone returns the CNAME and the TXT records
in one answer, which is what an ACME server reading a single answer needs.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from .processes import is_running, launch, wait_dns_ready
from .server import stop_process

__all__ = ["TSIG_ALGORITHM", "Bind", "free_dns_port", "start_bind"]

TSIG_ALGORITHM = "hmac-sha256"
_KEY_NAME = "certsmith-key"
_HOST = "127.0.0.1"
_NAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
_SECRET = re.compile(r'secret\s+"([^"]+)"')


def free_dns_port(host: str = _HOST) -> int:
    """A port that is free on ``host`` for both UDP and TCP."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port is free for both UDP and TCP on {host}")


def _zone_name(value: str, what: str) -> str:
    name = value.strip().lower().rstrip(".")
    if not _NAME.match(name):
        raise ValueError(f"{what} {value!r} is not a valid DNS zone name")
    return name


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


_NAME_TYPES = frozenset({"CNAME", "DNAME", "NS", "PTR"})


def _normal(text: str, rtype: str) -> str:
    bare = text.strip().rstrip(".").strip('"')
    return bare.lower() if rtype in _NAME_TYPES else bare


@dataclass
class Bind:
    """A running `named`: its folder, port, TSIG key, primary zones and forwarded zones."""

    home: Path
    port: int
    tsig_name: str
    tsig_secret: str
    process: subprocess.Popen[bytes] | None
    zones: tuple[str, ...]
    forwards: dict[str, tuple[str, int]]
    nsupdate: str = "nsupdate"
    binary: str = "named"
    ready_within: float = 15.0

    @property
    def address(self) -> str:
        return f"{_HOST}:{self.port}"

    @property
    def tsig_algorithm(self) -> str:
        """The TSIG key's algorithm name, as dnspython and `nsupdate -y` spell it."""
        return TSIG_ALGORITHM

    @property
    def running(self) -> bool:
        return is_running(self.process)

    def start(self) -> None:
        """Start `named` again after :meth:`stop`, with the same configuration, port and zones (journals kept)."""
        launch(self, [self.binary, "-4", "-g", "-c", str(self.home / "named.conf")],
               lambda: wait_dns_ready("named", self.process, self.port, self.zones[0], self.log_path, self.ready_within))

    @property
    def log_path(self) -> Path:
        return self.home / "named.log"

    @property
    def key_file(self) -> Path:
        """The TSIG key as `tsig-keygen` wrote it (a named.conf ``key`` statement)."""
        return self.home / "tsig.key"

    def zone_of(self, name: str) -> str:
        """The longest primary zone that ``name`` is in (not below a forwarded zone)."""
        bare = name.strip().lower().rstrip(".")
        found = max((zone for zone in (*self.zones, *self.forwards) if bare == zone or bare.endswith("." + zone)),
                    key=len, default=None)
        if found is None:
            raise ValueError(f"name {name!r} is in none of BIND's zones {list(self.zones)}")
        if found in self.forwards:
            raise ValueError(f"name {name!r} is in zone {found!r}, which BIND forwards and cannot update")
        return found

    def update(self, zone: str, commands: Sequence[str]) -> None:
        """Send ``commands`` (``update add ...`` / ``update delete ...`` lines) to ``zone`` through `nsupdate`, signed."""
        for command in commands:
            if "\n" in command or "\r" in command:
                raise ValueError(f"nsupdate command {command!r} must be a single line")
        script = "".join(f"{line}\n" for line in
                         [f"server {_HOST} {self.port}", f"zone {_fqdn(zone)}", *commands, "send"])
        args = [self.nsupdate, "-v", "-t", "5", "-y", f"{TSIG_ALGORITHM}:{self.tsig_name}:{self.tsig_secret}"]
        try:
            done = subprocess.run(args, input=script.encode(), capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"nsupdate to zone {zone} did not finish within 30 s") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise RuntimeError(f"nsupdate to zone {zone} failed (exit {done.returncode}): {output}")

    def set_cname(self, name: str, target: str, zone: str | None = None, ttl: int = 60) -> None:
        """Make ``name`` a CNAME to ``target``, replacing any CNAME it had."""
        owner = _fqdn(name)
        self.update(zone or self.zone_of(name),
                    [f"update delete {owner} CNAME", f"update add {owner} {ttl} IN CNAME {_fqdn(target)}"])

    def set_txt(self, name: str, values: Sequence[str], zone: str | None = None, ttl: int = 60) -> None:
        """Make ``values`` the TXT records of ``name``, replacing those it had."""
        owner = _fqdn(name)
        adds = [f"update add {owner} {ttl} IN TXT {_quoted(value)}" for value in values]
        self.update(zone or self.zone_of(name), [f"update delete {owner} TXT", *adds])

    def delete(self, name: str, rtype: str, zone: str | None = None) -> None:
        """Delete every ``rtype`` record of ``name``."""
        self.update(zone or self.zone_of(name), [f"update delete {_fqdn(name)} {rtype.upper()}"])

    def set_caa(self, name: str, records: Sequence[tuple[int, str, str]], zone: str | None = None, ttl: int = 60) -> None:
        """Make ``records`` ((flags, tag, value) each) the CAA records of ``name``, replacing those it had."""
        owner = _fqdn(name)
        adds = [f"update add {owner} {ttl} IN CAA {int(flags)} {tag} {_quoted(value)}" for flags, tag, value in records]
        self.update(zone or self.zone_of(name), [f"update delete {owner} CAA", *adds])

    def query_message(self, name: str, rtype: str, timeout: float = 2.0) -> dns.message.Message:
        """One query to this BIND (UDP, TCP if the answer is truncated); the whole response."""
        request = dns.message.make_query(_fqdn(name), rtype.upper())
        response, _ = dns.query.udp_with_fallback(request, _HOST, port=self.port, timeout=timeout)
        return response

    def query(self, name: str, rtype: str) -> list[str]:
        """The answer section of one query, one ``name ttl IN TYPE rdata`` line per record."""
        return [line for rrset in self.query_message(name, rtype).answer for line in rrset.to_text().splitlines()]

    def wait_visible(self, name: str, rtype: str, expected: str, timeout: float = 10.0) -> None:
        """Poll until a ``rtype`` record of ``name`` has the rdata ``expected`` (a trailing dot and quotes aside)."""
        rtype = rtype.upper()
        wanted, code = _normal(expected, rtype), dns.rdatatype.from_text(rtype)
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            try:
                response = self.query_message(name, rtype, timeout=1.0)
                seen = [rr.to_text() for rrset in response.answer if rrset.rdtype == code for rr in rrset]
                if any(_normal(text, rtype) == wanted for text in seen):
                    return
            except dns.exception.DNSException as exc:
                seen = [f"({type(exc).__name__})"]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{name} {rtype} {expected!r} not visible in BIND within {timeout:.0f} s; seen: {seen}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop `named` (SIGTERM, then SIGKILL after 10 s) and wait for it to exit."""
        stop_process(self.process)

    def __enter__(self) -> Bind:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _zone_file(zone: str, extra: Sequence[str]) -> str:
    return "\n".join([f"$ORIGIN {zone}.", "$TTL 60", "@ IN SOA ns1 hostmaster 1 60 60 3600 60", "  IN NS ns1",
                      f"ns1 IN A {_HOST}", f"@ IN A {_HOST}", f"* IN A {_HOST}", *extra, ""])


def _config(home: Path, port: int, zones: Sequence[str], forwards: Mapping[str, tuple[str, int]]) -> str:
    lines = [
        f'include "{home}/tsig.key";',
        "options {",
        f'    directory "{home}";',
        f'    pid-file "{home}/named.pid";',
        f'    session-keyfile "{home}/session.key";',
        f'    managed-keys-directory "{home}";',
        f"    listen-on port {port} {{ {_HOST}; }};",
        "    listen-on-v6 { none; };",
        "    recursion yes;                  // so that CNAMEs into other zones are followed",
        f"    allow-recursion {{ {_HOST}; }};",
        f"    allow-query {{ {_HOST}; }};",
        f"    query-source address {_HOST};   // with the local root zone, nothing leaves loopback",
        "    dnssec-validation no;",
        "    notify no;",
        "    max-cache-ttl 1;                // a record added a moment ago is seen",
        "    max-ncache-ttl 1;",
        "    servfail-ttl 0;",
        "};",
        "controls { };",
        'zone "." { type primary; file "root.zone"; };',
    ]
    lines += [f'zone "{zone}" {{ type primary; file "{zone}.zone"; allow-update {{ key "{_KEY_NAME}"; }}; '
              f'allow-transfer {{ key "{_KEY_NAME}"; }}; }};' for zone in zones]
    lines += [f'zone "{zone}" {{ type forward; forward only; forwarders {{ {host} port {fport}; }}; }};'
              for zone, (host, fport) in forwards.items()]
    return "\n".join(lines) + "\n"


def _delegations(zones: Sequence[str], forwards: Mapping[str, tuple[str, int]]) -> dict[str, list[str]]:
    """The NS + glue records of each forwarded zone, keyed by the zone that holds them ("" for the root)."""
    held: dict[str, list[str]] = {"": [], **{zone: [] for zone in zones}}
    for zone, (host, _) in forwards.items():
        parents = [parent for parent in zones if zone.endswith("." + parent)]
        parent = max(parents, key=len) if parents else ""
        held[parent] += [f"{zone}. IN NS ns.{zone}.", f"ns.{zone}. IN A {host}"]
    return held


def _check_forwards(zones: Sequence[str], forwards: Mapping[str, tuple[str, int]] | None) -> dict[str, tuple[str, int]]:
    checked: dict[str, tuple[str, int]] = {}
    for value, (host, port) in (forwards or {}).items():
        zone = _zone_name(value, "forwarded zone")
        if zone in zones:
            raise ValueError(f"zone {zone!r} cannot be both primary and forwarded")
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ValueError(f"forwarder of zone {zone!r}: host {host!r} is not an IPv4 address") from exc
        if not 0 < int(port) < 65536:
            raise ValueError(f"forwarder of zone {zone!r}: port {port!r} is out of range")
        checked[zone] = (host, int(port))
    return checked


def _tsig_key(home: Path) -> str:
    """Make the TSIG key with `tsig-keygen` into ``home/tsig.key``; return its secret."""
    text = subprocess.run(["tsig-keygen", "-a", TSIG_ALGORITHM, _KEY_NAME], capture_output=True, check=True,
                          timeout=30).stdout.decode()
    (home / "tsig.key").write_text(text)
    (home / "tsig.key").chmod(0o600)
    found = _SECRET.search(text)
    if found is None:
        raise RuntimeError("tsig-keygen printed no secret")
    return found.group(1)


def start_bind(home: Path, *, zones: Sequence[str] = ("example.test",),
               forwards: Mapping[str, tuple[str, int]] | None = None, binary: str = "named",
               port: int | None = None, ready_within: float = 15.0, nsupdate: str = "nsupdate") -> Bind:
    """Start `named` with its files in ``home`` on 127.0.0.1 (a free port unless ``port`` is given).

    Returns once the first zone's SOA answers; raises RuntimeError with the log's tail if `named` exits
    or is not ready within ``ready_within`` seconds.
    """
    primaries = tuple(dict.fromkeys(_zone_name(zone, "zone") for zone in zones))
    if not primaries:
        raise ValueError("zones must name at least one zone")
    forwarded = _check_forwards(primaries, forwards)
    home = home.resolve()
    if '"' in str(home) or "\n" in str(home):
        raise ValueError(f"home {str(home)!r} must not contain quotes or newlines")
    home.mkdir(parents=True, exist_ok=True)
    secret = _tsig_key(home)
    held = _delegations(primaries, forwarded)
    root = [". IN SOA localhost. hostmaster.localhost. 1 60 60 3600 60", ". IN NS localhost.", f"localhost. IN A {_HOST}"]
    (home / "root.zone").write_text("\n".join(["$TTL 60", *root, *held[""], ""]))
    for zone in primaries:
        (home / f"{zone}.zone").write_text(_zone_file(zone, held[zone]))
        (home / f"{zone}.zone.jnl").unlink(missing_ok=True)  # a journal from an earlier run would not apply
    port = port or free_dns_port()
    (home / "named.conf").write_text(_config(home, port, primaries, forwarded))
    bind = Bind(home, port, _KEY_NAME, secret, None, primaries, forwarded, nsupdate, binary, ready_within)
    bind.log_path.write_bytes(b"")  # a fresh log; a restart appends to it
    bind.start()
    return bind

