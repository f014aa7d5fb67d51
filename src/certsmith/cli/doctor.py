"""``certsmith doctor validation``: what the resolvers see for a public certificate's validation records,
what they should be, whether the validation zone answers through its delegation, and what the CA last said."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

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
    print_json,
    stdout_console,
)
from .help import CertsmithTyper

__all__ = ["doctor_app"]

doctor_app = CertsmithTyper(help="Say why something does not work, and what to change.")
console = stdout_console()
# -- doctor validation ---------------------------------------------------------------------------------------------

def _in_place(name: dict[str, Any]) -> bool:
    """Every resolver's CNAME chain reaches the expected target (the rule the validation job applies)."""
    expected = str(name.get("ExpectedValue", "")).rstrip(".").lower()
    answers = name.get("Answers") or []
    return bool(answers) and all(any(str(v).rstrip(".").lower() == expected for v in a.get("Values") or [])
                                 for a in answers)


def _answer(answer: dict[str, Any]) -> str:
    if answer.get("Values"):
        return " → ".join(escape(str(v)) for v in answer["Values"])
    return f"[red]{escape(answer.get('Error') or 'no answer')}[/red]"


def _line(label: str, value: str, width: int) -> None:
    console.print(f"  {label:<{width}}{value}", soft_wrap=True, highlight=False)


def _print_report(report: dict[str, Any], names_ok: list[bool], reachable: bool) -> None:
    names, delegation = report.get("Names") or [], report.get("Delegation") or {}
    resolvers = [a.get("Resolver", "") for n in names for a in n.get("Answers") or []] + \
        [a.get("Resolver", "") for a in delegation.get("Nameservers") or []]
    width = max([len("expected value"), *(len(f"resolver {r}") for r in resolvers)]) + 2
    issuer = f", issuer {escape(report['Issuer'])}" if report.get("Issuer") else ""
    console.print(f"[bold]{escape(report['CertificateArn'])}[/bold]: {escape(report.get('Status', ''))}{issuer}",
                  soft_wrap=True, highlight=False)
    for name, ok in zip(names, names_ok, strict=True):
        console.print(f"\n[bold]{escape(name.get('DomainName', ''))}[/bold]: {escape(name.get('ValidationStatus', ''))}",
                      soft_wrap=True, highlight=False)
        _line("record", f"{escape(name.get('RecordName', ''))} {escape(name.get('RecordType', 'CNAME'))}", width)
        _line("expected value", escape(name.get("ExpectedValue", "")), width)
        for answer in name.get("Answers") or []:
            _line(f"resolver {escape(answer.get('Resolver', ''))}", _answer(answer), width)
        colour = "green" if ok else "red"
        verdict = escape(name.get("Verdict", "in place" if ok else "not in place"))
        _line("verdict", f"[{colour}]{verdict}[/{colour}]", width)
    if delegation:
        state = "[green]reachable[/green]" if reachable else "[red]not reachable[/red]"
        console.print(f"\nvalidation zone [bold]{escape(delegation.get('ValidationZone', ''))}[/bold]: {state}",
                      soft_wrap=True, highlight=False)
        for answer in delegation.get("Nameservers") or []:
            _line(f"resolver {escape(answer.get('Resolver', ''))}", _answer(answer), width)
        _line("verdict", escape(delegation.get("Verdict", "")), width)
    problem, message = report.get("LastAcmeProblem"), report.get("LastMessage")
    if problem or message:
        console.print()
    if problem:
        console.print(f"last ACME problem: {escape(problem.get('Type', ''))}: {escape(problem.get('Detail', ''))}",
                      soft_wrap=True, highlight=False)
    if message:
        at = report.get("LastAttemptAt")
        when = f" ({at:%Y-%m-%d %H:%M:%S %Z})" if at is not None else ""
        console.print(f"last message: {escape(message)}{when}", soft_wrap=True, highlight=False)


@doctor_app.command("validation")
def validation(
    arn: Annotated[str, typer.Argument(metavar="ARN", help="a public certificate")],
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Why a public certificate is not validated: per name, the record expected and what each resolver answers;
    whether the validation zone is reachable; what the CA last said.

    Exit code 0 when every name's record is in place and the validation zone is reachable, 1 otherwise.
    """
    with api_failures():
        report = _client(endpoint, credentials, region, ca_bundle).call("diagnose_validation", CertificateArn=arn)
    names = report.get("Names") or []
    names_ok = [_in_place(name) for name in names]
    reachable = bool((report.get("Delegation") or {}).get("Reachable"))
    healthy = bool(names) and all(names_ok) and reachable
    if as_json:
        print_json(report)
    elif not names:
        console.print(f"{escape(arn)} has no DNS validation records: it is not a public certificate",
                      soft_wrap=True, highlight=False)
    else:
        _print_report(report, names_ok, reachable)
    raise typer.Exit(0 if healthy else 1)


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)
