"""DescribeCertificate's RenewalSummary carries ACM's members only: no approval links, no inner state."""

from __future__ import annotations

from datetime import UTC, datetime

from certsmith.api.aws.acm import _renewal_summary


def test_the_renewal_summary_keeps_inner_validation_state_out() -> None:
    renewal = {"RenewalStatus": "SUCCESS", "UpdatedAt": "2030-01-01T00:00:00+00:00", "Token": "x",
               "DomainValidationOptions": [{"DomainName": "a.example.test", "ValidationStatus": "SUCCESS",
                                            "ValidationMethod": "EMAIL", "ValidationEmails": ["admin@example.test"],
                                            "Links": {"admin@example.test": "https://certsmith/approve/secret"},
                                            "MailDue": "2030-01-01T00:00:00+00:00"}]}
    summary = _renewal_summary(renewal)
    assert summary == {"RenewalStatus": "SUCCESS", "UpdatedAt": datetime(2030, 1, 1, tzinfo=UTC),
                       "DomainValidationOptions": [{"DomainName": "a.example.test", "ValidationStatus": "SUCCESS",
                                                    "ValidationMethod": "EMAIL",
                                                    "ValidationEmails": ["admin@example.test"]}]}
    assert "secret" not in repr(summary)
