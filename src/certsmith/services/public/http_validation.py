"""HTTP validation: one redirect per name on the user's web server, HTTP-01 key authorizations served by certsmith.

The user's web server sends every path under ``http://<name>/.well-known/acme-challenge/`` to the same last
segment under ``<certsmith public URL>/.well-known/acme-challenge/<label>/``; ACME CAs follow the redirect, and
certsmith answers with the key authorization while the order is open.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from sqlalchemy import delete, select

from ...acme import Challenge
from ...dns.resolve import DnsLookupError, Resolvers, format_server
from ...domain.clock import Clock
from ...store.database import Database
from ...store.tables import CertificateRow, HttpChallengeRow

__all__ = ["CHALLENGE_PATH", "REDIRECT_CODES", "HttpChallengeStore", "HttpRedirectCheck", "HttpResponder",
           "RedirectFinding", "public_ca_caveat", "redirect_for"]

CHALLENGE_PATH = "/.well-known/acme-challenge/"
REDIRECT_CODES = (301, 302, 303, 307, 308)
PROBE_PREFIX = "certsmith-probe-"
MAX_ADDRESSES = 4  # addresses of a name probed at most
_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def redirect_for(public_url: str, label: str, name: str) -> dict[str, str]:
    """The redirect a name's web server carries: {"RedirectFrom": ..., "RedirectTo": ...}."""
    host = name.strip().lower().removesuffix(".")
    if host.startswith("*."):
        raise ValueError(f"name: {name!r} is a wildcard; ACME CAs validate wildcard names with DNS only")
    if not _LABEL.match(label):
        raise ValueError(f"label: {label!r} must be 1 to 64 letters, digits, '-' or '_'")
    return {"RedirectFrom": f"http://{host}{CHALLENGE_PATH}",
            "RedirectTo": f"{public_url.rstrip('/')}{CHALLENGE_PATH}{label}/"}


def public_ca_caveat(redirect_to: str) -> str | None:
    """Why a public CA would not follow a redirect to this URL, or None.

    Let's Encrypt follows redirects only to http and https URLs, on ports 80 and 443, and never to an IP address
    (test CAs such as Pebble follow any).
    """
    parts = urlsplit(redirect_to)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{redirect_to} is not an http or https URL"
    try:
        port = parts.port
    except ValueError:
        return f"{redirect_to} has an invalid port"
    if port not in (None, 80, 443):
        return f"public CAs such as Let's Encrypt follow redirects to ports 80 and 443 only, not {port} ({redirect_to})"
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None
    return (f"public CAs such as Let's Encrypt do not follow redirects to an IP address ({parts.hostname}); "
            "give certsmith a public URL with a DNS name")


class HttpChallengeStore:
    """HTTP-01 key authorizations by (label, token), kept in the database so that every process serves them."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock

    def publish(self, certificate_id: str, items: Sequence[tuple[str, str, str]]) -> None:
        """Replace the certificate's key authorizations with ``items`` [(label, token, key authorization)]."""
        now = self._clock.now()
        with self._db.transaction() as session:
            session.execute(delete(HttpChallengeRow).where(HttpChallengeRow.certificate_id == certificate_id))
            session.add_all([HttpChallengeRow(label=label, token=token, key_authorization=key_authorization,
                                              certificate_id=certificate_id, created_at=now)
                             for label, token, key_authorization in items])

    def clear(self, certificate_id: str) -> None:
        with self._db.transaction() as session:
            session.execute(delete(HttpChallengeRow).where(HttpChallengeRow.certificate_id == certificate_id))

    def key_authorization(self, label: str, token: str) -> str | None:
        """The key authorization published for this label and token, or None."""
        if not _LABEL.match(label) or not _TOKEN.match(token):
            return None
        with self._db.read() as session:
            return session.scalar(select(HttpChallengeRow.key_authorization)
                                  .where(HttpChallengeRow.label == label, HttpChallengeRow.token == token)
                                  .order_by(HttpChallengeRow.id.desc()).limit(1))


