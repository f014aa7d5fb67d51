"""What ``certsmith deploy`` reads and prints: --verify and KEY=VALUE values, bindings, deployments, the wait."""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import Client
from .common import PIPE_WIDTH, print_fields
from .endpoint import split_target

__all__ = ["FINAL_ITEM", "DeploymentTimeout", "binding_options", "binding_table", "check_key", "deployment_table",
           "failure_line", "failures", "parse_pairs", "parse_verify", "print_binding", "print_deployment",
           "read_secret_value", "short_id", "summary", "verify_text", "wait_for_deployment", "when", "write_agent_key"]

FINAL = frozenset({"SUCCEEDED", "FAILED", "SUPERSEDED"})
FINAL_ITEM = frozenset({"SUCCEEDED", "FAILED", "ROLLED_BACK", "SUPERSEDED"})
_COLOURS = {"SUCCEEDED": "green", "DEPLOYED": "green", "FAILED": "red", "ROLLED_BACK": "yellow", "PENDING": "dim",
            "IN_PROGRESS": "cyan", "WAITING_FOR_AGENT": "magenta", "SUPERSEDED": "dim"}
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_SERVER_NAME = re.compile(r"^(?=.{1,253}\.?$)(\*\.)?[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
                          r"(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$", re.IGNORECASE)


def _verify_shape(text: str) -> None:
    """ValueError saying how to write --verify for the usual slips: a URL, a ':' before the server name."""
    value = text.strip()
    scheme, sep, rest = value.partition("://")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        shown = rest.rstrip("/") or "HOST:PORT"
        raise ValueError(f"--verify {text!r}: --verify takes HOST:PORT[/SNI] without a scheme, e.g. {shown}")
    where = value.partition("/")[0]
    if where.startswith("[") or where.count(":") < 2:
        return
    try:
        ipaddress.IPv6Address(where)
    except ValueError:
        slip = re.fullmatch(r"([^:]+):(\d+):([^:]+)", where)
        if slip:
            host, port, name = slip.groups()
            raise ValueError(f"--verify {text!r}: put a '/' before the server name: {host}:{port}/{name}") from None
        raise ValueError(f"--verify {text!r}: {where!r} is not an IPv6 address; write HOST:PORT[/SNI], or "
                         "[ADDRESS]:PORT[/SNI] for IPv6") from None


def parse_verify(text: str) -> dict[str, Any]:
    """``{"Host", "Port"?, "ServerName"?}`` of ``HOST[:PORT][/SNI]``, ``[IPv6]:PORT[/SNI]`` or a bare IPv6 address
    (no port: 443, the server's default)."""
    _verify_shape(text)
    where, slash, sni = text.strip().partition("/")
    try:
        host, port = split_target(where)
    except ValueError as exc:
        raise ValueError(f"--verify {exc}") from None
    if not host.strip() or any(c.isspace() for c in host):
        raise ValueError(f"--verify {text!r}: give the host to handshake with as HOST:PORT[/SERVER-NAME]")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"--verify {text!r}: the port must be from 1 to 65535")
    found: dict[str, Any] = {"Host": host}
    if port is not None:
        found["Port"] = port
    if slash:
        if not sni:
            raise ValueError(f"--verify {text!r}: give the server name (SNI) after the '/', or leave the '/' out")
        if not _SERVER_NAME.match(sni):
            raise ValueError(f"--verify {text!r}: the server name {sni!r} after the '/' is not a DNS name")
        found["ServerName"] = sni
    return found


def parse_pairs(flag: str, pairs: Iterable[str]) -> dict[str, str]:
    """``{KEY: VALUE}`` of ``KEY=VALUE`` values given with ``flag``; ValueError naming the flag and the value."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals:
            raise ValueError(f"{flag} {pair!r}: write KEY=VALUE")
        check_key(flag, key, pair)
        if key in found:
            raise ValueError(f"{flag} {key}: given twice")
        found[key] = value
    return found


def check_key(flag: str, key: str, pair: str) -> None:
    if _KEY.match(key):
        return
    if _KEY.match(key.replace("-", "_")):
        raise ValueError(f"{flag} {pair!r}: option names use underscores: {key.replace('-', '_')}")
    raise ValueError(f"{flag} {pair!r}: the option name {key!r} must be lower-case letters, digits and underscores")


def read_secret_value(flag: str, key: str, value: str) -> str:
    """A secret option's value: itself, or with ``@FILE`` the file's text (its last newline left out)."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text().removesuffix("\n")
    except OSError as exc:
        raise ValueError(f"{flag} {key}=@{value[1:]}: cannot read the file ({exc.strerror or exc})") from None


def short_id(arn: str) -> str:
    """The id at the end of a binding's ARN (``...:binding/<id>``)."""
    return arn.rpartition("/")[2]


