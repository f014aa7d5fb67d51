"""Real TLS servers on loopback for deployment tests and benchmarks: nginx and Apache, each with one port and one
site per server name (SNI), every site reading ``fullchain.pem`` and ``privkey.pem`` from a folder of its own.

Each site starts with a throwaway self-signed certificate, so the server starts before anything is deployed.
``target_options(name)`` gives the options of the nginx or apache deployment target for a site's folder.

Apache runs from a self-contained configuration (its own ServerRoot, PidFile, Mutex, runtime folder, logs and
LoadModule lines for mpm_event, authz_core, socache_shmcb and ssl), in the foreground, with the server binary itself
(``/usr/sbin/apache2`` on Debian, ``httpd`` elsewhere) and none of Debian's environment files; as root its children
run as ``nobody``, as any other user they run as that user. This works the same as root and as a normal user.
"""

from __future__ import annotations

import datetime as dt
import grp
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.deploy.targets.base import same_serial, serial_text

from .nginx import worker_pids
from .processes import launch, log_tail
from .server import free_port, stop_process

__all__ = ["APACHE_MODULE_DIRS", "TlsApache", "TlsNginx", "TlsServer", "apache_binary", "apache_modules",
           "served_serial", "start_tls_apache", "start_tls_nginx"]

READY_WITHIN = 20.0
HOST = "127.0.0.1"
APACHE_MODULE_DIRS = ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules",
                      "/usr/local/apache2/modules")
_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_UNSAFE = set(" \"';{}$\\\n#")


