"""``certsmith serve`` and ``certsmith worker``: run the server on this machine."""

from __future__ import annotations

import errno
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..keys.master_key import MasterKeyError, MasterKeySource
from ..settings import Settings
from ..tls.auto import AutoTLS, key_password, server_names
from ..tls.context import ServerTLS, context_factory
from .local import ConfigOption, DatabaseUrlOption, DataDirOption, check_port, fail, local_settings, open_container

if TYPE_CHECKING:
    from ..dns.server import ValidationDnsServer
    from ..services.wiring import Container

__all__ = ["serve", "worker"]

_WILDCARDS = ("0.0.0.0", "::", "")
ValidationZoneOption = Annotated[str | None, typer.Option(
    help="the DNS zone delegated to certsmith for public certificates' validation records (e.g. "
         "acme-validation.example.com)", envvar="CERTSMITH_VALIDATION_ZONE")]
ResolversOption = Annotated[str | None, typer.Option(
    help="HOST[:PORT],... resolvers asked whether validation records are in place \\[default: the system's]",
    envvar="CERTSMITH_RESOLVERS")]

SmtpUrlOption = Annotated[str | None, typer.Option(
    help="where approval mails of email validation go out: smtp[s]://[USER:PASSWORD@]HOST[:PORT][?starttls=true]",
    envvar="CERTSMITH_SMTP_URL")]
MailFromOption = Annotated[str | None, typer.Option(help="the From address of approval mails \\[default: "
                                                         "certsmith@localhost]", envvar="CERTSMITH_MAIL_FROM")]
