"""A certificate in use by something certsmith deploys to cannot be deleted or revoked, and is renewable
(also under ACM's strict eligibility rule)."""

from __future__ import annotations

from typing import Any

import pytest

from certsmith.domain.errors import ResourceInUseError
from certsmith.services.acm.certificate_records import renewal_eligibility
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.store.tables import CertificateRow

from .ca_world import drain, make_root, world

__all__ = ["world"]


def test_in_use_certificates_are_protected(world: Any) -> None:
    container, caller, _ = world
    ca = make_root(container, caller, years=5)  # ACM private certificates last 13 months
    # ACM's rule (certsmith's default renews every certificate it issued): only exported or in-use ones.
    container.renewal_policies.put(caller, "account", renew_before=None, windows=None, reuse_key=None,
                                   strict_eligibility=True)
    arn = container.certificates.request(caller, RequestedCertificate(
        "inuse.internal.test", [], ca, "EC_prime256v1", None, {}, []))
    drain(container)
    assert container.certificates.describe(caller, arn).status == "ISSUED"
    assert renewal_eligibility(container.certificates.describe(caller, arn)) == "INELIGIBLE"
    user = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1"
    with container.database.transaction() as session:
        row = session.get(CertificateRow, arn.rsplit("/", 1)[1])
        assert row is not None
        row.in_use_by = [user]
    assert renewal_eligibility(container.certificates.describe(caller, arn)) == "ELIGIBLE"
    with pytest.raises(ResourceInUseError, match="in use by"):
        container.certificates.delete(caller, arn)
    container.lifecycle.export(caller, arn, b"passphrase")
    with pytest.raises(ResourceInUseError, match="in use by"):
        container.lifecycle.revoke(caller, arn, "KEY_COMPROMISE")
    assert container.certificates.describe(caller, arn).status == "ISSUED"
