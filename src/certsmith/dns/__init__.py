"""DNS for public-certificate validation: the validation zone's answers, its server, and lookups of what resolvers see.

A user delegates a validation zone to certsmith and points ``_acme-challenge.<domain>`` at
``<label>.<validation zone>`` with a CNAME once; certsmith then publishes each DNS-01 challenge's TXT values there.
"""

from certsmith.dns.resolve import DnsLookupError, Lookup, Resolvers, parse_resolvers
from certsmith.dns.server import ValidationDnsServer
from certsmith.dns.zone import ZoneContent, answer, validation_owner

__all__ = ["DnsLookupError", "Lookup", "Resolvers", "ValidationDnsServer", "ZoneContent", "answer", "parse_resolvers",
           "validation_owner"]
