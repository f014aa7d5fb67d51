"""ACME (RFC 8555) client: accounts, DNS-01 and HTTP-01 orders and certificates from an ACME CA."""

from certsmith.acme.client import (
    CHALLENGE_TYPES,
    AcmeAccount,
    AcmeEndpoint,
    AcmeSession,
    Challenge,
    DnsChallenge,
    PlacedOrder,
    directory_meta,
    generate_account_key,
    register_account,
)
from certsmith.acme.errors import AcmeError, AcmeProblem, AcmeRateLimited, AcmeUnavailable

__all__ = ["CHALLENGE_TYPES", "AcmeAccount", "AcmeEndpoint", "AcmeError", "AcmeProblem", "AcmeRateLimited",
           "AcmeSession", "AcmeUnavailable", "Challenge", "DnsChallenge", "PlacedOrder", "directory_meta",
           "generate_account_key", "register_account"]
