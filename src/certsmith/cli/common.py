"""What every API command of the CLI shares: connection options, output, errors in plain words, expiry colours."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from .client import (
    DEFAULT_CREDENTIALS,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    ApiError,
    Client,
    ClientOptions,
    endpoint_problem,
    make_client,
)

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DEFAULT_ENDPOINT",
    "DEFAULT_REGION",
    "AsJson",
    "CaBundle",
    "Credentials",
    "Endpoint",
    "Quiet",
    "Region",
    "api_failures",
    "connect",
    "expiry",
    "fail",
    "one_output",
    "print_arns",
    "print_json",
    "stdout_console",
]

Endpoint = Annotated[str, typer.Option(
    "--endpoint", metavar="URL", envvar="CERTSMITH_ENDPOINT", show_envvar=True,
    help="certsmith's URL, http:// or https://")]
Credentials = Annotated[Path, typer.Option(
    "--credentials", metavar="FILE", envvar="AWS_SHARED_CREDENTIALS_FILE", show_envvar=True,
    help="credentials file (certsmith serve writes <data-dir>/credentials)")]
Region = Annotated[str, typer.Option("--region", metavar="REGION", envvar="AWS_DEFAULT_REGION", show_envvar=True,
                                     help="region")]
CaBundle = Annotated[Path | None, typer.Option(
    "--ca-bundle", metavar="FILE", envvar=["CERTSMITH_CA_BUNDLE", "AWS_CA_BUNDLE"], show_envvar=True,
    exists=True, dir_okay=False, show_default="the system's CAs",
    help="PEM CA certificates to trust for an https:// endpoint (serve --tls auto writes <data-dir>/tls/ca.pem)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="print only ARNs, one a line (for scripts)")]

# Into a pipe or a file a table is as wide as its widest row: ARNs are copied from there into scripts
# whole, never folded or cut at the 80 columns Rich assumes when there is no terminal.
PIPE_WIDTH = 10_000


def stdout_console() -> Console:
    # No emoji codes: a serial such as 5f:cd:b8 must not print as a picture.
    return Console(emoji=False) if sys.stdout.isatty() else Console(width=PIPE_WIDTH, emoji=False)


def connect(service: str, endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    """A client of the service, or the command ends here with what is wrong (a bad --endpoint is a usage error)."""
    problem = endpoint_problem(endpoint)
    if problem is not None:
        raise fail(problem, code=2)
    try:
        return make_client(service, ClientOptions(endpoint, credentials, region, ca_bundle))
    except ApiError as exc:
        raise fail(str(exc)) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"certsmith: {message}", fg="red", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def api_failures() -> Iterator[None]:
    """Inside it, what the server refused (an ``ApiError``) ends the command: the message in plain words, exit 1."""
    try:
        yield
    except ApiError as exc:
        raise fail(str(exc)) from None


def one_output(quiet: bool, as_json: bool) -> None:
    """--quiet and --json each decide what stdout holds; both at once is a usage error."""
    if quiet and as_json:
        raise fail("choose --quiet or --json, not both", code=2)


def print_arns(arns: Iterable[str]) -> None:
    for arn in arns:
        sys.stdout.write(f"{arn}\n")


def print_fields(console: Console, rows: Iterable[tuple[str, Any]], width: int = 16) -> None:
    """``Label:   value`` lines, one a row, skipping values that are None (times in UTC, markup escaped)."""
    for label, value in rows:
        if isinstance(value, datetime):
            value = f"{value:%Y-%m-%d %H:%M:%S %Z}"
        if value is not None:
            console.print(f"{label + ':':<{width}}{escape(str(value))}", soft_wrap=True, highlight=False)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
                     + "\n")


def expiry(not_after: datetime | None) -> str:
    """``2027-01-31 (64 d)`` in red under 30 days, yellow under 90, green beyond."""
    if not_after is None:
        return "-"
    days = (not_after - datetime.now(UTC)).days
    colour = "red" if days < 30 else "yellow" if days < 90 else "green"
    return f"[{colour}]{not_after:%Y-%m-%d} ({days} d)[/{colour}]"
