"""ACME (RFC 8555) client: accounts, DNS-01 and HTTP-01 orders and certificates from an ACME CA, and ACME Renewal
Information (RFC 9773)."""

from certsmith.acme.ari import RenewalInfo, certificate_id
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
           "AcmeSession", "AcmeUnavailable", "Challenge", "DnsChallenge", "PlacedOrder", "RenewalInfo", "certificate_id",
           "directory_meta", "generate_account_key", "register_account"]
