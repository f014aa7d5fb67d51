"""Real peers for managed renewal of public certificates: BIND (the user's zone example.test, the validation zone
forwarded to certsmith), Pebble 2.6 with ACME Renewal Information (asking BIND), and a certsmith server whose worker
looks for due renewals every half second.

A Container on the server's own database stands beside it for what the API does not show: the issuer's ACME account
(to revoke at Pebble and to read orders back), events, jobs, and the time a certificate is next looked at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from sqlalchemy import select, update

from certsmith.acme import AcmeAccount, AcmeEndpoint, AcmeSession
from certsmith.acme.ari import RenewalInfo
from certsmith.services.renewal.scheduler import RENEWAL_CHECK_JOB
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.jobs import READY
from certsmith.store.renewal_tables import EventOutboxRow
from certsmith.store.tables import CertificateRow, IssuerRow, JobRow
from certsmith.testing.bind import Bind, free_dns_port, start_bind
from certsmith.testing.pebble import Pebble, start_pebble

from ..conftest import Server, backend_url, need_binary, start_server
from ..contract.test_acme_ari import VALIDITY, fetch_order, need_ari_pebble, pebble_client
from .conftest import ZONE, pending_records

__all__ = ["AVAILABLE", "ISSUER", "AriWorld", "ari_world", "wait_for"]

ISSUER = "pebble"
AVAILABLE = "ACM Certificate Available"
SWEEP_SECONDS = 0.5
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], seconds: float = 60, every: float = 0.1,
             seen: Callable[[], object] | None = None) -> T:
    """Poll ``probe`` until it returns something other than None (or False); fail with ``what`` at the deadline,
    and with what ``seen`` shows then."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:.0f} s: {what}" + (f"; seen: {seen()}" if seen is not None else ""))
        time.sleep(every)