def verify_text(verify: dict[str, Any] | None) -> str:
    if not verify:
        return "-"
    host = str(verify.get("Host", ""))
    where = f"[{host}]" if ":" in host else host
    where += f":{verify['Port']}" if verify.get("Port") else ""
    return where + (f"/{verify['ServerName']}" if verify.get("ServerName") else "")


def status_text(status: str | None) -> str:
    if not status:
        return "-"
    colour = _COLOURS.get(status, "white")
    return f"[{colour}]{status}[/{colour}]"


def when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else "-"


def _deployed(binding: dict[str, Any]) -> str:
    version = binding.get("DeployedVersion")
    if version is None:
        return "-"
    return f"{version} ({binding['DeployedSerial']})" if binding.get("DeployedSerial") else str(version)


def _current(binding: dict[str, Any], current: Mapping[str, int]) -> str:
    """The certificate's current version, marked when the binding holds another (an older one, after a rollback)."""
    version = current.get(binding["CertificateArn"])
    if version is None:
        return "-"
    deployed = binding.get("DeployedVersion")
    if deployed is not None and deployed != version:
        return f"[yellow]{version} (behind)[/yellow]"
    return str(version)


def binding_table(bindings: list[dict[str, Any]], current: Mapping[str, int] | None = None) -> Table:
    """The bindings, one a row; with ``current`` (certificate ARN -> current version) a column of it, bindings
    holding another version marked "behind"."""
    columns = ["Binding", "Kind", "Target", "Status", "Deployed version (serial)"]
    table = Table(*columns, *(["Current version"] if current is not None else []), "Verify")
    for binding in bindings:
        name = f" ({binding['Name']})" if binding.get("Name") else ""
        agent = f" via agent {binding['Agent']}" if binding.get("Agent") else ""
        row = [escape(binding["BindingId"] + name), escape(binding["Kind"]), escape(binding.get("Target", "") + agent),
               status_text(binding.get("Status")), escape(_deployed(binding))]
        if current is not None:
            row.append(_current(binding, current))
        table.add_row(*row, escape(verify_text(binding.get("Verify"))))
    return table


def print_binding(console: Console, binding: dict[str, Any]) -> None:
    options = ", ".join(f"{key}={value}" for key, value in sorted((binding.get("Options") or {}).items()))
    secrets = ", ".join(f"{key} (set)" for key in binding.get("SecretOptionsSet") or [])
    print_fields(console, [
        ("Binding", binding["BindingArn"]), ("Id", binding["BindingId"]), ("Name", binding.get("Name")),
        ("Certificate", binding["CertificateArn"]), ("Kind", binding["Kind"]), ("Target", binding.get("Target")),
        ("Options", options or None), ("Secret options", secrets or None), ("Agent", binding.get("Agent")),
        ("Verify", verify_text(binding.get("Verify")) if binding.get("Verify") else "no handshake after deploying"),
        ("Rollback", "on a failed check" if binding.get("Rollback") else "no"),
    ], 16)
    console.print(f"{'Status:':<16}{status_text(binding.get('Status'))}", soft_wrap=True, highlight=False)
    print_fields(console, [("Deployed", _deployed(binding) if binding.get("DeployedVersion") is not None else None),
                           ("Deployed at", binding.get("DeployedAt")), ("Last error", binding.get("LastError")),
                           ("Created", binding.get("CreatedAt")), ("Updated", binding.get("UpdatedAt"))], 16)


def deployment_table(items: list[dict[str, Any]]) -> Table:
    table = Table("Binding", "Kind", "Target", "Status", "Attempts", "Verified serial", "Finished")
    table.add_column("Error", overflow="fold")
    for item in items:
        table.add_row(escape(short_id(item["BindingArn"])), escape(item.get("Kind", "")), escape(item.get("Target", "")),
                      status_text(item.get("Status")), str(item.get("Attempts", 0)), escape(item.get("VerifiedSerial") or "-"),
                      when(item.get("FinishedAt")), escape(item.get("Error") or ""))
    return table


def print_deployment(console: Console, deployment: dict[str, Any]) -> None:
    print_fields(console, [
        ("Deployment", deployment["DeploymentId"]), ("Certificate", deployment["CertificateArn"]),
        ("Version", f"{deployment['Version']} (serial {deployment.get('Serial', '?')})"),
        ("Trigger", deployment.get("Trigger")), ("Created", deployment.get("CreatedAt")),
        ("Started", deployment.get("StartedAt")), ("Finished", deployment.get("FinishedAt")),
    ], 13)
    console.print(f"{'Status:':<13}{status_text(deployment.get('Status'))}", soft_wrap=True, highlight=False)
    items = deployment.get("Items") or []
    if items:
        console.print(deployment_table(items))


def failures(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in deployment.get("Items") or [] if item.get("Status") in ("FAILED", "ROLLED_BACK")]