HttpPortOption = Annotated[int | None, typer.Option(
    help="the port certsmith checks HTTP validation redirects on \\[default: 80]", envvar="CERTSMITH_HTTP_VALIDATION_PORT")]


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on \\[default: 127.0.0.1]",
                                             envvar="CERTSMITH_HOST", show_envvar=True)] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on \\[default: 8000]", envvar="CERTSMITH_PORT")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    region: Annotated[str | None, typer.Option(help="region in ARNs \\[default: us-east-1]",
                                               envvar="CERTSMITH_REGION")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="the URL clients reach this server at; the base of the CRL and OCSP URLs written into every "
             "certificate \\[default: http(s)://HOST:PORT; required with a wildcard --host]",
        envvar="CERTSMITH_PUBLIC_URL")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="serve HTTPS with this PEM certificate (and chain)",
                                                  envvar="CERTSMITH_TLS_CERT")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="the PEM private key of --tls-cert", envvar="CERTSMITH_TLS_KEY")] = None,
    tls: Annotated[str | None, typer.Option(
        help="'auto': serve HTTPS with a certificate from certsmith's own internal root (DATA_DIR/tls/ca.pem for "
             "clients' AWS_CA_BUNDLE), renewed by certsmith \\[default: off]", envvar="CERTSMITH_TLS")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="do not run a worker in this process")] = False,
    processes: Annotated[int, typer.Option(min=1, help="API processes (each with its worker unless --no-worker)")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log", help="log one line per request",
                                             envvar="CERTSMITH_ACCESS_LOG")] = False,
    validation_zone: ValidationZoneOption = None,
    dns_listen: Annotated[str | None, typer.Option(
        help="HOST:PORT of the validation zone's DNS server, UDP and TCP (port 53 in production) "
             "\\[default: 127.0.0.1:5300]", envvar="CERTSMITH_DNS_LISTEN")] = None,
    resolvers: ResolversOption = None,
    smtp_url: SmtpUrlOption = None,
    mail_from: MailFromOption = None,
    http_validation_port: HttpPortOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the API server and a job worker (in one process, or in each of --processes)."""
    import uvicorn

    from ..api.factory import app_from_container, configure_logging, settings_to_environment

    settings = local_settings(config, host=host, port=port, data_dir=data_dir, database_url=database_url, region=region,
                              public_url=public_url, worker=False if no_worker else None, tls_cert=tls_cert,
                              tls_key=tls_key, tls=tls, access_log=True if access_log else None,
                              validation_zone=validation_zone, dns_listen=dns_listen, resolvers=resolvers,
                              smtp_url=smtp_url, mail_from=mail_from, http_validation_port=http_validation_port)
    _check_addresses(settings)
    _check_port_free(settings.host, settings.port)
    configure_logging(settings)
    had_credentials = (settings.data_dir / "credentials").exists()
    container = open_container(settings)
    dns_server = _start_dns(container)
    server_tls = _server_tls(settings)
    scheme = "https" if server_tls else "http"
    typer.echo(f"certsmith listening on {scheme}://{_url_host(settings.host)}:{settings.port} "
               f"(data in {settings.data_dir}; {_credentials_line(settings.data_dir, had_credentials)})", err=True)
    if server_tls is not None and server_tls.auto is not None:
        typer.echo(f"clients trust it with AWS_CA_BUNDLE={server_tls.auto.ca_path}", err=True)
    ssl_factory = context_factory(server_tls) if server_tls else None
    if dns_server is not None:
        typer.echo(f"validation zone {settings.validation_zone} answered on {settings.dns_listen} (UDP and TCP); "
                   "delegate it here with NS records", err=True)
    if processes > 1:
        container.database.dispose()  # migrated, credentials made; each process builds its own
        settings_to_environment(settings)
        uvicorn.run("certsmith.api.factory:app_from_environment", factory=True, workers=processes,
                    host=settings.host, port=settings.port, log_level="warning", access_log=False,
                    ssl_context_factory=ssl_factory)
        return
    uvicorn.run(app_from_container(container), host=settings.host, port=settings.port,
                log_level="warning", access_log=False, ssl_context_factory=ssl_factory)


def worker(
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    threads: Annotated[int, typer.Option(min=1, help="worker threads")] = 1,
    validation_zone: ValidationZoneOption = None,
    resolvers: ResolversOption = None,
    smtp_url: SmtpUrlOption = None,
    mail_from: MailFromOption = None,
    http_validation_port: HttpPortOption = None,
    config: ConfigOption = None,
) -> None:
    """Run workers only (no API); several may share one PostgreSQL database."""
    from ..api.factory import configure_logging

    settings = local_settings(config, data_dir=data_dir, database_url=database_url, validation_zone=validation_zone,
                              resolvers=resolvers, smtp_url=smtp_url, mail_from=mail_from,
                              http_validation_port=http_validation_port)
    check_port("--http-validation-port", settings.http_validation_port)
    configure_logging(settings)
    container = open_container(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    workers = [threading.Thread(target=container.worker().run_forever, args=(stop,)) for _ in range(threads)]
    for thread in workers:
        thread.start()
    while any(thread.is_alive() for thread in workers):
        for thread in workers:
            thread.join(timeout=0.5)
    container.stop_background()
    container.database.dispose()


def _check_addresses(settings: Settings) -> None:
    check_port("--port", settings.port)  # port 0 would be written into every certificate's CRL and OCSP URLs
    check_port("--http-validation-port", settings.http_validation_port)
    if settings.host in _WILDCARDS and not settings.public_url:
        fail(f"--host {settings.host or '(empty)'} listens on every address, so certsmith cannot tell which address "
             "clients reach it at, and would write that address into the CRL and OCSP URLs of every certificate. "
             "Set --public-url (public_url, CERTSMITH_PUBLIC_URL) to the URL clients use, "
             f"e.g. --public-url http://ca.example.internal:{settings.port}")
    if settings.tls not in ("off", "auto"):
        fail(f"--tls is 'off' or 'auto', not {settings.tls!r}")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        fail("--tls-cert and --tls-key go together: give both, or use --tls auto")
    if settings.tls_cert is not None and settings.tls == "auto":
        fail("--tls auto makes its own certificate: give either --tls auto or --tls-cert with --tls-key")
    for name, path in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key)):
        if path is not None and not path.is_file():
            fail(f"{name} {path}: no such file")


def _start_dns(container: Container) -> ValidationDnsServer | None:
    """The validation zone's authoritative DNS server, in this (parent) process, serving what the database holds."""
    from ..dns.probe import split_listen
    from ..dns.server import ValidationDnsServer

    settings = container.settings
    if not settings.validation_zone:
        return None
    host, port = split_listen(settings.dns_listen)
    nameservers = [n.strip() for n in settings.validation_nameservers.split(",") if n.strip()]
    server = ValidationDnsServer(container.validation_records.zone or settings.validation_zone, host, port,
                                 container.zone_content, nameservers=nameservers)
    try:
        server.start()
    except OSError as error:
        fail(f"--dns-listen {settings.dns_listen}: {error} (choose another with --dns-listen HOST:PORT)")
    container.challenges.listeners.append(server.poke)
    return server


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is taken (is another certsmith running?); choose another with --port")
            fail(f"cannot listen on {host}:{port}: {error.strerror}")


def _server_tls(settings: Settings) -> ServerTLS | None:

    if settings.tls_cert is not None and settings.tls_key is not None:
        return ServerTLS(settings.tls_cert, settings.tls_key, check_seconds=settings.tls_check_seconds)
    if settings.tls != "auto":
        return None
    try:
        master = MasterKeySource(settings.data_dir, settings.master_key).read()
    except MasterKeyError as error:
        fail(str(error))
    assert master is not None  # open_container made or checked it
    auto = AutoTLS(settings.data_dir / "tls", key_password(master), tuple(server_names(settings.host, settings.public_url)))
    auto.ensure()
    return ServerTLS(auto.cert_path, auto.key_path, auto.password, auto, check_seconds=settings.tls_check_seconds)


def _credentials_line(data_dir: Path, had_credentials: bool) -> str:
    path = data_dir / "credentials"
    if not path.exists():
        return (f"no credentials file at {path}: make an access key with "
                f"`certsmith credentials create --data-dir {data_dir}`")
    return f"credentials in {path}" if had_credentials else f"new admin credentials written to {path}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
