"""The ``nginx`` target: certbot's four files in a folder (see ``files.py``), then ``nginx -t`` and ``nginx -s reload``.

Point the server block at the folder (``ssl_certificate <path>/fullchain.pem; ssl_certificate_key
<path>/privkey.pem;``). Several certificates served by one nginx (by SNI) are several bindings, one folder each,
with the same ``nginx``/``prefix``/``config``: they share one activation, so a run tests and reloads once. A failed
test is reason "config" with nginx's own message (the runner then puts the old files back); a failed reload is
reason "reload". ``remove`` deletes the files only when ``nginx -t`` passes without them (else they are put back).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from certsmith.domain.errors import ValidationError

from .base import Activation, DeployError, TargetPlugin
from .files import FolderOptions, FolderTarget, run_command, split_command

__all__ = ["PLUGIN", "NginxOptions", "NginxTarget"]


@dataclass(frozen=True, slots=True)
class NginxOptions(FolderOptions):
    """The folder's options, and how to reach the server: the binary (with any extra arguments), -p and -c."""

    nginx: str = "nginx"  # the binary, e.g. "/usr/sbin/nginx" or "nginx -e stderr"
    config: str | None = None  # -c: the configuration file (nginx's default when not given)
    prefix: str | None = None  # -p: the prefix path

    def __post_init__(self) -> None:
        FolderOptions.__post_init__(self)
        split_command("nginx", self.nginx)
        for name in ("config", "prefix"):
            value = getattr(self, name)
            if value is not None and not os.path.isabs(value):
                raise ValidationError(f"option {name!r} must be an absolute path, not {value!r}", field=name)


# what ``nginx -s reload`` says when no master process is there to signal (no pid file, an empty one, a stale pid)
# an ssl_certificate or ssl_certificate_key directive of ``nginx -T``'s dump, and the path it names
_CERTIFICATE_LINE = re.compile(r"""(?:^|[;{}])\s*ssl_certificate(?:_key)?\s+("[^"]*"|'[^']*'|[^\s;]+)""", re.M)
_NOT_RUNNING = re.compile(r'open\(\) "[^"]*" failed \(2: |invalid PID number|kill\(\d+, \d+\) failed \(3: ')


class NginxTarget(FolderTarget):
    """A folder nginx reads its certificate from; activation tests the configuration and reloads."""

    kind = "nginx"
    options: NginxOptions

    def __init__(self, options: NginxOptions) -> None:
        super().__init__(options)

    def command(self, *args: str) -> list[str]:
        """The nginx command line with this target's binary, prefix and configuration."""
        words = split_command("nginx", self.options.nginx)
        if self.options.prefix is not None:
            words += ["-p", self.options.prefix]
        if self.options.config is not None:
            words += ["-c", self.options.config]
        return [*words, *args]

    def server(self) -> str:
        return f"nginx {self.options.config or '(default configuration)'}"

    def check(self) -> None:
        super().check()
        if self.options.config is not None and not os.path.isfile(self.options.config):
            raise DeployError(self.server(), f"the configuration file {self.options.config} does not exist", reason="config")
        run_command(self.server(), self.command("-v"), what="nginx -v", reason="missing", timeout=self.options.timeout)
        self.check_reads_folder()

    def check_reads_folder(self) -> None:
        """DeployError "config" when ``nginx -T`` works and its configuration reads no certificate from the folder.

        When the test fails (the files are not there yet, say) nothing is said: the first deployment reports it."""
        try:
            dump = run_command(self.server(), self.command("-T"), what="nginx -T", reason="config",
                               timeout=self.options.timeout)
        except DeployError:
            return
        text = "\n".join(line.split("#", 1)[0] for line in dump.splitlines())
        if self.read_by(match.group(1) for match in _CERTIFICATE_LINE.finditer(text)) is False:
            folder, config = self.folder, self.options.config or "nginx's default"
            raise DeployError(self.server(), f"nginx's configuration ({config}) reads no certificate from {folder}: add "
                              f"`ssl_certificate {folder}/fullchain.pem; ssl_certificate_key {folder}/privkey.pem;` to "
                              "the server block, or name another nginx with --option config=... --option prefix=...",
                              reason="config")

    def remove(self) -> None:
        """Delete the files unless the configuration still reads them (then they are put back: DeployError "config")."""
        self.remove_tested(self.server(), self.command("-t"), "the configuration test (nginx -t)",
                           self.options.config or "nginx's configuration")

    def activation(self) -> Activation | None:
        test, reload = self.command("-t"), self.command("-s", "reload")
        server, timeout = self.server(), self.options.timeout

        def run() -> None:
            run_command(server, test, what="the configuration test (nginx -t)", reason="config", timeout=timeout)
            try:
                run_command(server, reload, what="nginx -s reload", reason="reload", timeout=timeout)
            except DeployError as error:
                if not _NOT_RUNNING.search(error.problem):
                    raise
                # a server that is down is a target away, not a broken one: the deployment is tried again later
                raise DeployError(server, f"nginx is not running: {error.problem}", reason="unreachable") from None

        return Activation(key="nginx " + shlex.join(self.command()), run=run,
                          description=f"{shlex.join(test)}, then {shlex.join(reload)}")


def _factory(options: Any, state: Mapping[str, Any]) -> NginxTarget:
    assert isinstance(options, NginxOptions)
    return NginxTarget(options)


def _programs(options: Any) -> tuple[str, ...]:
    """The nginx command as the option spells it (it runs -v, -t and -s reload)."""
    assert isinstance(options, NginxOptions)
    return (options.nginx,)


PLUGIN = TargetPlugin(
    kind="nginx",
    description="certbot's four files in a folder nginx reads, then nginx -t and nginx -s reload",
    options_type=NginxOptions,
    secret_fields=(),
    factory=_factory,
    programs=_programs,
)