def served_serial(port: int, server_name: str, host: str = HOST, timeout: float = 2.0) -> str | None:
    """The serial (colon hex) of the leaf served at ``host:port`` to a client asking for ``server_name``, or None."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return serial_text(x509.load_der_x509_certificate(der).serial_number) if der else None


def _placeholder(folder: Path, name: str) -> None:
    """A self-signed certificate and key for ``name`` in ``folder`` (unless it already holds one)."""
    if (folder / "fullchain.pem").exists() and (folder / "privkey.pem").exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    for file_name in ("cert.pem", "fullchain.pem"):
        (folder / file_name).write_bytes(pem)
    (folder / "chain.pem").write_bytes(b"")
    fd = os.open(folder / "privkey.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def _checked_home(home: Path) -> Path:
    home = home.resolve()
    if _UNSAFE & set(str(home)):
        raise ValueError(f"home {str(home)!r} must not contain spaces, quotes, semicolons, braces, dollars or #")
    return home


def _checked_names(names: Sequence[str]) -> list[str]:
    if not names:
        raise ValueError("at least one server name is needed")
    checked = [name.strip().lower() for name in names]
    for name in checked:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a server name")
    if len(set(checked)) != len(checked):
        raise ValueError("the server names must differ")
    return checked


def _leaf_serial(folder: Path) -> str:
    return serial_text(x509.load_pem_x509_certificate((folder / "fullchain.pem").read_bytes()).serial_number)


@dataclass
class TlsServer:
    """A TLS server on ``HOST:port`` with one site per server name, each reading its own folder."""

    home: Path
    port: int
    binary: str
    names: list[str]
    process: subprocess.Popen[bytes] | None = None
    folders: dict[str, Path] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "stderr.log"

    @property
    def conf_path(self) -> Path:
        raise NotImplementedError

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.home / "logs" / "error.log", lines) + "\n" + log_tail(self.log_path, lines)

    def folder(self, name: str) -> Path:
        """The folder the site of ``name`` reads fullchain.pem and privkey.pem from."""
        return self.folders[name]

    def served_serial(self, name: str) -> str | None:
        """The serial the server presents to a client asking for ``name`` (None when it cannot be reached)."""
        return served_serial(self.port, name)

    def wait_serial(self, name: str, serial: str, within: float = READY_WITHIN) -> None:
        """Poll until the server presents ``serial`` for ``name``; RuntimeError with the log's tail otherwise."""
        deadline = time.monotonic() + within
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited:\n{self.log_tail()}")
            served = self.served_serial(name)
            if same_serial(served, serial) and self.settled():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} is served serial {served}, not {serial}, after {within:.0f} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.02)

    def settled_serial(self, name: str, within: float = READY_WITHIN) -> str | None:
        """What ``name`` is served once the server presents the certificate now in its folder (a reload takes a
        moment), or what it serves at the deadline."""
        deadline = time.monotonic() + within
        while True:
            served = self.served_serial(name)
            try:
                wanted: str | None = _leaf_serial(self.folder(name))
            except (OSError, ValueError):
                wanted = None
            if wanted is None or (same_serial(served, wanted) and self.settled()) or time.monotonic() > deadline:
                return served
            time.sleep(0.02)

    def settled(self) -> bool:
        """Whether no processes of an earlier configuration are left to answer with an older certificate."""
        return True

    def restore_site(self, name: str) -> None:
        """Give the site of ``name`` a new self-signed certificate when its files are gone (after a removal)."""
        _placeholder(self.folder(name), name)

    # what the server logs once it has taken a reload (the control commands return when the signal is sent)
    reloaded_marker = ""
    reload_words = ("-s reload", "-k graceful")

    def control_script(self, calls: Path | None = None) -> str:
        """A control command for the deployment target that runs the server binary, appends each call's arguments
        to ``calls``, and returns from a reload only once the server logs that it has taken it (within 10 s)."""
        script = self.home / "control.sh"
        log = self.home / "logs" / "error.log"
        record = f'echo "$*" >> "{calls}"\n' if calls is not None else ""
        patterns = "|".join(f"*'{words}'*" for words in self.reload_words)
        script.write_text(
            "#!/bin/sh\n" + record
            + f'taken() {{ grep -c -F -e "{self.reloaded_marker}" "{log}" 2>/dev/null || true; }}\n'
            + 'before=$(taken)\n'
            + f'"{self.binary}" "$@" || exit $?\n'
            + f'case "$*" in {patterns})\n'
            + '  i=0; while [ "$(taken)" -le "$before" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done ;;\n'
            + "esac\n")
        script.chmod(0o755)
        return str(script)

    def wait_serving(self) -> None:
        """Poll until every site presents the certificate in its folder."""
        for name in self.names:
            self.wait_serial(name, _leaf_serial(self.folder(name)))

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def _prepare(self) -> None:
        for sub in ("logs", "run", "tmp", "htdocs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        for name in self.names:
            folder = self.home / "sites" / name
            folder.mkdir(parents=True, exist_ok=True)
            _placeholder(folder, name)
            self.folders[name] = folder


@dataclass
class TlsNginx(TlsServer):
    """nginx with one ``server`` block per name on one port (the first name is the default server)."""

    reloaded_marker = "(SIGHUP) received"

    def settled(self) -> bool:
        """One worker left (the configuration has one): the workers of an earlier one have exited."""
        return self.process is not None and len(worker_pids(self.process.pid)) <= 1

    @property
    def conf_path(self) -> Path:
        return self.home / "nginx.conf"

    def command(self, *args: str) -> list[str]:
        return [self.binary, "-e", "stderr", "-p", str(self.home), "-c", str(self.conf_path), *args]

    def target_options(self, name: str, nginx: str | None = None) -> dict[str, str]:
        """The nginx target's options for the site of ``name`` (``nginx``: another binary, e.g. the control script)."""
        return {"path": str(self.folder(name)), "nginx": f"{nginx or self.binary} -e stderr", "prefix": str(self.home),
                "config": str(self.conf_path)}

    def write_config(self, extra: str = "", without: Sequence[str] = ()) -> None:
        """Write the configuration (``extra`` goes inside ``http {}``: a way to break it on purpose; the sites named
        in ``without`` are left out, so their files can be removed)."""
        home = self.home
        lines = ["worker_processes 1;", f"pid {home}/run/nginx.pid;", f"error_log {home}/logs/error.log notice;",
                 "events { worker_connections 256; }", "http {", f"    access_log {home}/logs/access.log;",
                 *(f"    {kind}_temp_path {home}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                         "scgi"))]
        for index, name in enumerate(self.names):
            if name in without:
                continue
            folder = self.folder(name)
            lines += ["    server {", f"        listen {HOST}:{self.port} ssl{' default_server' if index == 0 else ''};",
                      f"        server_name {name};", f"        ssl_certificate {folder}/fullchain.pem;",
                      f"        ssl_certificate_key {folder}/privkey.pem;",
                      f'        location / {{ return 200 "{name}\\n"; }}', "    }"]
        if extra:
            lines.append(extra)
        lines.append("}")
        self.conf_path.write_text("\n".join(lines) + "\n")


def start_tls_nginx(home: Path, names: Sequence[str], *, port: int | None = None, binary: str = "nginx",
                    start: bool = True) -> TlsNginx:
    """Start nginx on 127.0.0.1:``port`` (a free one if not given) with a TLS server block per name, files in
    ``home``; returns once every name is served its folder's certificate (RuntimeError with the log otherwise).
    With ``start=False`` only the files are written (a server that is down)."""
    server = TlsNginx(_checked_home(home), port or free_port(), binary, _checked_names(names))
    server._prepare()
    server.write_config()
    if start:
        launch(server, server.command("-g", "daemon off;"), server.wait_serving)
    return server


def apache_binary() -> str | None:
    """The Apache server binary here (apache2 on Debian, httpd elsewhere), or None."""
    for name in ("apache2", "httpd"):
        found = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None)
        if found:
            return found
    return None


def apache_modules() -> Path | None:
    """The folder of Apache's loadable modules here, or None."""
    return next((Path(p) for p in APACHE_MODULE_DIRS if Path(p, "mod_ssl.so").exists()), None)


@dataclass
class TlsApache(TlsServer):
    """Apache with one ``VirtualHost`` per name on one port (the first name is the default), self-contained."""

    reloaded_marker = "resuming normal operations"

    modules: Path = Path(APACHE_MODULE_DIRS[0])

    @property
    def conf_path(self) -> Path:
        return self.home / "httpd.conf"

    def command(self, *args: str) -> list[str]:
        return [self.binary, "-f", str(self.conf_path), *args]

    def target_options(self, name: str, apachectl: str | None = None) -> dict[str, str]:
        """The apache target's options for the site of ``name`` (``apachectl``: another control command)."""
        return {"path": str(self.folder(name)), "apachectl": apachectl or self.binary, "config": str(self.conf_path)}

    def write_config(self, extra: str = "", without: Sequence[str] = ()) -> None:
        """Write the configuration (``extra`` is appended: a way to break it on purpose; the sites named in
        ``without`` are left out, so their files can be removed)."""
        home, mods = self.home, self.modules
        lines = [f'ServerRoot "{home}"', "ServerName localhost", f'PidFile "{home}/run/httpd.pid"',
                 f'DefaultRuntimeDir "{home}/run"', f"Mutex file:{home}/run default",
                 f'ErrorLog "{home}/logs/error.log"', "LogLevel notice",
                 *(f"LoadModule {module}_module {mods}/mod_{module}.so"
                   for module in ("mpm_event", "authz_core", "socache_shmcb", "ssl")),
                 "StartServers 1", "ServerLimit 4", "ThreadsPerChild 8", "MaxRequestWorkers 32",
                 f"Listen {HOST}:{self.port}", f"SSLSessionCache shmcb:{home}/run/ssl_scache(512000)",
                 f'DocumentRoot "{home}/htdocs"']
        if os.geteuid() == 0:  # root hands the children to nobody; anyone else keeps them
            nobody = pwd.getpwnam("nobody")
            lines += ["User nobody", f"Group {grp.getgrgid(nobody.pw_gid).gr_name}"]
        for name in self.names:
            if name in without:
                continue
            folder = self.folder(name)
            lines += [f"<VirtualHost {HOST}:{self.port}>", f"    ServerName {name}", "    SSLEngine on",
                      f"    SSLCertificateFile {folder}/fullchain.pem", f"    SSLCertificateKeyFile {folder}/privkey.pem",
                      "</VirtualHost>"]
        if extra:
            lines.append(extra)
        self.conf_path.write_text("\n".join(lines) + "\n")


def start_tls_apache(home: Path, names: Sequence[str], *, port: int | None = None, binary: str | None = None,
                     modules: Path | None = None, start: bool = True) -> TlsApache:
    """Start Apache in the foreground on 127.0.0.1:``port`` (a free one if not given) with a TLS virtual host per
    name, files in ``home``; returns once every name is served its folder's certificate. With ``start=False`` only
    the files are written."""
    binary = binary or apache_binary()
    modules = modules or apache_modules()
    if binary is None or modules is None:
        raise RuntimeError("Apache (apache2 or httpd, with mod_ssl) is not installed")
    server = TlsApache(_checked_home(home), port or free_port(), binary, _checked_names(names), modules=modules)
    server._prepare()
    server.write_config()
    if start:
        launch(server, server.command("-DFOREGROUND"), server.wait_serving)
    return server