@dataclass
class AriWorld:
    server: Server
    bind: Bind
    pebble: Pebble
    container: Container  # on the server's database

    @property
    def acm(self) -> Any:
        return self.server.client("acm")

    @property
    def certsmith(self) -> Any:
        return self.server.client("certsmith")

    # -- certificates ------------------------------------------------------------------------------------------------
    def request(self, names: list[str], tags: list[dict[str, str]] | None = None) -> str:
        """RequestCertificate with DNS validation, and every CNAME it asks for added at BIND; not waited for."""
        extra: dict[str, Any] = {"Tags": tags} if tags else {}
        arn: str = self.acm.request_certificate(DomainName=names[0], SubjectAlternativeNames=names,
                                                **extra)["CertificateArn"]
        for record in self.records(arn):
            self.bind.set_cname(record["Name"].rstrip("."), record["Value"].rstrip("."))
        return arn

    def records(self, arn: str) -> list[dict[str, str]]:
        return pending_records(self.acm, arn)

    def detail(self, arn: str) -> dict[str, Any]:
        found: dict[str, Any] = self.acm.describe_certificate(CertificateArn=arn)["Certificate"]
        return found

    def renewals(self) -> dict[str, dict[str, Any]]:
        """ListRenewals, every page, by ARN."""
        entries: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            page = self.certsmith.list_renewals(**({"NextToken": token} if token else {}))
            entries.update((e["CertificateArn"], e) for e in page["Renewals"])
            token = page.get("NextToken")
            if not token:
                return entries

    def versions(self, arn: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.certsmith.list_certificate_versions(CertificateArn=arn)["Versions"]
        return found

    def leaf(self, arn: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.acm.get_certificate(CertificateArn=arn)["Certificate"].encode())

    # -- the database ------------------------------------------------------------------------------------------------
    def row(self, arn: str) -> CertificateRow:
        with self.container.database.read() as session:
            row = session.scalar(select(CertificateRow).where(CertificateRow.arn == arn))
            assert row is not None, arn
            session.expunge(row)
            return row

    def look_now(self, *arns: str) -> None:
        """Arrange that the scheduler looks at these certificates now (what it then decides is the renewer's)."""
        ids = [self.row(arn).id for arn in arns]
        with self.container.database.transaction() as session:
            session.execute(update(CertificateRow).where(CertificateRow.id.in_(ids))
                            .values(next_renewal_at=datetime.now(UTC)))

    def renewal_jobs(self, arn: str) -> list[JobRow]:
        certificate_id = self.row(arn).id
        with self.container.database.read() as session:
            jobs = [job for job in session.scalars(select(JobRow).where(JobRow.kind == RENEWAL_CHECK_JOB))
                    if job.payload.get("certificate_id") == certificate_id]
            for job in jobs:
                session.expunge(job)
            return jobs

    def hurry(self, arn: str) -> int:
        """Run the certificate's waiting renewal jobs now rather than at their time; how many there were."""
        waiting = [job.id for job in self.renewal_jobs(arn) if job.state == READY]
        with self.container.database.transaction() as session:
            session.execute(update(JobRow).where(JobRow.id.in_(waiting)).values(run_after=datetime.now(UTC)))
        return len(waiting)

    def events(self, arn: str, detail_type: str = AVAILABLE) -> list[dict[str, Any]]:
        """The detail of each event of ``detail_type`` about the certificate, oldest first."""
        with self.container.database.read() as session:
            rows = session.scalars(select(EventOutboxRow).where(EventOutboxRow.detail_type == detail_type)
                                   .order_by(EventOutboxRow.id)).all()
            return [dict(row.detail) for row in rows if arn in row.resources]

    # -- the CA --------------------------------------------------------------------------------------------------------
    def account(self) -> AcmeAccount:
        """The issuer's ACME account as certsmith holds it now (it registers again after a CA restart)."""
        with self.container.database.read() as session:
            issuer = session.scalar(select(IssuerRow).where(IssuerRow.name == ISSUER))
            assert issuer is not None
            session.expunge(issuer)
        with self.container.issuers.session(issuer) as acme:
            return acme.account

    def renewal_info(self, arn: str) -> RenewalInfo:
        """The renewal window Pebble suggests for the certificate now, read with certsmith's ACME client."""
        with AcmeSession(AcmeEndpoint(self.pebble.directory_url, self.pebble.tls_cert_pem), self.account()) as acme:
            info = acme.renewal_info(self.acm.get_certificate(CertificateArn=arn)["Certificate"])
        assert info is not None
        return info

    def revoke(self, *arns: str) -> None:
        """Revoke the certificates at Pebble (keyCompromise), with the issuer's account."""
        client, _ = pebble_client(self.pebble, self.account())
        for arn in arns:
            client.revoke(self.leaf(arn), 1)

    def orders(self, *arns: str) -> list[dict[str, Any]]:
        """The ACME order each certificate's last attempt placed, as Pebble has it."""
        account = self.account()
        return [fetch_order(self.pebble, account, str((self.row(arn).acme or {})["order_url"])) for arn in arns]


@contextmanager
def ari_world(home: Path) -> Iterator[AriWorld]:
    """BIND, Pebble 2.6 (90-day certificates, validating through BIND) and a certsmith server; stopped on exit."""
    need_binary("named")
    need_binary("nsupdate")
    binary = need_ari_pebble()
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    dns_port = free_dns_port()
    bind = start_bind(home / "bind", zones=("example.test",), forwards={ZONE: ("127.0.0.1", dns_port)})
    pebble: Pebble | None = None
    server: Server | None = None
    container: Container | None = None
    try:
        pebble = start_pebble(home / "pebble", bind.address, binary=binary,
                              validity_seconds=int(VALIDITY.total_seconds()))
        (home / "server").mkdir()
        server = start_server(home / "server", backend_url(),
                              ["--validation-zone", ZONE, "--dns-listen", f"127.0.0.1:{dns_port}",
                               "--resolvers", bind.address], settings={"renewal_sweep_seconds": SWEEP_SECONDS})
        server.client("certsmith").create_issuer(Name=ISSUER, AcmeDirectoryUrl=pebble.directory_url,
                                                 ContactEmail="admin@example.test", CaBundle=pebble.tls_cert_pem,
                                                 CaaIdentities=["pebble.letsencrypt.org"], Default=True)
        container = build(Settings(data_dir=server.data_dir, database_url=server.database_url), prepare=False)
        yield AriWorld(server, bind, pebble, container)
        errors = server.errors()
        assert not errors, "the server logged errors:\n" + "\n".join(errors)
    finally:
        if container is not None:
            container.writes.close()
            container.database.dispose()
        if server is not None:
            server.stop()
        if pebble is not None:
            pebble.stop()
        bind.stop()
