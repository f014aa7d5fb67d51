"""``certsmith renewal ...``: every certificate's renewal plan, a run now, and the renewal policies."""

from __future__ import annotations

from datetime import datetime
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

__all__ = ["renewal_app", "versions"]

renewal_app = CertsmithTyper(help="Managed renewal: when each certificate renews and why, renewing what is due now, "
                                  "and the policies (renew-before, maintenance windows, key reuse).")
policy_app = CertsmithTyper(help="Renewal policies of the account, or of the certificates with one tag.")
renewal_app.add_typer(policy_app, name="policy")
console = stdout_console()
Tag = Annotated[str | None, typer.Option("--tag", metavar="KEY=VALUE",
                                         help="the policy of the certificates carrying this tag (default: the account's)")]


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else "-"


@renewal_app.command("status")
def status(endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Each certificate: when its renewal starts and why, and how the last renewal went."""
    with api_failures():
        entries = _client(endpoint, credentials, region, ca_bundle).call_all("list_renewals", "Renewals")
    if as_json:
        print_json(entries)
        return
    table = Table("Domain", "Type", "Expires", "Renews at", "Last result")
    table.add_column("Why", overflow="fold")
    for entry in sorted(entries, key=lambda e: (e.get("PlannedAt") is None, e.get("PlannedAt") or datetime.max)):
        last = entry.get("RenewalStatus") or entry.get("LastResult") or "-"
        if entry.get("LastError") and last not in ("SUCCESS",):
            last += f": {entry['LastError']}"
        why = entry.get("Reason") or ""
        if entry.get("RenewalEligibility") == "INELIGIBLE":
            why = f"not renewed: {why}"
        table.add_row(escape(entry.get("DomainName", "")), entry.get("Type", ""), _when(entry.get("NotAfter")),
                      _when(entry.get("PlannedAt")), escape(last), escape(why))
    console.print(table)
    if not entries:
        typer.echo("no certificate yet", err=True)


@renewal_app.command("run")
def run(dry_run: Annotated[bool, typer.Option("--dry-run", help="only list what is due; renew nothing")] = False,
        endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
        region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Renew what is due now (the workers do it in the background; `certsmith renewal status` follows it)."""
    with api_failures():
        result = _client(endpoint, credentials, region, ca_bundle).call("run_renewals", DryRun=dry_run)
    if as_json:
        print_json(result)
        return
    for due in result.get("Due", []):
        console.print(f"{escape(due['CertificateArn'])}  due {_when(due.get('DueAt'))}", soft_wrap=True,
                      highlight=False)
    count = result.get("Count", 0)
    verb = "would renew" if dry_run else "renewing"
    typer.echo(f"{verb} {count} certificate{'s' if count != 1 else ''}" if count else "nothing is due now", err=True)


def _scope(tag: str | None) -> str:
    if tag is None:
        return "account"
    if "=" not in tag or not tag.split("=", 1)[0]:
        raise fail(f"--tag {tag!r}: give KEY=VALUE", code=2)
    return f"tag:{tag}"


def _windows(items: list[str]) -> list[dict[str, str]]:
    windows = []
    for item in items:
        parts = [p.strip() for p in item.split(";")]
        if len(parts) not in (2, 3) or not all(parts):
            raise fail(f"--window {item!r}: give 'CRON;DURATION[;TIMEZONE]', e.g. '0 2 * * 6;4h;Europe/Berlin'", code=2)
        windows.append({"Cron": parts[0], "Duration": parts[1], **({"Timezone": parts[2]} if len(parts) == 3 else {})})
    return windows


def _print_policy(policy: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [("Scope", policy.get("Scope")), ("Renew before", policy.get("RenewBefore"))]
    for window in policy.get("MaintenanceWindows") or []:
        rows.append(("Window", f"{window['Cron']} for {window['Duration']} ({window.get('Timezone', 'UTC')})"))
    if "ReuseKey" in policy:
        rows.append(("Key", "reused at renewal" if policy["ReuseKey"] else "new at every renewal"))
    if "StrictEligibility" in policy:
        rows.append(("Renews", "only exported or in-use certificates (ACM's rule)" if policy["StrictEligibility"]
                     else "every certificate certsmith issued"))
    rows.append(("Updated", policy.get("UpdatedAt")))
    print_fields(console, rows, 14)


@policy_app.command("set")
def set_policy(
    tag: Tag = None,
    renew_before: Annotated[str | None, typer.Option("--renew-before", metavar="DURATION|PERCENT",
                                                     help="30d, 720h, 1d12h, or a share of the lifetime: 33%")] = None,
    window: Annotated[list[str] | None, typer.Option("--window", metavar="'CRON;DURATION[;TZ]'",
                                                     help="a maintenance window (repeat): renewals start only inside "
                                                          "one, unless expiry is near")] = None,
    reuse_key: Annotated[bool | None, typer.Option("--reuse-key/--new-key",
                                                   help="keep the key pair at renewal (default: a new key)")] = None,
    strict: Annotated[bool | None, typer.Option("--strict/--all", help="account only: renew only exported or "
                                                                      "in-use certificates (ACM's rule), or all")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Set (replace) the renewal policy of the account, or with --tag of the certificates carrying a tag."""
    scope = _scope(tag)
    if tag is not None and strict is not None:
        raise fail("--strict/--all is a setting of the account: leave out --tag", code=2)
    request: dict[str, Any] = {"Scope": scope, "MaintenanceWindows": _windows(window or [])}
    for key, value in (("RenewBefore", renew_before), ("ReuseKey", reuse_key), ("StrictEligibility", strict)):
        if value is not None:
            request[key] = value
    with api_failures():
        policy = _client(endpoint, credentials, region, ca_bundle).call("put_renewal_policy", **request)["RenewalPolicy"]
    if as_json:
        print_json(policy)
        return
    _print_policy(policy)


@policy_app.command("list")
def list_policies(endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                  region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """List the renewal policies."""
    with api_failures():
        policies = _client(endpoint, credentials, region, ca_bundle).call("list_renewal_policies")["RenewalPolicies"]
    if as_json:
        print_json(policies)
        return
    for policy in policies:
        _print_policy(policy)
        console.print()
    if not policies:
        typer.echo("no renewal policy: the default applies (60 days before expiry for lifetimes over 180 days, "
                   "else a third of the lifetime; a new key at every renewal)", err=True)


@policy_app.command("show")
def show_policy(tag: Tag = None, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Show the account's renewal policy, or a tag's."""
    with api_failures():
        policy = _client(endpoint, credentials, region, ca_bundle).call("describe_renewal_policy",
                                                                        Scope=_scope(tag))["RenewalPolicy"]
    if as_json:
        print_json(policy)
    else:
        _print_policy(policy)


@policy_app.command("remove")
def remove_policy(tag: Tag = None, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                  region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Remove the account's renewal policy (or a tag's): the default applies again."""
    with api_failures():
        _client(endpoint, credentials, region, ca_bundle).call("delete_renewal_policy", Scope=_scope(tag))
    console.print(f"removed the renewal policy of {escape(_scope(tag))}", soft_wrap=True, highlight=False)


def versions(arn: Annotated[str, typer.Argument(metavar="ARN", help="the certificate")],
             endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
             region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Every version kept under a certificate's ARN (issued, renewed, re-imported), oldest first; * = current."""
    with api_failures():
        found = _client(endpoint, credentials, region, ca_bundle).call("list_certificate_versions",
                                                                       CertificateArn=arn)["Versions"]
    if as_json:
        print_json(found)
        return
    table = Table("", "Version", "Action", "Serial", "Valid from", "Valid to", "Issued")
    table.add_column("Key (SHA-256)", overflow="fold")
    for version in found:
        table.add_row("*" if version.get("Current") else "", str(version["Version"]), version["Action"],
                      version["Serial"], _when(version.get("NotBefore")), _when(version.get("NotAfter")),
                      _when(version.get("IssuedAt")), version["KeyId"][:16])
    console.print(table)
