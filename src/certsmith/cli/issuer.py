"""``certsmith issuer ...``: where public certificates come from (an ACME CA, or a certsmith private CA)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .client import Client
from .common import (
    DEFAULT_CREDENTIALS,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    AsJson,
    CaBundle,
    Credentials,
    Endpoint,
    Region,
    api_failures,
    connect,
    fail,
    print_fields,
    print_json,
    stdout_console,
)
from .help import CertsmithTyper

__all__ = ["issuer_app", "read_pem_bundle"]

issuer_app = CertsmithTyper(help="Issuers of public certificates: ACME CAs (Let's Encrypt, ZeroSSL, step-ca...) or a "
                                 "certsmith private CA. `cert request --public` uses the default one unless --issuer "
                                 "names another.")
console = stdout_console()
Name = Annotated[str, typer.Argument(metavar="NAME", help="the issuer's name")]


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)


def read_pem_bundle(path: Path, option: str) -> str:
    """The PEM certificates in ``path``, or a usage error that names the option and the problem."""
    if not path.exists():
        raise fail(f"{option} {path}: no such file", code=2)
    if path.is_dir():
        raise fail(f"{option} {path} is a folder; give a file of PEM certificates", code=2)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise fail(f"{option} {path} is not a text file; give PEM certificates (-----BEGIN CERTIFICATE-----), "
                   "not DER", code=2) from None
    except OSError as exc:
        raise fail(f"{option} {path} cannot be read: {exc.strerror}", code=2) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise fail(f"{option} {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", code=2)
    return text


def _spec(name: str, acme_directory: str | None, email: str | None, eab_kid: str | None, eab_hmac_key: str | None,
          acme_ca_bundle: Path | None, private_ca: str | None) -> dict[str, Any]:
    """CreateIssuer's parameters, or a usage error (exit 2) that says which options go together."""
    if (acme_directory is None) == (private_ca is None):
        raise fail("an issuer is an ACME CA (--acme-directory URL --email ADDR) or a certsmith private CA "
                   "(--private-ca ARN): give exactly one of --acme-directory and --private-ca", code=2)
    if (eab_kid is None) != (eab_hmac_key is None):
        given, missing = ("--eab-kid", "--eab-hmac-key") if eab_kid is not None else ("--eab-hmac-key", "--eab-kid")
        raise fail(f"{given} needs {missing}: External Account Binding takes both the key id and the HMAC key the "
                   "ACME CA handed out", code=2)
    kwargs: dict[str, Any] = {"Name": name}
    if private_ca is not None:
        acme_only = [option for option, value in (("--email", email), ("--eab-kid", eab_kid),
                                                  ("--eab-hmac-key", eab_hmac_key),
                                                  ("--acme-ca-bundle", acme_ca_bundle)) if value is not None]
        if acme_only:
            raise fail(f"{', '.join(acme_only)}: for an ACME issuer only; a private-CA issuer takes --private-ca ARN "
                       "(and --caa-identity, --default)", code=2)
        kwargs["CertificateAuthorityArn"] = private_ca
        return kwargs
    if email is None:
        raise fail("--acme-directory needs --email ADDR: the contact of the ACME account certsmith registers", code=2)
    kwargs.update(AcmeDirectoryUrl=acme_directory, ContactEmail=email)
    if eab_kid is not None and eab_hmac_key is not None:
        kwargs["ExternalAccountBinding"] = {"KeyId": eab_kid, "HmacKey": eab_hmac_key}
    if acme_ca_bundle is not None:
        kwargs["CaBundle"] = read_pem_bundle(acme_ca_bundle, "--acme-ca-bundle")
    return kwargs


def _source(issuer: dict[str, Any]) -> str:
    return str(issuer.get("AcmeDirectoryUrl") or issuer.get("CertificateAuthorityArn") or "")


def _print_issuer(issuer: dict[str, Any]) -> None:
    rows = [("Name", issuer.get("Name")), ("Type", issuer.get("Type")), ("ARN", issuer.get("IssuerArn")),
            ("Directory", issuer.get("AcmeDirectoryUrl")), ("Account", issuer.get("AcmeAccountUrl")),
            ("Contact", issuer.get("ContactEmail")), ("EAB key id", issuer.get("ExternalAccountKeyId")),
            ("CA bundle", "yes" if issuer.get("HasCaBundle") else None),
            ("Private CA", issuer.get("CertificateAuthorityArn")),
            ("CAA identities", ", ".join(issuer.get("CaaIdentities") or []) or None),
            ("DNS-01", f"directly, through DNS provider {issuer['DnsProvider']}" if issuer.get("DnsProvider") else
             ("through the validation zone" if issuer.get("Type") == "ACME" else None)),
            ("Default", "yes" if issuer.get("IsDefault") else "no"),
            ("Created", issuer.get("CreatedAt")), ("Updated", issuer.get("UpdatedAt"))]
    print_fields(console, rows)


