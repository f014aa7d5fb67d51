"""The in-memory facts of ACTIVE authorities used by IssueCertificate."""

from __future__ import annotations

import time

from certsmith.domain.authority import AuthorityStatus
from certsmith.services.pca.authority_cache import ActiveAuthorities, IssuingAuthority

ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def facts(status: AuthorityStatus) -> IssuingAuthority:
    return IssuingAuthority("11111111-2222-3333-4444-555555555555", ARN, "123456789012", "us-east-1", status, "ROOT",
                            "EC_prime256v1", "GENERAL_PURPOSE", None)


def test_only_active_authorities_are_kept() -> None:
    cache = ActiveAuthorities(ttl=60)
    cache.keep(facts(AuthorityStatus.PENDING_CERTIFICATE))
    assert cache.get("123456789012", "us-east-1", ARN) is None
    cache.keep(facts(AuthorityStatus.ACTIVE))
    assert cache.get("123456789012", "us-east-1", ARN) == facts(AuthorityStatus.ACTIVE)
    assert cache.get("999999999999", "us-east-1", ARN) is None  # another account never sees it
    assert cache.get("123456789012", "eu-west-1", ARN) is None  # nor another region of the account


def test_facts_expire_and_can_be_forgotten() -> None:
    cache = ActiveAuthorities(ttl=0.05)
    cache.keep(facts(AuthorityStatus.ACTIVE))
    time.sleep(0.1)
    assert cache.get("123456789012", "us-east-1", ARN) is None
    cache = ActiveAuthorities(ttl=60)
    cache.keep(facts(AuthorityStatus.ACTIVE))
    cache.forget("11111111-2222-3333-4444-555555555555")
    assert cache.get("123456789012", "us-east-1", ARN) is None
