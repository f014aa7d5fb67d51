"""``certsmith dns-provider ...``: where certsmith writes validation records (RFC 2136 servers, Route 53, plugins)."""

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

__all__ = ["dns_provider_app", "provider_options"]

dns_provider_app = CertsmithTyper(help="DNS providers: where certsmith writes validation records for you (`certsmith "
                                       "cert create-records ARN --provider NAME`) or answers DNS-01 directly "
                                       "(`certsmith issuer add ... --direct NAME`). Secrets are sealed at rest.")
console = stdout_console()
Name = Annotated[str, typer.Argument(metavar="NAME", help="the DNS provider's name")]


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)


def _pairs(items: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"--option {item!r}: give KEY=VALUE", code=2)
        options[key.strip()] = value
    return options


def provider_options(rfc2136: str | None, route53: bool, kind: str | None, given: dict[str, str | None],
                     extra: list[str]) -> tuple[str, dict[str, str]]:
    """(Kind, Options) of CreateDnsProvider from the command line, or a usage error that names the options."""
    chosen = [flag for flag, on in (("--rfc2136", rfc2136 is not None), ("--route53", route53), ("--kind", kind))
              if on]
    if len(chosen) != 1:
        raise fail("give exactly one of --rfc2136 HOST:PORT (a DNS server taking RFC 2136 updates with TSIG), "
                   "--route53 (Amazon Route 53) or --kind KIND (a plugin)", code=2)
    options = {key: value for key, value in given.items() if value is not None}
    tsig = {k: v for k, v in options.items() if k.startswith("tsig_")}
    aws = {k: v for k, v in options.items() if not k.startswith("tsig_") and k != "zone"}
    if rfc2136 is not None:
        missing = [f"--{k.replace('_', '-')}" for k in ("tsig_name", "tsig_secret") if k not in options]
        if missing:
            raise fail(f"--rfc2136 needs {' and '.join(missing)}: the TSIG key the DNS server accepts updates with",
                       code=2)
        if aws:
            raise fail(f"{', '.join('--' + k.replace('_', '-') for k in aws)}: for --route53 only", code=2)
        return "rfc2136", {"server": rfc2136, **options, **_pairs(extra)}
    if route53:
        if tsig or "zone" in options:
            raise fail(f"{', '.join('--' + k.replace('_', '-') for k in [*tsig, *(['zone'] if 'zone' in options else [])])}"
                       ": for --rfc2136 only", code=2)
        return "route53", {**options, **_pairs(extra)}
    assert kind is not None
    if options:
        raise fail("--kind takes its settings as --option KEY=VALUE", code=2)
    return kind, _pairs(extra)


