"""How an open ACME order's challenges are answered: in the validation zone, directly through a DNS provider, or
over HTTP on certsmith's public URL. The order job picks one per certificate."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ...acme import AcmeUnavailable, Challenge
from ...dns.providers import DnsProvider, ProviderError, RecordSet
from ...store.tables import CertificateRow
from .challenges import ChallengeStore, ValidationRecords
from .dns_providers import DnsProviderService

__all__ = ["DirectResponder", "Responder", "ZoneResponder"]

DIRECT_TTL = 60
log = logging.getLogger("certsmith.ordering")


class Responder(Protocol):
    challenge_type: str  # "dns-01" or "http-01"

    def publish(self, row: CertificateRow, challenges: Sequence[Challenge], deadline: float) -> None:
        """Make the answers available and confirm they are served (``deadline`` on :func:`time.monotonic`)."""

    def clear(self, row: CertificateRow) -> None:
        """Take the answers away once the order is over (issued, refused or given up)."""


class ZoneResponder:
    """DNS-01 through the delegation: TXT values in certsmith's validation zone."""

    challenge_type = "dns-01"

    def __init__(self, records: ValidationRecords, challenges: ChallengeStore,
                 confirm: Callable[[str, str, float], bool]) -> None:
        self._records, self._challenges, self._confirm = records, challenges, confirm

    def publish(self, row: CertificateRow, challenges: Sequence[Challenge], deadline: float) -> None:
        values = [(self._records.record(row.account_id, c.identifier)[1], c.value) for c in challenges]
        self._challenges.publish(row.id, values)
        for owner, value in values:
            if not self._confirm(owner, value, min(10.0, max(0.1, deadline - time.monotonic()))):
                raise AcmeUnavailable(f"the validation zone does not serve the challenge for {owner} yet")

    def clear(self, row: CertificateRow) -> None:
        self._challenges.clear(row.id)


class DirectResponder:
    """DNS-01 without delegation: TXT records at ``_acme-challenge.<name>`` written through the user's DNS provider."""

    challenge_type = "dns-01"

    def __init__(self, providers: DnsProviderService, provider_name: str) -> None:
        self._providers, self._name = providers, provider_name
        self._provider: DnsProvider | None = None  # opened once per order, for writing and taking away
        self._written: list[RecordSet] = []

    def publish(self, row: CertificateRow, challenges: Sequence[Challenge], deadline: float) -> None:
        values: dict[str, list[str]] = {}
        for challenge in challenges:
            values.setdefault(challenge.record_name.rstrip(".").lower(), []).append(challenge.value)
        records = [RecordSet(name, "TXT", tuple(found), DIRECT_TTL) for name, found in values.items()]
        self._provider = self._providers.open(row.account_id, row.region, self._name)
        self._provider.present(records)  # returns once the provider's authoritative server answers them
        self._written = records

    def clear(self, row: CertificateRow) -> None:
        if self._provider is None or not self._written:
            return
        try:
            self._provider.remove(self._written)
        except ProviderError as error:  # a stale TXT value at _acme-challenge is harmless; the next order replaces it
            log.warning("certificate %s: could not remove the challenge records: %s", row.id, error)
        self._written = []
