"""``certsmith deploy ...``: bind certificates to targets, run and follow deployments, roll back, manage agents.

Every command goes through certsmith's API (``Certsmith.CreateBinding``, ``RunDeployment``, ``DescribeDeployment``...)
like any other client; what is printed and the wait live in ``deploy_view``.
"""

from __future__ import annotations

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
    Endpoint,
    Region,
    api_failures,
    connect,
    fail,
    print_json,
    stdout_console,
)
from .deploy_view import (
    DeploymentTimeout,
    binding_options,
    binding_table,
    failure_line,
    failures,
    parse_verify,
    print_binding,
    print_deployment,
    short_id,
    summary,
    wait_for_deployment,
    when,
    write_agent_key,
)
from .help import CertsmithTyper

__all__ = ["deploy_app"]

deploy_app = CertsmithTyper(help="Deployment: bind a certificate to targets (files, nginx, apache, haproxy, AWS); each "
                                 "new version is deployed to them and checked by a TLS handshake.")
agent_app = CertsmithTyper(help="Agents: `certsmith agent` on hosts the server cannot reach, each with its own key.")
deploy_app.add_typer(agent_app, name="agent")
console = stdout_console()

Certificate = Annotated[str, typer.Argument(metavar="ARN", help="the certificate")]
Binding = Annotated[str, typer.Argument(metavar="BINDING", help="the binding's id, name or ARN")]
Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="follow the deployment until every target is done "
                                                             "(exit 1 if any failed)")]
Timeout = Annotated[float, typer.Option("--timeout", metavar="SECONDS", min=1,
                                        help="with --wait: how long to follow the deployment")]
_AGENT_HINT = "certsmith agent --config agent.toml"


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)


def _resolve(client: Client, ref: str, certificate_arn: str | None = None) -> str:
    """The ARN of the binding a user named by ARN, id or name."""
    if ref.startswith("arn:"):
        return ref
    filters = {"CertificateArn": certificate_arn} if certificate_arn else {}
    bindings = client.call_all("list_bindings", "Bindings", **filters)
    found = [b for b in bindings if b["BindingId"] == ref] or [b for b in bindings if b.get("Name") == ref]
    if not found:
        of = f" of {certificate_arn}" if certificate_arn else ""
        raise fail(f"no binding{of} has the id or name {ref!r} (certsmith deploy list shows them)")
    if len(found) > 1:
        raise fail(f"several bindings are named {ref!r}: {', '.join(b['BindingId'] for b in found)}; give the id")
    return str(found[0]["BindingArn"])


def _finish(client: Client, deployment_id: str, timeout: float, as_json: bool, also: dict[str, Any] | None = None) -> None:
    """Follow a deployment to its end; the outcome on stdout (in JSON: the Deployment, beside ``also`` when given),
    each failure once on stderr, exit 1 if any target failed."""
    with api_failures():
        try:
            deployment = wait_for_deployment(client, deployment_id, timeout, show=not as_json)
        except DeploymentTimeout as exc:
            raise fail(f"deployment {deployment_id} is still {exc.deployment.get('Status')} after {timeout:g} s "
                       f"({summary(exc.deployment)}); `certsmith deploy status {deployment_id}` follows it") from None
    if as_json:
        print_json({**also, "Deployment": deployment} if also is not None else deployment)
    else:
        total = len(deployment.get("Items") or [])
        done = total - len(failures(deployment))
        console.print(f"deployment {escape(deployment_id)} {deployment['Status']}: version {deployment['Version']} "
                      f"(serial {escape(str(deployment.get('Serial', '?')))}) on {done} of {total} targets",
                      soft_wrap=True, highlight=False)
    if as_json:  # otherwise the wait has shown each failure as it came
        for item in failures(deployment):
            typer.secho(f"certsmith: {failure_line(item)}", fg="red", err=True)
    if deployment["Status"] != "SUCCEEDED":
        raise typer.Exit(1)


def _started(deployment_id: str, what: str) -> None:
    console.print(f"{what} as deployment {escape(deployment_id)} (certsmith deploy status {escape(deployment_id)})",
                  soft_wrap=True, highlight=False)