def _print(provider: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [("Name", provider.get("Name")), ("Kind", provider.get("Kind")),
                                   ("ARN", provider.get("DnsProviderArn"))]
    rows += [(key, value) for key, value in sorted((provider.get("Options") or {}).items())]
    rows += [(key, "(set, sealed)") for key in provider.get("SecretOptions") or []]
    rows += [("Created", provider.get("CreatedAt"))]
    print_fields(console, rows, 20)


@dns_provider_app.command("add")
def add(
    name: Name,
    rfc2136: Annotated[str | None, typer.Option("--rfc2136", metavar="HOST:PORT",
                                                help="a DNS server taking RFC 2136 updates (BIND, Knot, PowerDNS)")]
    = None,
    tsig_name: Annotated[str | None, typer.Option("--tsig-name", metavar="NAME", help="with --rfc2136: the TSIG key's "
                                                                                       "name")] = None,
    tsig_secret: Annotated[str | None, typer.Option("--tsig-secret", metavar="BASE64", envvar="CERTSMITH_TSIG_SECRET",
                                                    help="with --rfc2136: the TSIG key's secret (base64)")] = None,
    tsig_algorithm: Annotated[str | None, typer.Option("--tsig-algorithm", metavar="ALG", show_default="hmac-sha256",
                                                       help="with --rfc2136: hmac-sha256, hmac-sha512, ...")] = None,
    zone: Annotated[str | None, typer.Option("--zone", metavar="ZONE", show_default="found from each name's SOA",
                                             help="with --rfc2136: the zone to update")] = None,
    route53: Annotated[bool, typer.Option("--route53", help="Amazon Route 53 (or a service speaking its API)")]
    = False,
    hosted_zone_id: Annotated[str | None, typer.Option("--hosted-zone-id", metavar="ID",
                                                       show_default="found from each name",
                                                       help="with --route53: the hosted zone")] = None,
    aws_access_key_id: Annotated[str | None, typer.Option("--aws-access-key-id", metavar="ID",
                                                          show_default="boto3's default chain",
                                                          help="with --route53: the access key")] = None,
    aws_secret_access_key: Annotated[str | None, typer.Option("--aws-secret-access-key", metavar="KEY",
                                                              envvar="CERTSMITH_ROUTE53_SECRET_ACCESS_KEY",
                                                              help="with --route53: its secret")] = None,
    aws_region: Annotated[str | None, typer.Option("--aws-region", metavar="REGION", show_default="us-east-1",
                                                   help="with --route53: the region of the API")] = None,
    route53_endpoint: Annotated[str | None, typer.Option("--route53-endpoint", metavar="URL",
                                                         help="with --route53: another endpoint than AWS's")] = None,
    kind: Annotated[str | None, typer.Option("--kind", metavar="KIND", help="a provider plugin's kind")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", metavar="KEY=VALUE",
                                                     help="a provider option (repeat)")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Add a DNS provider; certsmith checks now that it answers and accepts the key or credentials."""
    provider_kind, options = provider_options(rfc2136, route53, kind, {
        "tsig_name": tsig_name, "tsig_secret": tsig_secret, "tsig_algorithm": tsig_algorithm, "zone": zone,
        "hosted_zone_id": hosted_zone_id, "access_key_id": aws_access_key_id,
        "secret_access_key": aws_secret_access_key, "region": aws_region, "endpoint_url": route53_endpoint},
        option or [])
    with api_failures():
        provider = _client(endpoint, credentials, region, ca_bundle).call(
            "create_dns_provider", Name=name, Kind=provider_kind, Options=options)["DnsProvider"]
    if as_json:
        print_json(provider)
        return
    console.print(f"added DNS provider [bold]{escape(provider['Name'])}[/bold] ({escape(provider['Kind'])})",
                  soft_wrap=True, highlight=False)
    _print(provider)


@dns_provider_app.command("list")
def list_providers(endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                   region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """List the DNS providers."""
    with api_failures():
        providers = _client(endpoint, credentials, region, ca_bundle).call_all("list_dns_providers", "DnsProviders")
    if as_json:
        print_json(providers)
        return
    table = Table("Name", "Kind")
    table.add_column("Where", overflow="fold")
    for provider in providers:
        options = provider.get("Options") or {}
        where = options.get("server") or options.get("hosted_zone_id") or options.get("endpoint_url") or ""
        table.add_row(escape(provider["Name"]), escape(provider.get("Kind", "")), escape(where))
    console.print(table)
    if not providers:
        typer.echo("no DNS provider yet: `certsmith dns-provider add NAME --rfc2136 HOST:PORT --tsig-name N "
                   "--tsig-secret S` or `certsmith dns-provider add NAME --route53` adds one", err=True)


@dns_provider_app.command("describe")
def describe(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
             region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Show one DNS provider (secrets are never shown)."""
    with api_failures():
        provider = _client(endpoint, credentials, region, ca_bundle).call("describe_dns_provider",
                                                                          Name=name)["DnsProvider"]
    if as_json:
        print_json(provider)
    else:
        _print(provider)


@dns_provider_app.command("remove")
def remove(name: Name, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Remove a DNS provider (refused while an issuer answers DNS-01 through it); the records it wrote stay."""
    with api_failures():
        _client(endpoint, credentials, region, ca_bundle).call("delete_dns_provider", Name=name)
    console.print(f"removed DNS provider {escape(name)}", soft_wrap=True, highlight=False)