@issuer_app.command("add")
def add(
    name: Name,
    acme_directory: Annotated[str | None, typer.Option("--acme-directory", metavar="URL",
                                                       help="an ACME CA's directory URL (RFC 8555)")] = None,
    email: Annotated[str | None, typer.Option("--email", metavar="ADDR",
                                              help="contact of the ACME account (with --acme-directory)")] = None,
    eab_kid: Annotated[str | None, typer.Option("--eab-kid", metavar="ID",
                                                help="External Account Binding key id, if the ACME CA asks for one "
                                                     "(ZeroSSL, Google, step-ca)")] = None,
    eab_hmac_key: Annotated[str | None, typer.Option("--eab-hmac-key", metavar="KEY",
                                                     help="External Account Binding HMAC key (base64url), with "
                                                          "--eab-kid")] = None,
    acme_ca_bundle: Annotated[Path | None, typer.Option("--acme-ca-bundle", metavar="FILE",
                                                        show_default="the system's CAs",
                                                        help="PEM CA certificates to trust for the ACME directory's "
                                                             "TLS (a private ACME CA)")] = None,
    private_ca: Annotated[str | None, typer.Option("--private-ca", metavar="ARN",
                                                   help="a certsmith private CA (ACTIVE) that signs public requests "
                                                        "instead of an ACME CA")] = None,
    caa_identity: Annotated[list[str] | None, typer.Option(
        "--caa-identity", metavar="DOMAIN", show_default="the ACME directory's caaIdentities",
        help="an issuer domain CAA records must allow (repeat)")] = None,
    default: Annotated[bool, typer.Option("--default", help="make it the default issuer (the first one always is)")]
    = False,
    direct: Annotated[str | None, typer.Option(
        "--direct", metavar="PROVIDER", show_default="the validation zone's CNAME delegation",
        help="answer the ACME CA's DNS-01 challenges with TXT records at _acme-challenge written through this DNS "
             "provider (certsmith dns-provider), with no delegation")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Add an issuer: an ACME CA (its account is registered now) or a certsmith private CA."""
    kwargs = _spec(name, acme_directory, email, eab_kid, eab_hmac_key, acme_ca_bundle, private_ca)
    if caa_identity:
        kwargs["CaaIdentities"] = caa_identity
    if direct is not None:
        kwargs["DnsProvider"] = direct
    if default:
        kwargs["Default"] = True
    with api_failures():
        issuer = _client(endpoint, credentials, region, ca_bundle).call("create_issuer", **kwargs)["Issuer"]
    if as_json:
        print_json(issuer)
        return
    console.print(f"added issuer [bold]{escape(issuer['Name'])}[/bold] ({issuer['Type']})"
                  f"{', the default' if issuer.get('IsDefault') else ''}", soft_wrap=True, highlight=False)
    _print_issuer(issuer)


@issuer_app.command("list")
def list_issuers(endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                 region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """List the issuers, the default first (marked *)."""
    with api_failures():
        issuers = _client(endpoint, credentials, region, ca_bundle).call_all("list_issuers", "Issuers")
    if as_json:
        print_json(issuers)
        return
    table = Table("Default", "Name", "Type")
    table.add_column("Directory or CA", overflow="fold")
    for issuer in issuers:
        table.add_row("*" if issuer.get("IsDefault") else "", escape(issuer["Name"]), issuer.get("Type", ""),
                      escape(_source(issuer)))
    console.print(table)
    if not issuers:
        typer.echo("no issuer yet: `certsmith issuer add NAME --acme-directory URL --email ADDR` adds an ACME CA, "
                   "`certsmith issuer add NAME --private-ca ARN` a private CA", err=True)


@issuer_app.command("describe")
def describe(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
             region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Show one issuer."""
    with api_failures():
        issuer = _client(endpoint, credentials, region, ca_bundle).call("describe_issuer", Name=name)["Issuer"]
    if as_json:
        print_json(issuer)
    else:
        _print_issuer(issuer)


@issuer_app.command("remove")
def remove(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Remove an issuer (refused while a pending request uses it); the certificates it issued stay."""
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        was_default = client.call("describe_issuer", Name=name)["Issuer"].get("IsDefault", False)
        client.call("delete_issuer", Name=name)
        successor = next(iter(client.call("list_issuers", MaxResults=1).get("Issuers", [])), None) \
            if was_default else None
    console.print(f"removed issuer {escape(name)}", soft_wrap=True, highlight=False)
    if was_default:
        console.print(f"the default issuer is now {escape(successor['Name'])}" if successor else
                      "no issuer is left: public requests need one (certsmith issuer add)",
                      soft_wrap=True, highlight=False)


@issuer_app.command("set-default")
def set_default(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Make an issuer the default: public requests without --issuer (or a certsmith:issuer tag) use it."""
    with api_failures():
        _client(endpoint, credentials, region, ca_bundle).call("update_issuer", Name=name, Default=True)
    console.print(f"{escape(name)} is now the default issuer", soft_wrap=True, highlight=False)


@issuer_app.command("set-direct")
def set_direct(
    name: Name,
    provider: Annotated[str | None, typer.Argument(metavar="[PROVIDER]", show_default=False,
                                                   help="the DNS provider; leave out to go back to the delegation")]
    = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
) -> None:
    """Answer an ACME issuer's DNS-01 challenges directly through a DNS provider (TXT at _acme-challenge), or,
    without PROVIDER, through the validation zone's CNAME delegation again."""
    with api_failures():
        _client(endpoint, credentials, region, ca_bundle).call("update_issuer", Name=name, DnsProvider=provider or "")
    console.print(f"{escape(name)} answers DNS-01 directly through DNS provider {escape(provider)}" if provider else
                  f"{escape(name)} answers DNS-01 through the validation zone's delegation", soft_wrap=True,
                  highlight=False)
