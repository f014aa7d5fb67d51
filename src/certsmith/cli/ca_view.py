"""How the ``ca`` commands show a CA: its row in a table, and the lines ``ca describe`` prints under it."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from .common import expiry

__all__ = ["authority_table", "details"]


def authority_table(authorities: list[dict[str, Any]]) -> Table:
    table = Table("Type", "Status", "Subject CN", "Key", "Expires")
    table.add_column("ARN", overflow="fold")  # never cut: people copy it into the next command
    for ca in authorities:
        config = ca.get("CertificateAuthorityConfiguration", {})
        expires = expiry(ca.get("NotAfter"))
        status_colour = {"ACTIVE": "green", "FAILED": "red", "EXPIRED": "red"}.get(ca["Status"], "yellow")
        table.add_row(ca["Type"], f"[{status_colour}]{ca['Status']}[/{status_colour}]",
                      config.get("Subject", {}).get("CommonName", ""), config.get("KeyAlgorithm", ""), expires, ca["Arn"])
    return table


def details(ca: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines under a CA's row in ``ca describe``: what people check before they rely on it."""
    config = ca.get("CertificateAuthorityConfiguration", {})
    subject = ", ".join(f"{key}={value}" for key, value in config.get("Subject", {}).items()
                        if isinstance(value, str))
    revocation = ca.get("RevocationConfiguration", {})
    crl, ocsp = revocation.get("CrlConfiguration", {}), revocation.get("OcspConfiguration", {})
    lines = [("Subject", subject), ("Signing", config.get("SigningAlgorithm", "")),
             ("Usage", ca.get("UsageMode", "")), ("Serial", ca.get("Serial", "")),
             ("Valid", f"{ca['NotBefore']} to {ca['NotAfter']}" if ca.get("NotBefore") and ca.get("NotAfter") else ""),
             ("CRL", ("enabled" + (f", {crl['CustomCname']}" if crl.get("CustomCname") else "")
                      + f", valid {crl.get('ExpirationInDays', 7)} days") if crl.get("Enabled") else "disabled"),
             ("OCSP", ("enabled" + (f", {ocsp['OcspCustomCname']}" if ocsp.get("OcspCustomCname") else ""))
              if ocsp.get("Enabled") else "disabled"),
             ("Failure", ca.get("FailureReason", "")), ("Restorable until", ca.get("RestorableUntil", ""))]
    return [(label, str(value)) for label, value in lines if value]