class HttpResponder:
    """Publishes an order's pending http-01 challenges under each name's label; ``label_of(account_id, name)``.

    What is published is served at once by every process (the route reads the database): ``deadline`` is not needed.
    """

    challenge_type = "http-01"

    def __init__(self, store: HttpChallengeStore, label_of: Callable[[str, str], str]) -> None:
        self._store, self._label_of = store, label_of

    def publish(self, row: CertificateRow, challenges: Sequence[Challenge], deadline: float | None = None) -> None:
        self._store.publish(row.id, [(self._label_of(row.account_id, c.identifier), c.token, c.value)
                                     for c in challenges if c.type == "http-01" and c.status == "pending"])

    def clear(self, row: CertificateRow) -> None:
        self._store.clear(row.id)


@dataclass(frozen=True, slots=True)
class RedirectFinding:
    """What a name's web server does with an HTTP-01 path: ``detail`` in plain words, ``address`` the one asked."""

    ok: bool
    detail: str
    address: str | None = None


class HttpRedirectCheck:
    """Asks a name's web server (at each of its addresses) for a made-up HTTP-01 path and looks at the redirect.

    An address that takes no connection is passed over when another answers, as ACME CAs fall back between
    IPv6 and IPv4; every address that answers must redirect to the expected target.
    """

    def __init__(self, resolvers: Resolvers, port: int = 80, timeout: float = 5.0) -> None:
        self._resolvers, self.port, self.timeout = resolvers, port, timeout

    def check(self, name: str, redirect: dict[str, str]) -> RedirectFinding:
        host = name.strip().lower().removesuffix(".")
        target = redirect.get("RedirectTo") if isinstance(redirect, dict) else None
        if not isinstance(target, str) or not target:
            raise ValueError("redirect: RedirectTo is missing")
        if host.startswith("*."):
            return RedirectFinding(False, f"{host} is a wildcard name; ACME CAs validate wildcard names with DNS only")
        try:
            addresses = self._resolvers.addresses(host)
        except DnsLookupError as error:
            return RedirectFinding(False, str(error))
        if not addresses:
            return RedirectFinding(False, f"no A/AAAA record for {host}")
        probe = PROBE_PREFIX + secrets.token_hex(8)
        unreachable: list[RedirectFinding] = []
        answered: RedirectFinding | None = None
        with httpx.Client(timeout=self.timeout, trust_env=False, follow_redirects=False) as client:
            for address in addresses[:MAX_ADDRESSES]:
                finding, connected = self._probe(client, host, address, probe, target)
                if not connected:
                    unreachable.append(finding)
                elif not finding.ok:
                    return finding
                elif answered is None:
                    answered = finding
        if answered is None:
            return unreachable[0]
        if unreachable:
            skipped = "; ".join(f.detail for f in unreachable)
            return RedirectFinding(True, f"{answered.detail} (passed over: {skipped})", answered.address)
        return answered

    def _probe(self, client: httpx.Client, host: str, address: str, probe: str,
               target: str) -> tuple[RedirectFinding, bool]:
        """(finding, whether the address took the connection and answered)."""
        where = format_server(address, self.port)
        path = CHALLENGE_PATH + probe
        try:
            with client.stream("GET", f"http://{where}{path}", headers={"Host": host}) as response:
                status, location = response.status_code, response.headers.get("location")
        except httpx.TimeoutException:
            return RedirectFinding(False, f"no answer within {self.timeout:g} s at {where}", address), False
        except httpx.ConnectError as error:
            text = str(error)
            if "refused" in text.lower():
                return RedirectFinding(False, f"connection refused at {where}", address), False
            return RedirectFinding(False, f"cannot connect to {where}: {text or type(error).__name__}", address), False
        except httpx.HTTPError as error:
            return RedirectFinding(False, f"{where} did not answer in HTTP: {error or type(error).__name__}", address), True
        if status not in REDIRECT_CODES:
            return RedirectFinding(False, f"answered {status} without a redirect", address), True
        if not location:
            return RedirectFinding(False, f"answered {status} without a Location", address), True
        seen = urljoin(f"http://{host}{path}", location)
        want = target + probe
        if _same_url(seen, want):
            return RedirectFinding(True, f"redirects to {seen}", address), True
        hint = " (the rule must keep the last path segment)" if _same_url(seen, target) else ""
        return RedirectFinding(False, f"redirects to {seen}; expected {want}{hint}", address), True


def _same_url(a: str, b: str) -> bool:
    """Equal URLs, scheme and host compared without case."""
    left, right = urlsplit(a), urlsplit(b)
    return ((left.scheme.lower(), left.netloc.lower(), left.path or "/", left.query)
            == (right.scheme.lower(), right.netloc.lower(), right.path or "/", right.query))
