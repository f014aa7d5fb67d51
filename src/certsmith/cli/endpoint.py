"""``certsmith endpoint ...``: TLS endpoints certsmith monitors (trust, host name, expiry, drift from a certificate)."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .client import ApiError, Client
from .common import (
    DEFAULT_CREDENTIALS,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    AsJson,
    CaBundle,
    Credentials,
    Region,
    api_failures,
    connect,
    expiry,
    fail,
    print_fields,
    print_json,
    stdout_console,
)
from .common import Endpoint as ServerUrl
from .help import CertsmithTyper

__all__ = ["endpoint_app", "parse_interval", "split_target"]

endpoint_app = CertsmithTyper(help="TLS endpoints certsmith monitors: what each serves, whether it is trusted, for "
                                   "the right name, and the current version of its certificate.")
console = stdout_console()
_COLOURS = {"OK": "green", "PENDING": "dim", "DRIFT": "yellow", "MISMATCH": "red", "UNTRUSTED": "red",
            "EXPIRED": "red", "UNREACHABLE": "red"}
_TRUST = {"BUNDLE": "the endpoint's trust bundle", "CERTIFICATE_AUTHORITY": "the chain of its certificate's CA",
          "SYSTEM": "the system's CAs"}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
Target = Annotated[str, typer.Argument(metavar="ID|HOST[:PORT]", help="the endpoint's id, or its host and port")]


def parse_interval(text: str) -> int:
    """Seconds of ``90``, ``10s``, ``15m``, ``1h``, ``1d`` or ``1h30m``."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    match = _DURATION.match(value)
    if not value or match is None:
        raise ValueError(f"--interval {text!r}: give seconds or a duration such as 10s, 15m, 1h, 1d, 1h30m")
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def split_target(text: str) -> tuple[str, int | None]:
    """(host, port or None) of ``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address."""
    value = text.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: write an IPv6 address with a port as [ADDRESS]:PORT")
        port = rest[1:] if rest else None
    elif value.count(":") > 1:  # a bare IPv6 address
        return value, None
    else:
        host, colon, port_text = value.partition(":")
        port = port_text if colon else None
    if port is not None and not port.isdigit():
        raise ValueError(f"{text!r}: the port must be a number")
    return host, int(port) if port is not None else None


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)


def _where(item: dict[str, Any]) -> str:
    host = item["Host"]
    return f"[{host}]:{item['Port']}" if ":" in host else f"{host}:{item['Port']}"


def _status(status: str) -> str:
    colour = _COLOURS.get(status, "white")
    return f"[{colour}]{status}[/{colour}]"


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else "-"


def _resolve(client: Client, target: str) -> str:
    """The id of the endpoint a user named by id, ARN, or HOST[:PORT]."""
    if target.startswith(("ep-", "arn:")):
        return target
    try:
        host, port = split_target(target)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    try:
        normalised = str(ipaddress.ip_address(host))
    except ValueError:
        normalised = host.lower().rstrip(".")
    found = [e for e in client.call_all("list_endpoints", "Endpoints")
             if e["Host"] == normalised and (port is None or e["Port"] == port)]
    if not found:
        raise fail(f"no monitored endpoint is {target} (certsmith endpoint list shows them; "
                   "certsmith endpoint add registers one)")
    if len(found) > 1:
        names = ", ".join(f"{e['EndpointId']} ({_where(e)}, SNI {e['ServerName']})" for e in found)
        raise fail(f"{target} names several endpoints: {names}; give the id")
    return str(found[0]["EndpointId"])


