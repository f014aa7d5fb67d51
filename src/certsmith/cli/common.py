"""What every API command of the CLI shares: connection options, errors in plain words, JSON, expiry colours."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .client import Client, default_options, make_client

__all__ = ["AsJson", "Credentials", "Endpoint", "Region", "connect", "expiry", "fail", "print_json"]

Endpoint = Annotated[str | None, typer.Option("--endpoint", help="certsmith URL [env CERTSMITH_ENDPOINT]")]
Credentials = Annotated[Path | None, typer.Option("--credentials", help="credentials file [env AWS_SHARED_CREDENTIALS_FILE]")]
Region = Annotated[str | None, typer.Option("--region", help="region [env AWS_DEFAULT_REGION]")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def connect(service: str, endpoint: str | None, credentials: Path | None, region: str | None) -> Client:
    return make_client(service, default_options(endpoint, credentials, region))


def fail(message: str) -> typer.Exit:
    typer.secho(f"certsmith: {message}", fg="red", err=True)
    return typer.Exit(1)


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
