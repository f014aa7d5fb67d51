"""The ``apache`` target: certbot's four files in a folder (see ``files.py``), then a configuration test and a
graceful restart.

Point the virtual host at the folder (``SSLCertificateFile <path>/fullchain.pem``, ``SSLCertificateKeyFile
<path>/privkey.pem``). The commands are ``<apachectl> [-d server_root] [-f config] -t`` and ``... -k graceful``,
which both ``apachectl`` (Debian's ``apache2ctl`` passes such arguments through) and the server binary itself
(``httpd``, ``/usr/sbin/apache2``) understand. Bindings with the same command line share one activation. A failed
test is reason "config" with Apache's message; a failed graceful restart is reason "reload".

``apachectl -t`` does not load the certificates, and Apache stops when a graceful restart finds a key that does not
match its certificate; so the target refuses to write such a pair (see ``files.py``). For the same reason,
``remove`` puts the files back when the configuration test fails without them. Note that ``-k graceful`` starts an
Apache that is not running.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certsmith.domain.errors import ValidationError

from .base import Activation, DeployError, TargetPlugin
from .files import FolderOptions, FolderTarget, run_command, split_command

__all__ = ["PLUGIN", "ApacheOptions", "ApacheTarget"]

# a file ``-t -D DUMP_INCLUDES`` lists ("  (*) /etc/apache2/apache2.conf", "    (146) /etc/apache2/mods-enabled/...")
_INCLUDED = re.compile(r"^\s*\((?:\*|\d+)\)\s+(/.*?)\s*$", re.M)
# an SSLCertificateFile or SSLCertificateKeyFile directive, and the path it names
_CERTIFICATE_LINE = re.compile(r"""^\s*SSLCertificate(?:Key)?File\s+("[^"]*"|'[^']*'|\S+)""", re.M | re.I)


@dataclass(frozen=True, slots=True)
class ApacheOptions(FolderOptions):
    """The folder's options, and how to reach the server: the control command (with any arguments), -d and -f."""

    apachectl: str = "apachectl"  # or "/usr/sbin/apache2", "httpd", "apachectl -D SSL"
    config: str | None = None  # -f: the configuration file
    server_root: str | None = None  # -d: the server root

    def __post_init__(self) -> None:
        FolderOptions.__post_init__(self)
        split_command("apachectl", self.apachectl)
        for name in ("config", "server_root"):
            value = getattr(self, name)
            if value is not None and not os.path.isabs(value):
                raise ValidationError(f"option {name!r} must be an absolute path, not {value!r}", field=name)


class ApacheTarget(FolderTarget):
    """A folder Apache reads its certificate from; activation tests the configuration and restarts gracefully."""

    kind = "apache"
    options: ApacheOptions

    def __init__(self, options: ApacheOptions) -> None:
        super().__init__(options)

    def command(self, *args: str) -> list[str]:
        """The control command line with this target's server root and configuration."""
        words = split_command("apachectl", self.options.apachectl)
        if self.options.server_root is not None:
            words += ["-d", self.options.server_root]
        if self.options.config is not None:
            words += ["-f", self.options.config]
        return [*words, *args]

    def server(self) -> str:
        return f"apache {self.options.config or '(default configuration)'}"

    def check(self) -> None:
        super().check()
        if self.options.config is not None and not os.path.isfile(self.options.config):
            raise DeployError(self.server(), f"the configuration file {self.options.config} does not exist", reason="config")
        run_command(self.server(), self.command("-v"), what="apachectl -v", reason="missing", timeout=self.options.timeout)
        self.check_reads_folder()

    def check_reads_folder(self) -> None:
        """DeployError "config" when the configuration files ``-t -D DUMP_INCLUDES`` lists name no certificate in
        the folder. Nothing is said when the test fails or a file cannot be read (the first deployment reports it)."""
        try:
            dump = run_command(self.server(), self.command("-t", "-D", "DUMP_INCLUDES"), what="apachectl -t -D DUMP_INCLUDES",
                               reason="config", timeout=self.options.timeout)
        except DeployError:
            return
        paths: list[str] = []
        for name in _INCLUDED.findall(dump):
            try:
                text = Path(name).read_text(errors="replace")
            except OSError:
                return
            paths += _CERTIFICATE_LINE.findall(text)
        if _INCLUDED.search(dump) and self.read_by(paths) is False:
            folder, config = self.folder, self.options.config or "Apache's default"
            raise DeployError(self.server(), f"Apache's configuration ({config}) reads no certificate from {folder}: add "
                              f"`SSLCertificateFile {folder}/fullchain.pem` and `SSLCertificateKeyFile {folder}/privkey.pem` "
                              "to the virtual host, or name another Apache with --option config=... --option "
                              "server_root=...", reason="config")

    def remove(self) -> None:
        """Delete the files unless the configuration still reads them (then they are put back: DeployError "config")."""
        self.remove_tested(self.server(), self.command("-t"), "the configuration test (apachectl -t)",
                           self.options.config or "Apache's configuration")

    def activation(self) -> Activation | None:
        test, graceful = self.command("-t"), self.command("-k", "graceful")
        server, timeout = self.server(), self.options.timeout

        def run() -> None:
            run_command(server, test, what="the configuration test (apachectl -t)", reason="config", timeout=timeout)
            run_command(server, graceful, what="the graceful restart (apachectl -k graceful)", reason="reload",
                        timeout=timeout)

        return Activation(key="apache " + shlex.join(self.command()), run=run,
                          description=f"{shlex.join(test)}, then {shlex.join(graceful)}")


def _factory(options: Any, state: Mapping[str, Any]) -> ApacheTarget:
    assert isinstance(options, ApacheOptions)
    return ApacheTarget(options)


def _programs(options: Any) -> tuple[str, ...]:
    """The control command as the option spells it (it runs -v, -t and -k graceful)."""
    assert isinstance(options, ApacheOptions)
    return (options.apachectl,)


PLUGIN = TargetPlugin(
    kind="apache",
    description="certbot's four files in a folder Apache reads, then apachectl -t and apachectl -k graceful",
    options_type=ApacheOptions,
    secret_fields=(),
    factory=_factory,
    programs=_programs,
)
