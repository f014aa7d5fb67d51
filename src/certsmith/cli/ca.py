"""``certsmith ca ...``: private certificate authorities: create, activate, list, describe.

Issuing, revoking and the CRL are in ``ca_issuing.py``; disable, enable, update, delete and restore in
``ca_admin.py``; all are commands of ``ca_app``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509

from ..domain.validity import add_months
from . import ca_admin, ca_issuing, ca_rotation
from .ca_view import authority_table, details
from .client import ApiError, Client
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
from .help import CertsmithTyper

__all__ = ["ca_app"]

ca_app = CertsmithTyper(help="Private certificate authorities (the ACM-PCA API).")
console = stdout_console()
ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"
SUB_TEMPLATE = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen{}/V1"
DEFAULT_KEY_ALGORITHM = "EC_prime256v1"
DEFAULT_SIGNING = {"RSA": "SHA256WITHRSA", "EC": "SHA256WITHECDSA"}
MAX_LEVELS = 5  # a root and at most four levels of subordinates, as ACM-PCA allows
PathLength = Annotated[int, typer.Option(metavar="N", min=0, max=3,
                                         help="the subordinate's path length: how many CA levels may follow it")]
ValidityYears = Annotated[int, typer.Option(metavar="YEARS", min=1,
                                            help="CA certificate validity (a subordinate ends with its parent at "
                                                 "the latest)")]


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("acm-pca", endpoint, credentials, region, ca_bundle)


def _check_parent(client: Client, parent: str, path_length: int) -> None:
    """Raise, before anything is created or signed, when the parent could never sign this subordinate."""
    status = client.call("describe_certificate_authority",
                         CertificateAuthorityArn=parent)["CertificateAuthority"]["Status"]
    if status != "ACTIVE":
        raise ApiError(f"the parent CA {parent} is {status}; it signs only when ACTIVE")
    got = client.call("get_certificate_authority_certificate", CertificateAuthorityArn=parent)
    certificate = x509.load_pem_x509_certificate(got["Certificate"].encode())
    try:
        limit = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        limit = None
    if limit == 0:
        raise ApiError(f"the parent CA {parent} has path length 0: it may sign end-entity certificates but no "
                       "other CA. Create the subordinate under a CA with a greater path length (a root has none), "
                       "or create the parent again with --path-length 1 or more")
    if limit is not None and path_length >= limit:
        raise ApiError(f"the parent CA {parent} has path length {limit}: a subordinate under it may have "
                       f"--path-length {limit - 1} at most, not {path_length}")
    level = 1 + got.get("CertificateChain", "").count("BEGIN CERTIFICATE")
    if level >= MAX_LEVELS:
        raise ApiError(f"a CA hierarchy has at most {MAX_LEVELS} levels and the parent CA {parent} is at level "
                       f"{level}: it cannot sign another CA")


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
    common_name: Annotated[str, typer.Option("--common-name", "-n", metavar="NAME", help="the CA's subject CN")],
    root: Annotated[bool, typer.Option("--root", help="create and activate a root CA")] = False,
    parent: Annotated[str | None, typer.Option("--parent", metavar="ARN",
                                               help="create and activate a subordinate signed by this CA")] = None,
    organization: Annotated[str | None, typer.Option("--organization", "-o", metavar="NAME",
                                                     help="the CA's subject O")] = None,
    key_algorithm: Annotated[str, typer.Option(metavar="ALGORITHM",
                                               help="RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1 or "
                                                    "EC_secp521r1")] = DEFAULT_KEY_ALGORITHM,
    signing_algorithm: Annotated[str | None, typer.Option(
        metavar="ALGORITHM", show_default="SHA256WITHECDSA for an EC key, SHA256WITHRSA for an RSA key",
        help="how the CA signs (SHA256WITHECDSA, SHA384WITHRSA and the like)")] = None,
    validity_years: ValidityYears = 10,
    path_length: PathLength = 0,
    crl: Annotated[bool, typer.Option("--crl", help="publish a CRL and put its URL in certificates")] = False,
    ocsp: Annotated[bool, typer.Option("--ocsp", help="answer OCSP and put its URL in certificates")] = False,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Create a CA; with --root or --parent also sign and install its certificate (ACTIVE when done)."""
    one_output(quiet, as_json)
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
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        if parent:  # a parent that cannot sign this CA is found out before anything is created
            _check_parent(client, parent, path_length)
        arn = client.call("create_certificate_authority", CertificateAuthorityType="SUBORDINATE" if parent else "ROOT",
                          CertificateAuthorityConfiguration={
                              "KeyAlgorithm": key_algorithm,
                              "SigningAlgorithm": signing_algorithm or DEFAULT_SIGNING[family],
                              "Subject": subject},
                          RevocationConfiguration=revocation)["CertificateAuthorityArn"]
    try:
        if root or parent:
            _activate(client, arn, parent, validity_years, path_length)
        described = client.call("describe_certificate_authority", CertificateAuthorityArn=arn)["CertificateAuthority"]
    except ApiError as exc:
        again = f"certsmith ca activate {arn}" + (f" --parent {parent}" if parent else "")
        raise fail(f"{exc}\nthe CA {arn} was created but is not active; once the cause is fixed, run: {again} "
                   f"(or remove it: certsmith ca delete {arn})") from None
    if quiet:
        print_arns([arn])
    elif as_json:
        print_json(described)
    else:
        console.print(f"[bold]{arn}[/bold] is [green]{described['Status']}[/green]", soft_wrap=True)


