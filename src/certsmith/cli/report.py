"""``certsmith report``: the compliance report of the account (a table, JSON or CSV; exit 2 on findings if asked)."""

from __future__ import annotations

import csv
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

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
    print_json,
    stdout_console,
)

__all__ = ["CSV_COLUMNS", "parse_tag", "report"]

CSV_COLUMNS = ("Rule", "Severity", "CertificateArn", "DomainName", "Detail", "RecommendedAction", "Endpoint")
FINDINGS_EXIT = 2
_COLOURS = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan"}
console = stdout_console()


def parse_tag(text: str, option: str = "--no-wildcards-tag") -> dict[str, str]:
    """``{"Key": "env", "Value": "prod"}`` of ``env=prod`` (``env`` alone: the tag with an empty value)."""
    key, _, value = text.partition("=")
    if not key.strip():
        raise ValueError(f"{option} {text!r}: give KEY=VALUE, e.g. env=prod")
    return {"Key": key.strip(), "Value": value.strip()}


def _endpoint(finding: dict[str, Any]) -> str:
    place = finding.get("Endpoint")
    if not place:
        return ""
    host = f"[{place['Host']}]" if ":" in str(place["Host"]) else str(place["Host"])
    return f"{host}:{place['Port']}"


def _print_csv(findings: list[dict[str, Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for finding in findings:
        writer.writerow([finding.get("Rule", ""), finding.get("Severity", ""), finding.get("CertificateArn", ""),
                         finding.get("DomainName", ""), finding.get("Detail", ""), finding.get("RecommendedAction", ""),
                         _endpoint(finding)])


def _print_table(result: dict[str, Any]) -> None:
    findings = result.get("Findings", [])
    if findings:
        table = Table("Severity", "Rule", "Domain")
        table.add_column("Finding", overflow="fold")
        table.add_column("What to do", overflow="fold")
        table.add_column("Certificate", overflow="fold")
        for finding in findings:
            severity = finding.get("Severity", "")
            colour = _COLOURS.get(severity, "white")
            detail = finding.get("Detail", "")
            table.add_row(f"[{colour}]{severity}[/{colour}]", finding.get("Rule", ""),
                          escape(finding.get("DomainName", "")), escape(detail),
                          escape(finding.get("RecommendedAction", "")), escape(finding.get("CertificateArn", "")))
        console.print(table)
    counts = ", ".join(f"{s['Rule']} {s['Count']}" for s in result.get("Summary", []))
    total = len(findings)
    typer.echo(f"{total} finding{'s' if total != 1 else ''} ({counts}); expiry window "
               f"{result.get('ExpiringWithinDays', 30)} days", err=True)


def report(
    days: Annotated[int, typer.Option("--days", min=0, max=3650, help="report certificates expiring within this many "
                                                                      "days")] = 30,
    no_wildcards_tag: Annotated[list[str] | None, typer.Option(
        "--no-wildcards-tag", metavar="KEY=VALUE",
        help="certificates carrying this tag must not have wildcard names (repeatable)")] = None,
    rule: Annotated[list[str] | None, typer.Option(
        "--rule", metavar="RULE", help="run only this rule (repeatable): expiring, weak-rsa, sha1-signature, "
                                       "forbidden-wildcard, unused, imported-no-renewal, endpoint-old-version")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV (a header row, then a finding a row)")] = False,
    fail_on_findings: Annotated[bool, typer.Option(
        "--fail-on-findings", help=f"exit with code {FINDINGS_EXIT} when there is any finding (for CI pipelines)")] = False,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Compliance report: certificates expiring soon, weak keys or signatures, forbidden wildcards, unused or
    imported certificates, endpoints serving an old version; each with what to do."""
    if as_json and as_csv:
        raise fail("choose --json or --csv, not both", code=2)
    try:
        tags = [parse_tag(text) for text in no_wildcards_tag or []]
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    request: dict[str, Any] = {"ExpiringWithinDays": days}
    if tags:
        request["WildcardForbiddenTags"] = tags
    if rule:
        request["Rules"] = rule
    with api_failures():
        result = connect("certsmith", endpoint, credentials, region, ca_bundle).call("get_compliance_report", **request)
    if as_json:
        print_json(result)
    elif as_csv:
        _print_csv(result.get("Findings", []))
    else:
        _print_table(result)
    if fail_on_findings and result.get("Findings"):
        raise typer.Exit(FINDINGS_EXIT)
