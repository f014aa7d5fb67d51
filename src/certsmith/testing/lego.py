"""lego, a real ACME client, getting a certificate through DNS-01 with its RFC 2136 provider against a BIND peer.

It is what a user's own ACME client does, and a yardstick for certsmith's public-certificate issuance.
lego is told to trust only ``ca_bundle`` (the ACME server's TLS certificate), to resolve through BIND
only, and not to look up the zone's authoritative servers itself (``--dns.disable-cp``: they would be
asked on port 53). It follows a CNAME on ``_acme-challenge`` and writes the TXT record at its target.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .bind import TSIG_ALGORITHM, Bind

__all__ = ["LegoResult", "lego_file_name", "run_lego"]


@dataclass(frozen=True, slots=True)
class LegoResult:
    """A certificate lego obtained: its names, how long the run took, and where lego wrote it."""

    domains: tuple[str, ...]
    seconds: float
    cert_path: Path
    issuer_path: Path


def lego_file_name(domain: str) -> str:
    """The base name lego gives the files of a certificate whose first name is ``domain`` (``*`` becomes ``_``)."""
    return domain.strip().lower().rstrip(".").replace("*", "_").encode("idna").decode("ascii")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_lego(home: Path, *, directory_url: str, ca_bundle: Path, bind: Bind, domains: Sequence[str],
             email: str = "admin@example.test", key_type: str = "ec256", timeout: float = 120,
             binary: str = "lego", extra_args: Sequence[str] = ()) -> LegoResult:
    """Run ``lego ... run`` once for ``domains``; its data goes to ``home/lego`` and its output to ``home/lego.log``.

    Raises RuntimeError with the tail of lego's output if it fails, times out, or writes no certificate.
    """
    names = tuple(domain.strip().rstrip(".") for domain in domains)
    if not names or any(not name for name in names):
        raise ValueError("domains must hold at least one non-empty name")
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "lego"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LEGO_", "RFC2136_"))}
    env.update(
        LEGO_CA_CERTIFICATES=str(Path(ca_bundle).resolve()),
        RFC2136_NAMESERVER=bind.address,
        RFC2136_TSIG_KEY=bind.tsig_name,
        RFC2136_TSIG_ALGORITHM=f"{TSIG_ALGORITHM}.",  # lego's (miekg/dns) spelling has the trailing dot
        RFC2136_TSIG_SECRET=bind.tsig_secret,
        RFC2136_SEQUENCE_INTERVAL="1",  # else 60 s between a name and its wildcard
        RFC2136_POLLING_INTERVAL="1",
        RFC2136_PROPAGATION_TIMEOUT="60",
    )
    args = [binary, "--server", directory_url, "--accept-tos", "--email", email, "--path", str(path),
            "--dns", "rfc2136", "--dns.resolvers", bind.address, "--dns.disable-cp", "--key-type", key_type]
    for name in names:
        args += ["--domains", name]
    args += [*extra_args, "run"]
    log_path = home / "lego.log"
    started = time.perf_counter()
    try:
        done = subprocess.run(args, cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        output = (exc.output or b"").decode(errors="replace")
        log_path.write_text(output)
        raise RuntimeError(f"lego did not finish within {timeout:.0f} s for {list(names)}:\n{_tail(output)}") from exc
    seconds = time.perf_counter() - started
    output = done.stdout.decode(errors="replace")
    log_path.write_text(output)
    if done.returncode != 0:
        raise RuntimeError(f"lego failed (exit {done.returncode}) for {list(names)}:\n{_tail(output)}")
    base = path / "certificates" / lego_file_name(names[0])
    cert_path, issuer_path = base.with_name(base.name + ".crt"), base.with_name(base.name + ".issuer.crt")
    if not cert_path.is_file() or not issuer_path.is_file():
        raise RuntimeError(f"lego exited 0 but wrote no {cert_path.name} / {issuer_path.name}:\n{_tail(output)}")
    return LegoResult(names, seconds, cert_path, issuer_path)