def failure_line(item: dict[str, Any]) -> str:
    what = "rolled back" if item.get("Status") == "ROLLED_BACK" else "failed"
    previous = f" to version {item['PreviousVersion']}" if what == "rolled back" and item.get("PreviousVersion") else ""
    return (f"{short_id(item['BindingArn'])} ({item.get('Target') or item.get('Kind', '?')}) {what}{previous}: "
            f"{item.get('Error') or 'no reason given'}")


def _counts(deployment: dict[str, Any]) -> tuple[int, int, int, int]:
    """(items, done, failed, waiting for an agent)."""
    items = deployment.get("Items") or []
    done = sum(1 for item in items if item.get("Status") in FINAL_ITEM)
    waiting = sum(1 for item in items if item.get("Status") == "WAITING_FOR_AGENT")
    return len(items), done, len(failures(deployment)), waiting


def summary(deployment: dict[str, Any]) -> str:
    total, done, failed, waiting = _counts(deployment)
    text = f"{done} of {total} done, {failed} failed"
    return text + (f", {waiting} waiting for an agent" if waiting else "")


class DeploymentTimeout(Exception):
    """The deployment was not final by the deadline; ``deployment`` is what it was last."""

    def __init__(self, deployment: dict[str, Any]) -> None:
        super().__init__(deployment["DeploymentId"])
        self.deployment = deployment


def wait_for_deployment(client: Client, deployment_id: str, timeout: float, show: bool) -> dict[str, Any]:
    """DescribeDeployment until it is SUCCEEDED or FAILED, shown on stderr when ``show``: a progress bar in a terminal
    (N of M done, failures as they come), else a line whenever the counts change. DeploymentTimeout at the deadline."""
    console = Console(stderr=True, emoji=False) if sys.stderr.isatty() else Console(stderr=True, emoji=False,
                                                                                  width=PIPE_WIDTH)
    deadline = time.monotonic() + timeout
    shown: set[str] = set()
    last = ""
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("[red]{task.fields[failed]} failed[/red]{task.fields[waiting]}"), TimeElapsedColumn(),
                        console=console, transient=False, disable=not (show and console.is_terminal))
    with progress:
        task = progress.add_task(f"deploying {deployment_id}", total=None, failed=0, waiting="")
        delay = 0.2
        while True:
            deployment: dict[str, Any] = client.call("describe_deployment", DeploymentId=deployment_id)["Deployment"]
            total, done, failed, waiting = _counts(deployment)
            progress.update(task, total=total or None, completed=done, failed=failed,
                            waiting=f", {waiting} waiting for an agent" if waiting else "")
            for item in failures(deployment):
                if show and item["BindingArn"] not in shown:
                    shown.add(item["BindingArn"])
                    (progress.console if console.is_terminal else console).print(
                        f"[red]x[/red] {escape(failure_line(item))}", soft_wrap=True, highlight=False)
            if show and not console.is_terminal and summary(deployment) != last:
                last = summary(deployment)
                console.print(f"deployment {escape(deployment_id)}: {last}", soft_wrap=True, highlight=False)
            if deployment.get("Status") in FINAL:
                return deployment
            if time.monotonic() + delay > deadline:
                raise DeploymentTimeout(deployment)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)


def binding_options(target: str, path: str | None, reload_command: str | None, option: list[str],
                    secret_option: list[str]) -> dict[str, str]:
    """The binding's Options from --path, --reload-command, --option and --secret-option (asked for when bare);
    ValueError naming the option for anything wrong."""
    options = parse_pairs("--option", option)
    secrets: dict[str, str] = {}
    for pair in secret_option:
        key, equals, value = pair.partition("=")
        key = key.strip()
        check_key("--secret-option", key, pair)
        if key in secrets or key in options:
            raise ValueError(f"--secret-option {key}: given twice")
        secrets[key] = read_secret_value("--secret-option", key, value) if equals else \
            typer.prompt(f"{key} (for the {target} target)", hide_input=True, err=True)
    options.update(secrets)
    for flag, name, given in (("--path", "path", path), ("--reload-command", "reload_command", reload_command)):
        if given is None:
            continue
        if name in options:
            raise ValueError(f"{flag} and --option {name}=...: give it once")
        if not given.strip():
            raise ValueError(f"{flag} must not be empty")
        options[name] = given
    if path is not None and not path.startswith("/"):
        raise ValueError(f"--path {path!r}: give an absolute folder (it is on the host that deploys: the server's, or "
                         "the agent's with --agent)")
    return options


def write_agent_key(path: Path, created: dict[str, Any], region: str) -> None:
    """An agent's key in the AWS shared-credentials format, mode 0600, into a file that must not exist yet."""
    agent = created["Agent"]
    text = (f"[default]\naws_access_key_id = {agent['AccessKeyId']}\n"
            f"aws_secret_access_key = {created['SecretAccessKey']}\n"
            f"# certsmith agent {agent['Name']} ({agent['AgentArn']}), region {region}\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
