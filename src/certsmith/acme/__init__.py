"""ACME (RFC 8555) client: accounts, DNS-01 orders and certificates from an ACME CA."""

from certsmith.acme.client import (
    AcmeAccount,
    AcmeEndpoint,
    AcmeSession,
    DnsChallenge,
    PlacedOrder,
    directory_meta,
    generate_account_key,
    register_account,
)
from certsmith.acme.errors import AcmeError, AcmeProblem, AcmeRateLimited, AcmeUnavailable

__all__ = ["AcmeAccount", "AcmeEndpoint", "AcmeError", "AcmeProblem", "AcmeRateLimited", "AcmeSession",
           "AcmeUnavailable", "DnsChallenge", "PlacedOrder", "directory_meta", "generate_account_key",
           "register_account"]
