"""``certsmith ca disable | enable | update | delete | restore``: change or clean up a CA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from .ca_view import details
from .client import ApiError, Client
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

__all__ = ["COMMANDS"]

console = stdout_console()
Ca = Annotated[str, typer.Argument(metavar="ARN", help="the CA")]
DEFAULT_CRL_DAYS = 7


def _describe(client: Client, arn: str) -> dict[str, Any]:
    described: dict[str, Any] = client.call("describe_certificate_authority",
                                            CertificateAuthorityArn=arn)["CertificateAuthority"]
    return described


def _set_status(arn: str, status: str, endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> None:
    with api_failures():
        client = connect("acm-pca", endpoint, credentials, region, ca_bundle)
        client.call("update_certificate_authority", CertificateAuthorityArn=arn, Status=status)
        now = _describe(client, arn)["Status"]
    console.print(f"[bold]{arn}[/bold] is {now}", soft_wrap=True)


def disable(arn: Ca, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
            region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Stop an ACTIVE CA from issuing (it still revokes, publishes its CRL and answers OCSP)."""
    _set_status(arn, "DISABLED", endpoint, credentials, region, ca_bundle)


def enable(arn: Ca, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Make a DISABLED CA ACTIVE again."""
    _set_status(arn, "ACTIVE", endpoint, credentials, region, ca_bundle)


def _revised(current: dict[str, Any], crl: bool | None, crl_days: int | None, crl_cname: str | None,
             ocsp: bool | None, ocsp_cname: str | None) -> dict[str, Any]:
    """The whole RevocationConfiguration to send (the API replaces it): the current one with the changes asked."""
    crl_config = dict(current.get("CrlConfiguration") or {"Enabled": False})
    ocsp_config = dict(current.get("OcspConfiguration") or {"Enabled": False})
    if crl is not None:
        crl_config["Enabled"] = crl
    if ocsp is not None:
        ocsp_config["Enabled"] = ocsp
    if not crl_config["Enabled"] and (crl_days is not None or crl_cname is not None):
        raise fail("--crl-days and --crl-cname apply to a CRL, and this CA publishes none: add --crl", code=2)
    if not ocsp_config["Enabled"] and ocsp_cname is not None:
        raise fail("--ocsp-cname applies to OCSP, and this CA does not answer it: add --ocsp", code=2)
    if crl_days is not None:
        crl_config["ExpirationInDays"] = crl_days
    if crl_config["Enabled"]:
        crl_config.setdefault("ExpirationInDays", DEFAULT_CRL_DAYS)
    for config, key, value in ((crl_config, "CustomCname", crl_cname), (ocsp_config, "OcspCustomCname", ocsp_cname)):
        if value == "":
            config.pop(key, None)  # an empty name goes back to certsmith's own URL
        elif value is not None:
            config[key] = value
    # The API takes no other member beside Enabled=false: a configuration turned off is forgotten.
    return {"CrlConfiguration": crl_config if crl_config["Enabled"] else {"Enabled": False},
            "OcspConfiguration": ocsp_config if ocsp_config["Enabled"] else {"Enabled": False}}


def update(
    arn: Ca,
    crl: Annotated[bool | None, typer.Option("--crl/--no-crl", help="publish a CRL and put its URL in "
                                             "certificates issued from now on", show_default="unchanged")] = None,
    crl_days: Annotated[int | None, typer.Option("--crl-days", metavar="DAYS", min=1,
                                                 help="how long each CRL is valid",
                                                 show_default=f"unchanged; {DEFAULT_CRL_DAYS} when the CRL is "
                                                              "turned on")] = None,
    crl_cname: Annotated[str | None, typer.Option("--crl-cname", metavar="HOST", show_default="unchanged",
                                                  help="host name in the CRL URL (\"\" for certsmith's own)")] = None,
    ocsp: Annotated[bool | None, typer.Option("--ocsp/--no-ocsp", help="answer OCSP and put its URL in "
                                              "certificates issued from now on", show_default="unchanged")] = None,
    ocsp_cname: Annotated[str | None, typer.Option("--ocsp-cname", metavar="HOST", show_default="unchanged",
                                                   help="host name in the OCSP URL (\"\" for certsmith's own)")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Change a CA's CRL and OCSP settings (an ACTIVE or DISABLED CA); what is not given stays as it is."""
    if (crl, crl_days, crl_cname, ocsp, ocsp_cname) == (None, None, None, None, None):
        raise fail("nothing to change: give --crl/--no-crl, --crl-days, --crl-cname, --ocsp/--no-ocsp or "
                   "--ocsp-cname", code=2)
    with api_failures():
        client = connect("acm-pca", endpoint, credentials, region, ca_bundle)
        current = _describe(client, arn).get("RevocationConfiguration", {})
        revocation = _revised(current, crl, crl_days, crl_cname, ocsp, ocsp_cname)
        client.call("update_certificate_authority", CertificateAuthorityArn=arn, RevocationConfiguration=revocation)
        described = _describe(client, arn)
    if as_json:
        print_json(described)
        return
    console.print(f"updated [bold]{arn}[/bold]", soft_wrap=True)
    for label, value in details(described):
        if label in ("CRL", "OCSP"):
            console.print(f"{label}: {value}", soft_wrap=True)


def delete(
    arn: Ca,
    restore_days: Annotated[int, typer.Option("--restore-days", metavar="DAYS", min=7, max=30,
                                              help="days during which `certsmith ca restore` brings it back; then "
                                                   "it is gone for good with its key and certificates")] = 30,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
) -> None:
    """Delete a CA that is not ACTIVE (disable it first). One that never became ACTIVE may be restored too."""
    with api_failures():
        client = connect("acm-pca", endpoint, credentials, region, ca_bundle)
        status = _describe(client, arn)["Status"]
        if status == "ACTIVE":
            raise ApiError(f"the CA {arn} is ACTIVE: disable it first (certsmith ca disable {arn}), then delete it")
        client.call("delete_certificate_authority", CertificateAuthorityArn=arn,
                    PermanentDeletionTimeInDays=restore_days)
    try:
        after = _describe(client, arn)
    except ApiError:  # already purged: it was never ACTIVE or DISABLED, so there is nothing to restore
        after = {"Status": "DELETED"}
    if after.get("RestorableUntil"):
        console.print(f"[bold]{arn}[/bold] is {after['Status']}; until {after['RestorableUntil']:%Y-%m-%d %H:%M}Z "
                      f"it can be brought back with: certsmith ca restore {arn}", soft_wrap=True)
    else:
        console.print(f"[bold]{arn}[/bold] is {after['Status']} (it was {status}, so it cannot be restored)",
                      soft_wrap=True)


def restore(arn: Ca, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
            region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Bring back a DELETED CA within its restoration window, in the status it had (DISABLED or PENDING_CERTIFICATE)."""
    with api_failures():
        client = connect("acm-pca", endpoint, credentials, region, ca_bundle)
        client.call("restore_certificate_authority", CertificateAuthorityArn=arn)
        now = _describe(client, arn)["Status"]
    hint = f" (certsmith ca enable {arn} makes it issue again)" if now == "DISABLED" else ""
    console.print(f"[bold]{arn}[/bold] is {now}{hint}", soft_wrap=True)


COMMANDS: dict[str, Callable[..., None]] = {"disable": disable, "enable": enable, "update": update,
                                            "delete": delete, "restore": restore}