@deploy_app.command("add")
def add(
    arn: Certificate,
    target: Annotated[str, typer.Option("--target", metavar="KIND",
                                        help="files, nginx, apache, haproxy, aws-acm, aws-elbv2, aws-cloudfront, or a "
                                             "plugin's kind")],
    path: Annotated[str | None, typer.Option("--path", metavar="DIR", help="the folder cert.pem, chain.pem, "
                                             "fullchain.pem and privkey.pem are written to (option path)")] = None,
    reload_command: Annotated[str | None, typer.Option("--reload-command", metavar="CMD",
                                                       help="run after the files are written (option reload_command)")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", metavar="KEY=VALUE",
                                                     help="an option of the target kind (repeat it)")] = None,
    secret_option: Annotated[list[str] | None, typer.Option(
        "--secret-option", metavar="KEY[=VALUE|=@FILE]",
        help="a secret option: the value, @FILE to read it, or KEY alone to be asked for it (repeat it)")] = None,
    verify: Annotated[str | None, typer.Option("--verify", metavar="HOST:PORT[/SNI]",
                                               help="handshake with it after each deployment: it must serve the new "
                                                    "serial (no scheme; HOST alone means port 443; [IPv6]:PORT/SNI for "
                                                    "IPv6)")] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="put the previous version back when the "
                                                              "check fails")] = False,
    agent: Annotated[str | None, typer.Option("--agent", metavar="NAME", help="deployed by this agent on its host, "
                                              "not by the server")] = None,
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="a name to refer to it by")] = None,
    no_deploy: Annotated[bool, typer.Option("--no-deploy", help="bind only: deploy at the next new version or "
                                                                "`certsmith deploy run`")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the first deployment until it is done")] = False,
    timeout: Timeout = 600, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Bind a certificate to a target; its current version is deployed there at once (unless --no-deploy)."""
    try:
        checked = parse_verify(verify) if verify is not None else None
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    if name is not None and not name.strip():
        raise fail("--name must not be empty", code=2)
    try:
        options = binding_options(target, path, reload_command, option or [], secret_option or [])
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    request: dict[str, Any] = {"CertificateArn": arn, "Kind": target, "Options": options, "Rollback": rollback,
                               "Deploy": not no_deploy}
    for key, value in (("Name", name), ("Agent", agent), ("Verify", checked)):
        if value is not None:
            request[key] = value
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        created = client.call("create_binding", **request)
    binding, deployment_id = created["Binding"], created.get("DeploymentId")
    plain = sorted(set(_secret_names(secret_option or [])) - set(binding.get("SecretOptionsSet") or []))
    if plain:
        typer.echo(f"note: {', '.join(plain)} is not a secret option of {target}: it is kept as given and shown", err=True)
    if deployment_id and wait:
        if not as_json:
            print_binding(console, binding)
        _finish(client, deployment_id, timeout, as_json, created)
        return
    if as_json:
        print_json(created)
        return
    print_binding(console, binding)
    if deployment_id:
        _started(deployment_id, "deploying the current version")
    elif agent:
        console.print(f"agent {escape(agent)} deploys it once it runs ({_AGENT_HINT})", highlight=False)


def _current_versions(client: Client, arns: set[str]) -> dict[str, int]:
    """The current version of each certificate (one ListCertificateVersions each); one that cannot be had is left out."""
    current: dict[str, int] = {}
    for arn in sorted(arns):
        try:
            versions = client.call("list_certificate_versions", CertificateArn=arn).get("Versions") or []
        except ApiError:
            continue
        for version in versions:
            if version.get("Current"):
                current[arn] = int(version["Version"])
    return current


def _secret_names(pairs: list[str]) -> list[str]:
    return [pair.partition("=")[0].strip() for pair in pairs]


@deploy_app.command("list")
def list_bindings(
    arn: Annotated[str | None, typer.Argument(metavar="[ARN]", help="only this certificate's bindings")] = None,
    agent: Annotated[str | None, typer.Option("--agent", metavar="NAME", help="only the bindings of this agent")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS, region: Region = DEFAULT_REGION,
    ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """The bindings: where each certificate goes, which version is there, and how it is checked."""
    filters = {key: value for key, value in (("CertificateArn", arn), ("Agent", agent)) if value is not None}
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        found = client.call_all("list_bindings", "Bindings", **filters)
    if as_json:
        print_json(found)
        return
    console.print(binding_table(found, _current_versions(client, {b["CertificateArn"] for b in found})))
    if not found:
        typer.echo("no binding yet (certsmith deploy add ARN --target KIND ...)", err=True)


@deploy_app.command("show")
def show(binding: Binding, endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
         region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """One binding: its target, options (secret ones only named), check, and what is deployed."""
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        found = client.call("describe_binding", BindingArn=_resolve(client, binding))["Binding"]
    if as_json:
        print_json(found)
    else:
        print_binding(console, found)


@deploy_app.command("remove")
def remove(binding: Binding, remove_from_target: Annotated[bool, typer.Option(
               "--remove-from-target", help="also take the certificate off the target (delete its files, the "
                                            "imported copy...)")] = False,
           endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Remove a binding: new versions no longer go to its target."""
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        binding_arn = _resolve(client, binding)
        client.call("delete_binding", BindingArn=binding_arn, RemoveFromTarget=remove_from_target)
    also = " and took the certificate off its target" if remove_from_target else ""
    console.print(f"removed binding {escape(short_id(binding_arn))}{also}", soft_wrap=True, highlight=False)


@deploy_app.command("run")
def run(
    arn: Certificate,
    binding: Annotated[list[str] | None, typer.Option("--binding", metavar="BINDING",
                                                      help="only this binding (id, name or ARN; repeat it)")] = None,
    version: Annotated[int | None, typer.Option("--version", metavar="N", min=1,
                                                help="this version (default: the current one)")] = None,
    wait: Wait = True, timeout: Timeout = 600, endpoint: Endpoint = DEFAULT_ENDPOINT,
    credentials: Credentials = DEFAULT_CREDENTIALS, region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
    as_json: AsJson = False,
) -> None:
    """Deploy a certificate to its bindings now (a version lower than the current one is a rollback)."""
    client = _client(endpoint, credentials, region, ca_bundle)
    request: dict[str, Any] = {"CertificateArn": arn}
    if version is not None:
        request["Version"] = version
    with api_failures():
        if binding:
            request["BindingArns"] = [_resolve(client, ref, arn) for ref in binding]
        deployment_id = client.call("run_deployment", **request)["DeploymentId"]
    _run_output(client, deployment_id, "deploying" + (f" version {version}" if version else ""), wait, timeout, as_json)


def _run_output(client: Client, deployment_id: str, what: str, wait: bool, timeout: float, as_json: bool) -> None:
    if wait:
        _finish(client, deployment_id, timeout, as_json)
    elif as_json:
        print_json({"DeploymentId": deployment_id})
    else:
        _started(deployment_id, what)


@deploy_app.command("status")
def status(
    ref: Annotated[str, typer.Argument(metavar="DEPLOYMENT-ID|ARN", help="a deployment, or a certificate (its latest "
                                                                         "deployment)")],
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS, region: Region = DEFAULT_REGION,
    ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """A deployment: its version, trigger, status, and each target's status, attempts, verified serial and error."""
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        deployment_id = ref
        if ref.startswith("arn:"):
            found = client.call("list_deployments", CertificateArn=ref, MaxResults=1)["Deployments"]  # newest first
            if not found:
                raise fail(f"{ref} has not been deployed yet (certsmith deploy add binds it to a target)")
            deployment_id = found[0]["DeploymentId"]
        deployment = client.call("describe_deployment", DeploymentId=deployment_id)["Deployment"]
    if as_json:
        print_json(deployment)
    else:
        print_deployment(console, deployment)


@deploy_app.command("rollback")
def rollback(
    arn: Certificate,
    to_version: Annotated[int | None, typer.Option("--to-version", metavar="N", min=1,
                                                   help="this version (default: the one before the current)")] = None,
    wait: Wait = True, timeout: Timeout = 600, endpoint: Endpoint = DEFAULT_ENDPOINT,
    credentials: Credentials = DEFAULT_CREDENTIALS, region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
    as_json: AsJson = False,
) -> None:
    """Deploy an earlier version of a certificate to all its bindings again (the one before the current by default)."""
    client = _client(endpoint, credentials, region, ca_bundle)
    with api_failures():
        versions = client.call("list_certificate_versions", CertificateArn=arn)["Versions"]
        numbers = sorted(v["Version"] for v in versions)
        current = next((v["Version"] for v in versions if v.get("Current")), numbers[-1] if numbers else None)
        if to_version is None:
            earlier = [n for n in numbers if current is not None and n < current]
            if not earlier:
                raise fail(f"{arn} has no version before the current one ({current}): nothing to roll back to")
            to_version = earlier[-1]
        elif to_version not in numbers:
            raise fail(f"--to-version {to_version}: {arn} has versions {', '.join(map(str, numbers)) or 'none'}")
        deployment_id = client.call("run_deployment", CertificateArn=arn, Version=to_version)["DeploymentId"]
    _run_output(client, deployment_id, f"rolling back to version {to_version}", wait, timeout, as_json)


@agent_app.command("create")
def create_agent(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the agent's name (bindings name it with --agent)")],
    credentials_file: Annotated[Path | None, typer.Option(
        "--credentials-file", metavar="FILE", help="write the agent's key there (AWS credentials format, mode 0600) "
                                                   "instead of printing it")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS, region: Region = DEFAULT_REGION,
    ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Create an agent and its key: the key is shown (or written) this once only."""
    if credentials_file is not None and (credentials_file.exists() or credentials_file.is_symlink()):
        raise fail(f"--credentials-file {credentials_file} exists; choose a new file (the key is written once)", code=2)
    if credentials_file is not None and not credentials_file.parent.is_dir():
        raise fail(f"--credentials-file {credentials_file}: the folder {credentials_file.parent} does not exist", code=2)
    with api_failures():
        created = _client(endpoint, credentials, region, ca_bundle).call("create_agent", Name=name)
    agent = created["Agent"]
    if credentials_file is not None:
        try:
            write_agent_key(credentials_file, created, region)
        except OSError as exc:
            raise fail(f"agent {name} was created but its key could not be written to {credentials_file} "
                       f"({exc.strerror or exc}); `certsmith deploy agent remove {name}` and create it again") from None
        if as_json:
            print_json({"Agent": agent, "CredentialsFile": str(credentials_file)})
        else:
            console.print(f"created agent {escape(name)} ({escape(agent['AgentArn'])}); its key is in "
                          f"{escape(str(credentials_file))} (mode 0600): point {_AGENT_HINT} at it", soft_wrap=True,
                          highlight=False)
        return
    if as_json:
        print_json(created)
        return
    console.print(f"created agent {escape(name)} ({escape(agent['AgentArn'])})", soft_wrap=True, highlight=False)
    console.print(f"aws_access_key_id = {agent['AccessKeyId']}\naws_secret_access_key = {created['SecretAccessKey']}",
                  soft_wrap=True, highlight=False)
    typer.echo("the secret is shown this once: keep it now (--credentials-file FILE writes it to a file)", err=True)


@agent_app.command("list")
def list_agents(endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """The agents, their access key ids and when each was last seen."""
    with api_failures():
        found = _client(endpoint, credentials, region, ca_bundle).call("list_agents")["Agents"]
    if as_json:
        print_json(found)
        return
    table = Table("Name", "Access key", "Created", "Last seen")
    for agent in found:
        table.add_row(escape(agent["Name"]), escape(agent.get("AccessKeyId", "")), when(agent.get("CreatedAt")),
                      when(agent.get("LastSeenAt")) if agent.get("LastSeenAt") else "never")
    console.print(table)
    if not found:
        typer.echo("no agent yet (certsmith deploy agent create NAME --credentials-file FILE)", err=True)


@agent_app.command("remove")
def remove_agent(name: Annotated[str, typer.Argument(metavar="NAME", help="the agent")],
                 endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                 region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None) -> None:
    """Remove an agent: its key stops working at once."""
    with api_failures():
        _client(endpoint, credentials, region, ca_bundle).call("delete_agent", Name=name)
    console.print(f"removed agent {escape(name)}; its key no longer works", soft_wrap=True, highlight=False)
