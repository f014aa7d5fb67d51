"""``certsmith ca ...``: private certificate authorities."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from rich.console import Console
from rich.table import Table

from ..domain.validity import add_months
from .client import ApiError, Client, default_options, make_client
from .common import AsJson, Credentials, Endpoint, Region, connect, expiry, fail, print_json

__all__ = ["ca_app"]

ca_app = typer.Typer(help="Private certificate authorities (the ACM-PCA API).", no_args_is_help=True,
                     pretty_exceptions_enable=False, pretty_exceptions_show_locals=False)
console = Console()
ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"
SUB_TEMPLATE = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen{}/V1"
_DEFAULT_SIGNING = {"RSA": "SHA256WITHRSA", "EC": "SHA256WITHECDSA"}



def _client(endpoint: str | None, credentials: Path | None, region: str | None) -> Client:
    return connect("acm-pca", endpoint, credentials, region)


def _activate(client: Client, arn: str, parent: str | None, validity_years: int, path_length: int) -> None:
    client.wait("certificate_authority_csr_created", CertificateAuthorityArn=arn)
    csr = client.call("get_certificate_authority_csr", CertificateAuthorityArn=arn)["Csr"]
    if parent is None:
        issuer, template = arn, ROOT_TEMPLATE
    else:
        issuer, template = parent, SUB_TEMPLATE.format(path_length)
    issuer_ca = client.call("describe_certificate_authority", CertificateAuthorityArn=issuer)["CertificateAuthority"]
    signing = issuer_ca["CertificateAuthorityConfiguration"]["SigningAlgorithm"]
    validity: dict[str, Any] = {"Type": "YEARS", "Value": validity_years}
    if parent is not None and "NotAfter" in issuer_ca:
        # A subordinate cannot outlive its parent: end with the parent when the requested years reach past it.
        parent_end = issuer_ca["NotAfter"]
        if parent_end < add_months(datetime.now(UTC), 12 * validity_years):
            validity = {"Type": "ABSOLUTE", "Value": int(parent_end.timestamp())}
    cert_arn = client.call("issue_certificate", CertificateAuthorityArn=issuer, Csr=csr.encode(),
                           SigningAlgorithm=signing, TemplateArn=template, Validity=validity)["CertificateArn"]
    client.wait("certificate_issued", CertificateAuthorityArn=issuer, CertificateArn=cert_arn)
    issued = client.call("get_certificate", CertificateAuthorityArn=issuer, CertificateArn=cert_arn)
    kwargs: dict[str, Any] = {"CertificateAuthorityArn": arn, "Certificate": issued["Certificate"].encode()}
    if parent is not None:
        kwargs["CertificateChain"] = issued["CertificateChain"].encode()
    client.call("import_certificate_authority_certificate", **kwargs)


@ca_app.command("create")
def create(
    common_name: Annotated[str, typer.Option("--common-name", "-n", help="the CA's subject CN")],
    root: Annotated[bool, typer.Option("--root", help="create and activate a root CA")] = False,
    parent: Annotated[str | None, typer.Option("--parent", help="ARN of the CA that signs this subordinate")] = None,
    organization: Annotated[str | None, typer.Option("--organization", "-o")] = None,
    key_algorithm: Annotated[str, typer.Option(help="RSA_2048 … EC_secp521r1")] = "EC_prime256v1",
    signing_algorithm: Annotated[str | None, typer.Option(help="default: SHA256 of the key family")] = None,
    validity_years: Annotated[int, typer.Option(help="CA certificate validity", min=1)] = 10,
    path_length: Annotated[int, typer.Option(help="subordinate path length (0-3)", min=0, max=3)] = 0,
    crl: Annotated[bool, typer.Option("--crl", help="publish a CRL and put its URL in certificates")] = False,
    ocsp: Annotated[bool, typer.Option("--ocsp", help="answer OCSP and put its URL in certificates")] = False,
    endpoint: Endpoint = None, credentials: Credentials = None, region: Region = None, as_json: AsJson = False,
) -> None:
    """Create a CA; with --root or --parent also sign and install its certificate (ACTIVE when done)."""
    if root and parent:
        raise fail("choose --root or --parent, not both")
    if not common_name.strip():
        raise fail("--common-name must not be empty: a CA certificate needs a subject")
    family = "RSA" if key_algorithm.startswith("RSA") else "EC"
    subject: dict[str, str] = {"CommonName": common_name}
    if organization:
        subject["Organization"] = organization
    revocation: dict[str, Any] = {}
    if crl:
        revocation["CrlConfiguration"] = {"Enabled": True, "ExpirationInDays": 7}
    if ocsp:
        revocation["OcspConfiguration"] = {"Enabled": True}
    try:
        client = _client(endpoint, credentials, region)
        if parent:  # a parent that cannot sign is found out before anything is created
            status = client.call("describe_certificate_authority",
                                 CertificateAuthorityArn=parent)["CertificateAuthority"]["Status"]
            if status != "ACTIVE":
                raise ApiError(f"the parent CA {parent} is {status}; it signs only when ACTIVE")
        arn = client.call("create_certificate_authority", CertificateAuthorityType="SUBORDINATE" if parent else "ROOT",
                          CertificateAuthorityConfiguration={
                              "KeyAlgorithm": key_algorithm,
                              "SigningAlgorithm": signing_algorithm or _DEFAULT_SIGNING[family],
                              "Subject": subject},
                          RevocationConfiguration=revocation)["CertificateAuthorityArn"]
    except ApiError as exc:
        raise fail(str(exc)) from None
    try:
        if root or parent:
            _activate(client, arn, parent, validity_years, path_length)
        described = client.call("describe_certificate_authority", CertificateAuthorityArn=arn)["CertificateAuthority"]
    except ApiError as exc:
        again = f"certsmith ca activate {arn}" + (f" --parent {parent}" if parent else "")
        raise fail(f"{exc}\nthe CA {arn} was created but is not active; once the cause is fixed, run: {again}") from None
    if as_json:
        print_json(described)
    else:
        console.print(f"[bold]{arn}[/bold] is [green]{described['Status']}[/green]", soft_wrap=True)


@ca_app.command("activate")
def activate(
    arn: Annotated[str, typer.Argument(help="CA in PENDING_CERTIFICATE")],
    parent: Annotated[str | None, typer.Option("--parent", help="signing CA for a subordinate")] = None,
    validity_years: Annotated[int, typer.Option(help="CA certificate validity", min=1)] = 10,
    path_length: Annotated[int, typer.Option(help="subordinate path length (0-3)", min=0, max=3)] = 0,
    endpoint: Endpoint = None, credentials: Credentials = None, region: Region = None,
) -> None:
    """Sign and install the certificate of a CA created without --root/--parent."""
    try:
        client = _client(endpoint, credentials, region)
        _activate(client, arn, parent, validity_years, path_length)
    except ApiError as exc:
        raise fail(str(exc)) from None
    console.print(f"[bold]{arn}[/bold] is [green]ACTIVE[/green]", soft_wrap=True)


def _table(authorities: list[dict[str, Any]]) -> Table:
    table = Table("Type", "Status", "Subject CN", "Key", "Expires")
    table.add_column("ARN", overflow="fold")  # never cut: people copy it into the next command
    for ca in authorities:
        config = ca.get("CertificateAuthorityConfiguration", {})
        expires = expiry(ca.get("NotAfter"))
        status_colour = {"ACTIVE": "green", "FAILED": "red", "EXPIRED": "red"}.get(ca["Status"], "yellow")
        table.add_row(ca["Type"], f"[{status_colour}]{ca['Status']}[/{status_colour}]",
                      config.get("Subject", {}).get("CommonName", ""), config.get("KeyAlgorithm", ""), expires, ca["Arn"])
    return table


@ca_app.command("list")
def list_authorities(endpoint: Endpoint = None, credentials: Credentials = None, region: Region = None,
                     as_json: AsJson = False) -> None:
    """List the CAs of the account."""
    try:
        client = _client(endpoint, credentials, region)
        authorities: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = client.call("list_certificate_authorities", **({"NextToken": token} if token else {}))
            authorities.extend(page.get("CertificateAuthorities", []))
            token = page.get("NextToken")
            if not token:
                break
    except ApiError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(authorities)
    else:
        console.print(_table(authorities))


@ca_app.command("describe")
def describe(arn: str, endpoint: Endpoint = None, credentials: Credentials = None, region: Region = None,
             as_json: AsJson = False) -> None:
    """Show one CA."""
    try:
        ca = _client(endpoint, credentials, region).call("describe_certificate_authority",
                                                         CertificateAuthorityArn=arn)["CertificateAuthority"]
    except ApiError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(ca)
        return
    console.print(_table([ca]))
    for label, value in _details(ca):
        console.print(f"{label}: {value}")


def _details(ca: dict[str, Any]) -> list[tuple[str, str]]:
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


@ca_app.command("issue")
def issue(
    arn: Annotated[str, typer.Argument(help="issuing CA")],
    csr: Annotated[Path, typer.Option("--csr", help="PEM CSR file", exists=True, dir_okay=False)],
    days: Annotated[int, typer.Option(help="validity in days")] = 365,
    template: Annotated[str | None, typer.Option(help="template ARN")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write certificate + chain here")] = None,
    endpoint: Endpoint = None, credentials: Credentials = None, region: Region = None, as_json: AsJson = False,
) -> None:
    """Issue a certificate for a CSR and print (or write) it with its chain."""
    try:
        client = _client(endpoint, credentials, region)
        ca = client.call("describe_certificate_authority", CertificateAuthorityArn=arn)["CertificateAuthority"]
        kwargs: dict[str, Any] = {"CertificateAuthorityArn": arn, "Csr": csr.read_bytes(),
                                  "SigningAlgorithm": ca["CertificateAuthorityConfiguration"]["SigningAlgorithm"],
                                  "Validity": {"Type": "DAYS", "Value": days}}
        if template:
            kwargs["TemplateArn"] = template
        cert_arn = client.call("issue_certificate", **kwargs)["CertificateArn"]
        client.wait("certificate_issued", CertificateAuthorityArn=arn, CertificateArn=cert_arn)
        issued = client.call("get_certificate", CertificateAuthorityArn=arn, CertificateArn=cert_arn)
    except ApiError as exc:
        raise fail(str(exc)) from None
    bundle = issued["Certificate"].rstrip("\n") + "\n" + issued.get("CertificateChain", "")
    if out:
        out.write_text(bundle)
    if as_json:
        print_json({"CertificateArn": cert_arn, **issued})
    elif out:
        console.print(f"{cert_arn}\nwritten to {out}", soft_wrap=True)
    else:
        sys.stdout.write(bundle)


@ca_app.command("revoke")
def revoke(
    arn: Annotated[str, typer.Argument(help="issuing CA")],
    serial: Annotated[str, typer.Argument(help="serial in hex (colons allowed)")],
    reason: Annotated[str, typer.Option(help="RevocationReason")] = "UNSPECIFIED",
    endpoint: Endpoint = None, credentials: Credentials = None, region: Region = None,
) -> None:
    """Revoke a certificate the CA issued."""
    try:
        _client(endpoint, credentials, region).call("revoke_certificate", CertificateAuthorityArn=arn,
                                                    CertificateSerial=serial, RevocationReason=reason)
    except ApiError as exc:
        raise fail(str(exc)) from None
    console.print(f"revoked {serial} ({reason})")


def _crl_reason(entry: x509.RevokedCertificate) -> str | None:
    """The entry's reason code as its RFC 5280 name (keyCompromise ...); None when it has none."""
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        return None