@ca_app.command("activate")
def activate(
    arn: Annotated[str, typer.Argument(metavar="ARN", help="CA in PENDING_CERTIFICATE")],
    parent: Annotated[str | None, typer.Option("--parent", metavar="ARN",
                                               help="the CA that signs it, for a subordinate")] = None,
    validity_years: ValidityYears = 10,
    path_length: PathLength = 0,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
) -> None:
    """Sign and install the certificate of a CA created without --root/--parent."""
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        kind = client.call("describe_certificate_authority", CertificateAuthorityArn=arn)["CertificateAuthority"]["Type"]
        if kind == "ROOT" and parent:
            raise ApiError(f"the CA {arn} is a ROOT CA: it signs its own certificate, so activate it without --parent "
                           "(a subordinate is made with certsmith ca create --parent)")
        if kind == "SUBORDINATE" and not parent:
            raise ApiError(f"the CA {arn} is a SUBORDINATE CA: name the CA that signs it with --parent ARN")
        if parent:
            _check_parent(client, parent, path_length)
        _activate(client, arn, parent, validity_years, path_length)
    console.print(f"[bold]{arn}[/bold] is [green]ACTIVE[/green]", soft_wrap=True)


@ca_app.command("list")
def list_authorities(endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                     region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
                     quiet: Quiet = False) -> None:
    """List the CAs of the account."""
    one_output(quiet, as_json)
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        authorities: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = client.call("list_certificate_authorities", **({"NextToken": token} if token else {}))
            authorities.extend(page.get("CertificateAuthorities", []))
            token = page.get("NextToken")
            if not token:
                break
    if quiet:
        print_arns(ca["Arn"] for ca in authorities)
    elif as_json:
        print_json(authorities)
    else:
        console.print(authority_table(authorities))


@ca_app.command("describe")
def describe(arn: Annotated[str, typer.Argument(metavar="ARN", help="the CA")],
             endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
             region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Show one CA."""
    with api_failures():
        ca = _client(endpoint, credentials, region, ca_bundle).call(
            "describe_certificate_authority", CertificateAuthorityArn=arn)["CertificateAuthority"]
    if as_json:
        print_json(ca)
        return
    console.print(authority_table([ca]))
    for label, value in details(ca):
        console.print(f"{label}: {value}", soft_wrap=True)


for _module in (ca_issuing, ca_admin, ca_rotation):
    for _name, _command in _module.COMMANDS.items():
        ca_app.command(_name)(_command)
