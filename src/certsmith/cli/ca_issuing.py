"""``certsmith ca issue | revoke | crl``: what a CA does for the certificates it signs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from rich.table import Table

from .common import (
    DEFAULT_CREDENTIALS,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    AsJson,
    CaBundle,
    Credentials,
    Endpoint,
    Quiet,
    Region,
    api_failures,
    connect,
    fail,
    one_output,
    print_arns,
    print_json,
    stdout_console,
)

__all__ = ["COMMANDS"]

console = stdout_console()
IssuingCa = Annotated[str, typer.Argument(metavar="ARN", help="the issuing CA")]


def issue(
    arn: IssuingCa,
    csr: Annotated[Path, typer.Option("--csr", metavar="FILE", help="PEM CSR file", exists=True, dir_okay=False)],
    days: Annotated[int, typer.Option(metavar="DAYS", min=1, help="validity in days")] = 365,
    template: Annotated[str | None, typer.Option(metavar="ARN", help="template ARN",
                                                 show_default="EndEntityCertificate/V1")] = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="write certificate + chain here",
                                             show_default="standard output")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Issue a certificate for a CSR and print (or write) it with its chain; -q prints its ARN instead."""
    one_output(quiet, as_json)
    with api_failures():
        client = connect("acm-pca", endpoint, credentials, region, ca_bundle)
        ca = client.call("describe_certificate_authority", CertificateAuthorityArn=arn)["CertificateAuthority"]
        kwargs: dict[str, Any] = {"CertificateAuthorityArn": arn, "Csr": csr.read_bytes(),
                                  "SigningAlgorithm": ca["CertificateAuthorityConfiguration"]["SigningAlgorithm"],
                                  "Validity": {"Type": "DAYS", "Value": days}}
        if template:
            kwargs["TemplateArn"] = template
        cert_arn = client.call("issue_certificate", **kwargs)["CertificateArn"]
        client.wait("certificate_issued", CertificateAuthorityArn=arn, CertificateArn=cert_arn)
        issued = client.call("get_certificate", CertificateAuthorityArn=arn, CertificateArn=cert_arn)
    bundle = issued["Certificate"].rstrip("\n") + "\n" + issued.get("CertificateChain", "")
    if out:
        out.write_text(bundle)
    if quiet:
        print_arns([cert_arn])
    elif as_json:
        print_json({"CertificateArn": cert_arn, **issued})
    elif out:
        console.print(f"{cert_arn}\nwritten to {out}", soft_wrap=True)
    else:
        sys.stdout.write(bundle)


def revoke(
    arn: IssuingCa,
    serial: Annotated[str, typer.Argument(metavar="SERIAL", help="serial in hex (colons allowed)")],
    reason: Annotated[str, typer.Option(metavar="REASON", help="RevocationReason: KEY_COMPROMISE, SUPERSEDED and so on")]
    = "UNSPECIFIED",
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
) -> None:
    """Revoke a certificate the CA issued."""
    with api_failures():
        connect("acm-pca", endpoint, credentials, region, ca_bundle).call(
            "revoke_certificate", CertificateAuthorityArn=arn, CertificateSerial=serial, RevocationReason=reason)
    console.print(f"revoked {serial} ({reason})")


def _crl_reason(entry: x509.RevokedCertificate) -> str | None:
    """The entry's reason code as its RFC 5280 name (keyCompromise ...); None when it has none."""
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        return None


def crl(
    arn: Annotated[str, typer.Argument(metavar="ARN", help="CA whose CRL to fetch")],
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="write the DER CRL here")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Fetch the CA's CRL from the URL certsmith puts in certificates, and summarise it."""
    import httpx

    authority_id = arn.rsplit("/", 1)[-1]
    with api_failures():
        client = connect("acm-pca", endpoint, credentials, region, ca_bundle)
        ca = client.call("describe_certificate_authority", CertificateAuthorityArn=arn)["CertificateAuthority"]
    crl_config = ca.get("RevocationConfiguration", {}).get("CrlConfiguration", {})
    if not crl_config.get("Enabled"):
        raise fail(f"the CA has no CRL: enable it with certsmith ca update {arn} --crl")
    path = (crl_config.get("CustomPath") or "crl").strip("/")
    url = f"{endpoint.rstrip('/')}/{path}/{authority_id}.crl"
    try:
        response = httpx.get(url, timeout=10, verify=client.options.ssl_context())
    except httpx.HTTPError as exc:
        raise fail(f"could not fetch the CRL from {url}: {exc}") from None
    if response.status_code != 200:
        raise fail(f"no CRL yet (HTTP {response.status_code}); an active CA publishes one within moments of "
                   "activation or of turning CRLs on (is a worker running?)")
    parsed = x509.load_der_x509_crl(response.content)
    if out:
        out.write_bytes(response.content)
    entries = [{"serial": format(r.serial_number, "x"), "revoked_at": r.revocation_date_utc.isoformat(),
                "reason": _crl_reason(r)} for r in parsed]
    if as_json:
        print_json({"this_update": parsed.last_update_utc.isoformat(),
                    "next_update": parsed.next_update_utc.isoformat() if parsed.next_update_utc else None,
                    "revoked": entries})
        return
    table = Table("Revoked at", "Reason")
    table.add_column("Serial", no_wrap=True)
    for entry in entries:
        table.add_row(entry["revoked_at"], entry["reason"] or "-", entry["serial"])
    console.print(f"CRL of {arn}: this update {parsed.last_update_utc:%Y-%m-%d %H:%M}Z, {len(entries)} revoked",
                  soft_wrap=True)
    console.print(table)


COMMANDS: dict[str, Callable[..., None]] = {"issue": issue, "revoke": revoke, "crl": crl}