@ca_app.command("crl")
def crl(
    arn: Annotated[str, typer.Argument(help="CA whose CRL to fetch")],
    out: Annotated[Path | None, typer.Option("--out", help="write the DER CRL here")] = None,
    endpoint: Endpoint = None, credentials: Credentials = None, region: Region = None, as_json: AsJson = False,
) -> None:
    """Fetch the CA's CRL from the URL certsmith puts in certificates, and summarise it."""
    import httpx

    options = default_options(endpoint, credentials, region)
    authority_id = arn.rsplit("/", 1)[-1]
    try:
        ca = make_client("acm-pca", options).call("describe_certificate_authority",
                                                  CertificateAuthorityArn=arn)["CertificateAuthority"]
    except ApiError as exc:
        raise fail(str(exc)) from None
    crl_config = ca.get("RevocationConfiguration", {}).get("CrlConfiguration", {})
    if not crl_config.get("Enabled"):
        raise fail("the CA has no CRL: enable CrlConfiguration (certsmith ca create --crl)")
    path = (crl_config.get("CustomPath") or "crl").strip("/")
    response = httpx.get(f"{options.endpoint.rstrip('/')}/{path}/{authority_id}.crl", timeout=10)
    if response.status_code != 200:
        raise fail(f"no CRL yet (HTTP {response.status_code}); one is published after the first issuance")
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
    console.print(f"CRL of {arn}: this update {parsed.last_update_utc:%Y-%m-%d %H:%M}Z, {len(entries)} revoked")
    console.print(table)