@endpoint_app.command("add")
def add(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help="host name or IP address; port 443 if left out")],
    sni: Annotated[str | None, typer.Option("--sni", metavar="NAME",
                                            help="the server name to send and to match (default: HOST)")] = None,
    certificate: Annotated[str | None, typer.Option("--certificate", metavar="ARN",
                                                    help="the certificate it should serve: its current version is "
                                                         "expected (else DRIFT)")] = None,
    trust: Annotated[Path | None, typer.Option("--trust", metavar="FILE", exists=True, dir_okay=False,
                                               help="PEM CA certificates to check the chain against (default: the "
                                                    "CA of a certsmith private --certificate, else the system's)")] = None,
    interval: Annotated[str, typer.Option("--interval", metavar="DURATION",
                                          help="how often to probe: 10s to 7d")] = "1h",
    endpoint: ServerUrl = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Monitor a TLS endpoint: probed at once (the verdict is printed), then every --interval."""
    try:
        host, port = split_target(target)
        seconds = parse_interval(interval)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    request: dict[str, Any] = {"Host": host, "IntervalSeconds": seconds}
    for key, value in (("Port", port), ("ServerName", sni), ("CertificateArn", certificate)):
        if value is not None:
            request[key] = value
    if trust is not None:
        request["TrustBundle"] = trust.read_text()
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        created = client.call("create_endpoint", **request)["Endpoint"]
    try:  # the endpoint is monitored either way; the worker's first probe would come only at its next sweep
        probed: dict[str, Any] | None = client.call("probe_endpoint", EndpointId=created["EndpointId"])["Endpoint"]
        problem = None
    except ApiError as exc:
        probed, problem = None, str(exc)
    if as_json:
        print_json(probed or created)
    else:
        console.print(f"monitoring {escape(_where(created))} (SNI {escape(created['ServerName'])}) every "
                      f"{created['IntervalSeconds']} s as {escape(created['EndpointId'])}", soft_wrap=True,
                      highlight=False)
        if probed is not None:
            _print_probe(probed)
    if problem is not None:
        typer.echo(f"the first probe could not be made ({problem}); the workers probe it soon, then every --interval",
                   err=True)


@endpoint_app.command("list")
def list_endpoints(endpoint: ServerUrl = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                   region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """The monitored endpoints and what each last probe found."""
    with api_failures():
        found = _client(endpoint, credentials, region, ca_bundle).call_all("list_endpoints", "Endpoints")
    if as_json:
        print_json(found)
        return
    table = Table("Id", "Endpoint", "SNI", "Status", "Days left", "Served serial", "Checked at")
    for item in found:
        days = item.get("DaysToExpiry")
        table.add_row(escape(item["EndpointId"]), escape(_where(item)), escape(item["ServerName"]),
                      _status(item["Status"]), "-" if days is None else str(days), item.get("ServedSerial", "-"),
                      _when(item.get("ProbedAt")))
    console.print(table)
    if not found:
        typer.echo("no endpoint is monitored yet (certsmith endpoint add HOST[:PORT])", err=True)


def _print_probe(item: dict[str, Any]) -> None:
    ms = item.get("HandshakeMs")
    match = item.get("HostnameMatch")
    trusted = item.get("Trusted")
    source = _TRUST.get(item.get("TrustSource", ""), "")
    rows: list[tuple[str, Any]] = [
        ("Endpoint", f"{_where(item)} (SNI {item['ServerName']})"),
        ("Handshake", f"{ms:.1f} ms" if ms is not None else None),
        ("Host name", None if match is None else "matches" if match else f"does not match {item['ServerName']}"),
        ("Trust", None if trusted is None else f"trusted by {source}" if trusted else f"not trusted by {source}"),
    ]
    print_fields(console, rows, 13)
    if item.get("ServedNotAfter"):
        console.print(f"{'Expires:':<13}{expiry(item['ServedNotAfter'])}", soft_wrap=True, highlight=False)
    if item.get("CertificateArn"):
        served = item.get("ServedVersion")
        what = f"serves version {served}" if served is not None else "serves no version of it"
        current = item.get("CurrentVersion")
        print_fields(console, [("Certificate", item["CertificateArn"]),
                               ("Version", f"{what}; the current is {current}" if current else what)], 13)
    chain = item.get("Chain") or []
    if chain:
        table = Table("#", "Subject", "Issuer", "Serial", "Not after")
        for index, entry in enumerate(chain):
            table.add_row(str(index), escape(entry["Subject"]), escape(entry["Issuer"]), entry["Serial"],
                          _when(entry.get("NotAfter")))
        console.print(table)
    verdict = _status(item["Status"]) + (f": {escape(item['Error'])}" if item.get("Error") else "")
    console.print(f"{'Verdict:':<13}{verdict}", soft_wrap=True, highlight=False)


@endpoint_app.command("probe")
def probe(target: Target, endpoint: ServerUrl = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
          region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Probe an endpoint now: the chain, trust, host name, handshake time and the verdict (exit 1 unless OK)."""
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        found = client.call("probe_endpoint", EndpointId=_resolve(client, target))["Endpoint"]
    if as_json:
        print_json(found)
    else:
        _print_probe(found)
    if found["Status"] != "OK":
        raise typer.Exit(1)


@endpoint_app.command("remove")
def remove(target: Target, endpoint: ServerUrl = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Stop monitoring an endpoint."""
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        endpoint_id = _resolve(client, target)
        client.call("delete_endpoint", EndpointId=endpoint_id)
    console.print(f"no longer monitoring {escape(endpoint_id)}", soft_wrap=True, highlight=False)
