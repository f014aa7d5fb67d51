"""``certsmith cert ...``: certificates (the ACM API)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..domain.import_check import Bundle, assemble_bundle, inspect_bundle, repair_bundle
from .cert_public import PROVIDER_TAG, create_records, request_public, resend_email
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
    expiry,
    fail,
    one_output,
    print_arns,
    print_json,
    stdout_console,
)
from .help import CertsmithTyper
from .renewal import versions

__all__ = ["cert_app"]

cert_app = CertsmithTyper(help="Certificates (the ACM API): request from a CA, import, export, renew.")
console = stdout_console()
ALL_KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]
KEY_FOR_CA_FAMILY = {"EC": "EC_prime256v1", "RSA": "RSA_2048"}  # the API's own default, RSA_2048, fails on an EC CA
Arn = Annotated[str, typer.Argument(metavar="ARN", help="the certificate")]
Tags = Annotated[list[str] | None, typer.Option("--tag", metavar="KEY=VALUE", help="a tag (repeat)")]
REQUEST_HELP = ("Request a certificate whose key certsmith generates and keeps: signed by a private CA (--ca ARN), or "
                "public (--public) from an issuer (certsmith issuer).\n\n"
                "With --public, stdout holds the ARN on its first line, then one zone-file line per DNS record to add "
                "(_acme-challenge.NAME. 300 IN CNAME ...): each is added once and validates every later request and "
                "renewal of the name. With -q stdout holds the ARN alone (the records go to stderr). A failed or "
                "timed-out request exits 1; `certsmith doctor validation ARN` says why.")


cert_app.command("create-records")(create_records)
cert_app.command("resend-email")(resend_email)
cert_app.command("versions")(versions)


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("acm", endpoint, credentials, region, ca_bundle)


def _tags(pairs: list[str]) -> list[dict[str, str]]:
    tags = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        tags.append({"Key": key, "Value": value} if sep else {"Key": key})
    return tags


def _table(summaries: list[dict[str, Any]]) -> Table:
    table = Table("Domain", "Type", "Status", "Key", "Expires")
    table.add_column("ARN", overflow="fold")
    for item in summaries:
        colour = {"ISSUED": "green", "FAILED": "red", "EXPIRED": "red", "REVOKED": "red"}.get(item["Status"], "yellow")
        table.add_row(item.get("DomainName", ""), item.get("Type", ""), f"[{colour}]{item['Status']}[/{colour}]",
                      item.get("KeyAlgorithm", ""), expiry(item.get("NotAfter")), item["CertificateArn"])
    return table


@cert_app.command("request", help=REQUEST_HELP)
def request(
    domain: Annotated[str, typer.Argument(metavar="DOMAIN", help="the certificate's first name (its subject CN)")],
    more: Annotated[list[str] | None, typer.Argument(metavar="NAME", help="more names (as --san)",
                                                     show_default=False)] = None,
    ca: Annotated[str | None, typer.Option("--ca", metavar="ARN", help="the private CA that signs it")] = None,
    public: Annotated[bool, typer.Option("--public", help="a public certificate from an issuer (certsmith issuer), "
                                                          "validated by DNS: prints the records to add")] = False,
    issuer: Annotated[str | None, typer.Option("--issuer", metavar="NAME", show_default="the default issuer",
                                               help="with --public: the issuer (tags the request certsmith:issuer)")]
    = None,
    san: Annotated[list[str] | None, typer.Option("--san", metavar="NAME", help="another name (repeat)")] = None,
    key_algorithm: Annotated[str | None, typer.Option(
        metavar="ALGORITHM", help="RSA_2048, EC_prime256v1 or EC_secp384r1, of the CA's key family (--public from an "
                                  "ACME issuer: EC_prime256v1)",
        show_default="EC_prime256v1 from an EC CA, RSA_2048 from an RSA CA")] = None,
    tag: Tags = None,
    method: Annotated[str, typer.Option(
        "--method", metavar="METHOD", help="with --public: how the names are validated: dns (a CNAME per name, once), "
                                           "http (a redirect on the name's web server) or email (approval mails)")]
    = "dns",
    direct: Annotated[str | None, typer.Option(
        "--direct", metavar="PROVIDER", help="with --public: answer DNS-01 with TXT records at _acme-challenge written "
                                             "through this DNS provider (no CNAME to add)")] = None,
    wait: Annotated[bool, typer.Option(help="wait until it is issued")] = True,
    timeout: Annotated[int, typer.Option("--timeout", metavar="SECONDS",
                                         help="with --public: how long --wait waits for the records and the CA")]
    = 3600,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Request a certificate whose key certsmith generates and keeps (the help is REQUEST_HELP)."""
    one_output(quiet, as_json)
    if public and ca is not None:
        raise fail("--public and --ca are exclusive: --ca ARN requests a private certificate signed by that CA, "
                   "--public a public one from an issuer (certsmith issuer list)", code=2)
    if not public and ca is None:
        raise fail("give --ca ARN (a private certificate signed by that CA) or --public (a public certificate from an "
                   "issuer, validated by DNS)", code=2)
    if issuer is not None and not public:
        raise fail("--issuer is for --public requests; --ca ARN names the private CA", code=2)
    if (direct is not None or method != "dns") and not public:
        raise fail("--method and --direct are for --public requests", code=2)
    if method.lower() not in ("dns", "http", "email"):
        raise fail(f"--method {method}: give dns, http or email", code=2)
    if direct is not None and method.lower() != "dns":
        raise fail("--direct answers DNS-01 challenges; it goes with --method dns", code=2)
    if timeout < 1:
        raise fail(f"--timeout {timeout}: give 1 second or more", code=2)
    san = [*(more or []), *(san or [])]
    if public:
        public_kwargs: dict[str, Any] = {"DomainName": domain}
        if san:
            public_kwargs["SubjectAlternativeNames"] = san
        if tag:
            public_kwargs["Tags"] = _tags(tag)
        if method.lower() != "dns":
            public_kwargs["ValidationMethod"] = method.upper()
        if direct is not None:
            public_kwargs.setdefault("Tags", []).append({"Key": PROVIDER_TAG, "Value": direct})
        request_public(lambda service: connect(service, endpoint, credentials, region, ca_bundle), public_kwargs,
                       issuer, key_algorithm, wait, timeout, quiet, as_json)
        return
    assert ca is not None
    kwargs: dict[str, Any] = {"DomainName": domain, "CertificateAuthorityArn": ca}
    if san:
        kwargs["SubjectAlternativeNames"] = san
    if tag:
        kwargs["Tags"] = _tags(tag)
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        if key_algorithm is None:
            authority = connect("acm-pca", endpoint, credentials, region, ca_bundle).call(
                "describe_certificate_authority", CertificateAuthorityArn=ca)["CertificateAuthority"]
            ca_key = authority["CertificateAuthorityConfiguration"]["KeyAlgorithm"]
            key_algorithm = KEY_FOR_CA_FAMILY["EC" if ca_key.startswith("EC_") else "RSA"]
        arn = client.call("request_certificate", KeyAlgorithm=key_algorithm, **kwargs)["CertificateArn"]
        if wait:
            try:
                client.wait("certificate_validated", CertificateArn=arn)
            except ApiError:
                pass  # a FAILED request is explained below from its FailureReason
        detail = client.call("describe_certificate", CertificateArn=arn)["Certificate"]
    if detail["Status"] == "FAILED":
        reason = detail.get("FailureReason", "OTHER")
        hint = {"PCA_INVALID_ARGS": f"; is {key_algorithm} of the CA's key family?",
                "PCA_INVALID_STATE": "; is the CA ACTIVE?",
                "PCA_INVALID_DURATION": "; does the CA's certificate expire within 13 months?"}.get(reason, "")
        raise fail(f"the request {arn} failed: {reason}{hint}")
    if wait and detail["Status"] != "ISSUED":
        raise fail(f"the request {arn} is still {detail['Status']}")
    if quiet:
        print_arns([arn])
    elif as_json:
        print_json(detail)
    else:
        console.print(_table([detail]))


