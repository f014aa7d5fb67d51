"""The ``certsmith`` command."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from .agent import agent
from .ca import ca_app
from .cert import cert_app
from .credentials import credentials_app
from .deploy import deploy_app
from .dns_provider import dns_provider_app
from .doctor import doctor_app
from .endpoint import endpoint_app
from .events import events_app
from .help import CertsmithTyper
from .issuer import issuer_app
from .master_key import master_key_app
from .renewal import renewal_app
from .report import report
from .serve import serve, worker

__all__ = ["app", "main"]

app = CertsmithTyper(help="certsmith: a self-hosted certificate manager with the ACM and ACM-PCA APIs.",
                     add_completion=False)
app.command()(serve)
app.command()(worker)
app.command("report")(report)
app.command("agent")(agent)
app.add_typer(ca_app, name="ca")
app.add_typer(cert_app, name="cert")
app.add_typer(credentials_app, name="credentials")
app.add_typer(deploy_app, name="deploy")
app.add_typer(dns_provider_app, name="dns-provider")
app.add_typer(doctor_app, name="doctor")
app.add_typer(events_app, name="events")
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(issuer_app, name="issuer")
app.add_typer(master_key_app, name="master-key")
app.add_typer(renewal_app, name="renewal")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"certsmith {version('certsmith')}")
        raise typer.Exit()


@app.callback()
def _root(
    _show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False,
) -> None:
    """certsmith: a self-hosted certificate manager with the ACM and ACM-PCA APIs."""


def main() -> None:
    app()