@cert_app.command("list")
def list_certificates(
    status: Annotated[list[str] | None, typer.Option("--status", metavar="STATUS", show_default="every status",
                                                    help="ISSUED, FAILED, PENDING_VALIDATION and so on (repeat)")] = None,
    key_type: Annotated[list[str] | None, typer.Option("--key-type", metavar="TYPE", show_default="every key type",
                                                      help="only these key types (repeat)")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """List certificates, every key type unless --key-type narrows it (the bare API call lists RSA only)."""
    one_output(quiet, as_json)
    kwargs: dict[str, Any] = {"Includes": {"keyTypes": key_type or ALL_KEY_TYPES}}
    if status:
        kwargs["CertificateStatuses"] = status
    summaries: list[dict[str, Any]] = []
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        summaries = client.call_all("list_certificates", "CertificateSummaryList", **kwargs)
    if quiet:
        print_arns(item["CertificateArn"] for item in summaries)
    elif as_json:
        print_json(summaries)
    else:
        console.print(_table(summaries))


@cert_app.command("describe")
def describe(arn: Arn, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
             region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Show one certificate."""
    with api_failures():
        detail = _client(endpoint, credentials, region, ca_bundle).call("describe_certificate",
                                                                        CertificateArn=arn)["Certificate"]
    if as_json:
        print_json(detail)
        return
    console.print(_table([detail]))
    for label, key in (("Names", "SubjectAlternativeNames"), ("Serial", "Serial"), ("Issuer", "Issuer"),
                       ("CA", "CertificateAuthorityArn"), ("Renewal", "RenewalEligibility"),
                       ("Failure", "FailureReason"), ("In use by", "InUseBy")):
        if detail.get(key):
            value = detail[key]
            console.print(f"{label}: {', '.join(value) if isinstance(value, list) else value}", soft_wrap=True)


@cert_app.command("get")
def get(arn: Arn, out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="write certificate + chain "
                                                           "here", show_default="standard output")] = None,
        endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
        region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Print (or write) the certificate and its chain, PEM."""
    with api_failures():
        got = _client(endpoint, credentials, region, ca_bundle).call("get_certificate", CertificateArn=arn)
    text = got["Certificate"].rstrip("\n") + "\n" + got.get("CertificateChain", "")
    if out:
        out.write_text(text)
        console.print(f"written to {out}")
    else:
        sys.stdout.write(text)


def _print_report(bundle: Bundle, say: Console) -> bool:
    report = inspect_bundle(bundle, datetime.now(UTC))
    for warning in report.warnings:
        say.print(f"  [yellow]note[/yellow]: {warning}", highlight=False)
    if report.ok:
        say.print(f"[green]ready to import[/green]: {report.key_algorithm}, "
                  f"{len(report.chain)} certificate(s) in the chain")
        return True
    say.print(f"[red]{len(report.problems)} problem(s)[/red]:")
    for problem in report.problems:
        mark = " [yellow](--fix repairs this)[/yellow]" if problem.repairable else ""
        say.print(f"  • {problem}{mark}", highlight=False)
    return False


def _write_bundle(bundle: Bundle, folder: Path, say: Console) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "certificate.pem").write_bytes(bundle.certificate)
    if bundle.chain:
        (folder / "chain.pem").write_bytes(bundle.chain)
    key = folder / "private-key.pem"
    descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(bundle.private_key)
    say.print(f"written to {folder}: certificate.pem, {'chain.pem, ' if bundle.chain else ''}private-key.pem",
              soft_wrap=True)


@cert_app.command("import")
def import_certificate(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...",
                                                help="PEM files: certificate (or fullchain), key, chain — in any "
                                                     "order; --fix puts the certificate of the key first, then its chain",
                                                exists=True, dir_okay=False)],
    check: Annotated[bool, typer.Option("--check", help="report every problem; import nothing")] = False,
    fix: Annotated[bool, typer.Option("--fix", help="repair what is safe: line endings, whitespace, chain order, "
                                                    "leaf in the chain")] = False,
    out: Annotated[Path | None, typer.Option("--out", metavar="FOLDER",
                                             help="with --fix: write the repaired files here")] = None,
    arn: Annotated[str | None, typer.Option("--arn", metavar="ARN", help="re-import over this certificate",
                                            show_default="a new certificate")] = None,
    tag: Tags = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, quiet: Quiet = False,
) -> None:
    """Import a certificate with its key and chain — or, with --check, say everything wrong with them."""
    say = Console(stderr=True) if quiet else console  # with -q stdout holds the ARN alone
    bundle = assemble_bundle([path.read_bytes() for path in files])
    if fix:
        bundle, changes = repair_bundle(bundle, datetime.now(UTC))
        for change in changes or ["nothing to repair"]:
            say.print(f"[cyan]fixed[/cyan]: {change}")
        if out:
            _write_bundle(bundle, out, say)
    ready = _print_report(bundle, say) if check or not inspect_bundle(bundle, datetime.now(UTC)).ok else True
    if check or not ready:
        raise typer.Exit(0 if ready else 1)
    kwargs: dict[str, Any] = {"Certificate": bundle.certificate, "PrivateKey": bundle.private_key}
    if bundle.chain:
        kwargs["CertificateChain"] = bundle.chain
    if arn:
        kwargs["CertificateArn"] = arn
    if tag:
        kwargs["Tags"] = _tags(tag)
    with api_failures():
        imported = _client(endpoint, credentials, region, ca_bundle).call("import_certificate",
                                                                          **kwargs)["CertificateArn"]
    if quiet:
        print_arns([imported])
    else:
        console.print(f"imported: [bold]{imported}[/bold]", soft_wrap=True)


@cert_app.command("export")
def export(
    arn: Arn,
    out: Annotated[Path, typer.Option("--out", metavar="FOLDER",
                                      help="folder for certificate.pem, chain.pem, private-key.pem")],
    passphrase_file: Annotated[Path | None, typer.Option("--passphrase-file", metavar="FILE", exists=True,
                                                         dir_okay=False, help="the key's passphrase",
                                                         show_default="asked for")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
) -> None:
    """Export a private certificate with its key, encrypted (PKCS#8) under a passphrase."""
    passphrase = passphrase_file.read_bytes().rstrip(b"\r\n") if passphrase_file else \
        getpass.getpass("passphrase for the private key: ").encode()
    with api_failures():
        exported = _client(endpoint, credentials, region, ca_bundle).call("export_certificate", CertificateArn=arn,
                                                                          Passphrase=passphrase)
    _write_bundle(Bundle(exported["Certificate"].encode(), exported["PrivateKey"].encode(),
                         exported.get("CertificateChain", "").encode() or None), out, console)
    console.print("the key is encrypted; `openssl pkey -in private-key.pem` asks for the passphrase")


def _simple(operation: str, done: str) -> Callable[..., None]:
    def command(arn: Arn, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
        with api_failures():
            _client(endpoint, credentials, region, ca_bundle).call(operation, CertificateArn=arn)
        console.print(f"{done}: {arn}", soft_wrap=True)
    return command


cert_app.command("renew", help="Renew a private certificate now: same ARN, new key and validity.")(
    _simple("renew_certificate", "renewal started"))
cert_app.command("delete", help="Delete a certificate and its key.")(_simple("delete_certificate", "deleted"))


@cert_app.command("revoke")
def revoke(arn: Arn,
           reason: Annotated[str, typer.Option(metavar="REASON", help="RevocationReason: KEY_COMPROMISE, "
                                                                      "SUPERSEDED and so on")] = "UNSPECIFIED",
           endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Revoke an exported private certificate; its CA lists it on the CRL and answers OCSP with revoked."""
    with api_failures():
        _client(endpoint, credentials, region, ca_bundle).call("revoke_certificate", CertificateArn=arn,
                                                               RevocationReason=reason)
    console.print(f"revoked ({reason}): {arn}", soft_wrap=True)


@cert_app.command("tag")
def tag_certificate(
    arn: Arn, tags: Annotated[list[str] | None, typer.Argument(metavar="KEY=VALUE...", help="tags to set")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", metavar="KEY", help="key to remove (repeat)")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Set or remove tags, then show the certificate's tags."""
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        if tags:
            client.call("add_tags_to_certificate", CertificateArn=arn, Tags=_tags(tags))
        if remove:
            client.call("remove_tags_from_certificate", CertificateArn=arn, Tags=[{"Key": key} for key in remove])
        current = client.call("list_tags_for_certificate", CertificateArn=arn).get("Tags", [])
    if as_json:
        print_json(current)
    else:
        for item in current:
            console.print(f"{item['Key']}={item.get('Value', '')}", soft_wrap=True)
