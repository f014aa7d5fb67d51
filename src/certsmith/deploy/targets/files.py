"""The ``files`` target: a certificate written into a folder under certbot's names, then an optional reload command.

The folder gets ``cert.pem`` (the leaf), ``chain.pem`` (the intermediates), ``fullchain.pem`` (both) and
``privkey.pem`` (the key, PKCS#8 PEM, mode ``key_mode``: octal text, "600" unless set, never readable by others),
written all or nothing (see ``atomic.py``). The reload command runs with ``sh -c`` in ``reload_cwd`` (default
``/``) with a clean environment (PATH and HOME only, C locale); bindings with the same command and folder to run it
in share one run. The nginx and apache targets are this target with their server's test and reload as activation.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsmith.domain.errors import ValidationError

from .atomic import (  # the two private ones: what write_files' undo uses, so a removal is undone the same way
    FileSpec,
    check_folder,
    id_problem,
    remove_files,
    resolve_owner,
    write_files,
)
from .base import Activation, DeployError, Held, Installed, Material, TargetPlugin, serial_text

__all__ = ["FILE_NAMES", "PLUGIN", "FilesOptions", "FilesTarget", "FolderOptions", "FolderTarget", "clean_env", "run_command",
           "split_command"]

FILE_NAMES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")
CERT_MODE = 0o644
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PRIVATE_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_TAIL_LINES, _TAIL_CHARS = 15, 1500


@dataclass(frozen=True, slots=True)
class FolderOptions:
    """What every folder-writing target takes: the folder, who owns the files, the key's mode and a time limit."""

    path: str
    owner: str | None = None  # user name or uid; unchanged (the server's own) when not given
    group: str | None = None  # group name or gid
    key_mode: str = "600"  # octal, e.g. "640" for a group such as ssl-cert; other users never get access
    timeout: float = 60.0  # seconds for each command the activation runs

    def __post_init__(self) -> None:
        if not os.path.isabs(self.path):
            raise ValidationError(f"option 'path' must be an absolute folder path, not {self.path!r}", field="path")
        for name, what in (("owner", "user"), ("group", "group")):
            value = getattr(self, name)
            problem = None if value is None else id_problem(name, value, what)
            if problem is not None:
                raise ValidationError(problem, field=name)
        if not re.fullmatch(r"0?[0-7]{3}", self.key_mode):
            raise ValidationError(f"option 'key_mode' must be octal permission bits such as 600 or 640, not "
                                  f"{self.key_mode!r}", field="key_mode")
        if int(self.key_mode, 8) & 0o007:
            raise ValidationError(f"option 'key_mode' {self.key_mode} would let every user on the host read or change "
                                  "the private key; use 600 or 640", field="key_mode")
        if int(self.key_mode, 8) & 0o400 == 0:
            raise ValidationError(f"option 'key_mode' {self.key_mode} does not let the owner read the key", field="key_mode")
        if not 0 < self.timeout <= 3600:
            raise ValidationError("option 'timeout' must be a number of seconds from 0 to 3600", field="timeout")


@dataclass(frozen=True, slots=True)
class FilesOptions(FolderOptions):
    """The ``files`` target's options: the folder's, and a command to run once the files are in place."""

    reload_command: str | None = None  # run with sh -c, e.g. "systemctl reload postfix"
    reload_cwd: str = "/"

    def __post_init__(self) -> None:
        FolderOptions.__post_init__(self)
        if not os.path.isabs(self.reload_cwd):
            raise ValidationError(f"option 'reload_cwd' must be an absolute path, not {self.reload_cwd!r}",
                                  field="reload_cwd")


def _redacted(text: str) -> str:
    return _PRIVATE_PEM.sub("[private key removed]", text)


def _tail(output: str) -> str:
    lines = [line.rstrip() for line in _redacted(output).splitlines() if line.strip()]
    text = "\n".join(lines[-_TAIL_LINES:])
    return text[-_TAIL_CHARS:]


def clean_env() -> dict[str, str]:
    """The environment commands run with: PATH and HOME only, and the C locale so messages read the same anywhere."""
    return {"PATH": os.environ.get("PATH") or _DEFAULT_PATH, "HOME": os.environ.get("HOME") or "/", "LC_ALL": "C"}


def run_command(target: str, args: Sequence[str], *, what: str, reason: str, timeout: float, cwd: str = "/") -> str:
    """Run ``args`` (no shell unless they name one) in a session of its own; its output, or DeployError ``reason``
    with the output's tail. On timeout the whole session is killed."""
    try:
        process = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=cwd, env=clean_env(), text=True, errors="replace", start_new_session=True)
    except FileNotFoundError as exc:
        if exc.filename == cwd or not os.path.isdir(cwd):
            raise DeployError(target, f"{what}: the folder {cwd} does not exist", reason="config") from None
        raise DeployError(target, f"{what}: {args[0]} is not installed (not found)", reason="missing") from None
    except PermissionError as exc:
        raise DeployError(target, f"{what}: not allowed to run {args[0]} ({exc.strerror})", reason="refused") from None
    except OSError as exc:
        raise DeployError(target, f"{what}: cannot run {args[0]} ({exc.strerror})", reason=reason) from None
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        tail = _tail(output or "")
        raise DeployError(target, f"{what} did not finish within {timeout:g} s" + (f":\n{tail}" if tail else ""),
                          reason=reason) from None
    if process.returncode != 0:
        tail = _tail(output or "")
        code = process.returncode
        status = f"exit status {code}" if code > 0 else f"signal {-code}"
        raise DeployError(target, f"{what} failed ({status})" + (f":\n{tail}" if tail else " with no output"),
                          reason=reason)
    return output or ""


def split_command(name: str, text: str) -> list[str]:
    """A command line option split as a shell would (no expansion); ValidationError naming the option."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValidationError(f"option {name!r} cannot be read as a command line: {exc}", field=name) from None
    if not words:
        raise ValidationError(f"option {name!r} must name a program", field=name)
    return words


def _check_key_matches(target: str, material: Material) -> None:
    """DeployError "config" unless the key and the certificate belong together (a server would refuse to start)."""
    try:
        leaf = x509.load_pem_x509_certificate(material.certificate_pem.encode())
        key = serialization.load_pem_private_key(material.private_key_pem.encode(), password=None)
    except ValueError:
        raise DeployError(target, f"the certificate or the private key of {material} cannot be read; nothing was written",
                          reason="config") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise DeployError(target, f"the private key of {material} does not match its certificate; nothing was written",
                          reason="config")


class FolderTarget:
    """A folder that receives certbot's four files; subclasses name what makes them live."""

    kind = "files"

    def __init__(self, options: FolderOptions) -> None:
        self.options = options
        self.folder = Path(options.path)

    def describe(self) -> str:
        return f"{self.kind} {self.folder}"

    def check(self) -> None:
        resolve_owner(self.describe(), self.options.owner, self.options.group)
        check_folder(self.describe(), self.folder)

    def files(self, material: Material) -> dict[str, FileSpec]:
        """What is written, by name."""
        chain = material.chain_pem.strip()
        return {
            "cert.pem": FileSpec(material.certificate_pem.strip().encode() + b"\n", CERT_MODE),
            "chain.pem": FileSpec((chain + "\n").encode() if chain else b"", CERT_MODE),
            "fullchain.pem": FileSpec(material.fullchain_pem.encode(), CERT_MODE),
            "privkey.pem": FileSpec(material.private_key_pem.strip().encode() + b"\n", int(self.options.key_mode, 8)),
        }

    def install(self, material: Material) -> Installed:
        _check_key_matches(self.describe(), material)
        undo = write_files(self.describe(), self.folder, self.files(material), owner=self.options.owner,
                           group=self.options.group)
        return Installed(undo=undo, state={})

    def activation(self) -> Activation | None:
        return None

    def held(self) -> Held:
        path = self.folder / "cert.pem"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Held(None, {"path": str(path)})
        except OSError as exc:
            return Held(None, {"path": str(path), "problem": f"cannot read it: {exc.strerror}"})
        try:
            leaf = x509.load_pem_x509_certificate(data)
        except ValueError:
            return Held(None, {"path": str(path), "problem": "it holds no PEM certificate"})
        return Held(serial_text(leaf.serial_number), {"path": str(path), "not_after": leaf.not_valid_after_utc.isoformat(),
                                                      "subject": leaf.subject.rfc4514_string()})

    def remove(self) -> None:
        remove_files(self.describe(), self.folder, FILE_NAMES)

    def read_by(self, paths: Iterable[str]) -> bool | None:
        """Whether one of the certificate ``paths`` a server's configuration names is in this folder; None when that
        cannot be told (a path with a variable or a relative one)."""
        named = [path.strip("\"'") for path in paths]
        folder = os.path.normpath(self.folder)
        for path in named:
            parent = os.path.dirname(os.path.normpath(path))
            if parent == folder or (os.path.isabs(path) and os.path.realpath(parent) == os.path.realpath(folder)):
                return True
        if any("$" in path or not os.path.isabs(path) for path in named):
            return None
        return False

    def take_files(self) -> Callable[[], None]:
        """Delete the four files; returns the undo that puts them back exactly (content, mode, owner, links)."""
        return remove_files(self.describe(), self.folder, FILE_NAMES)

    def remove_tested(self, server: str, test: Sequence[str], what: str, config: str) -> None:
        """Delete the files, then run the server's configuration ``test``: when it fails, put them back exactly and
        raise DeployError "config" (the server would otherwise refuse its next start or reload)."""
        undo = self.take_files()
        try:
            run_command(server, test, what=what, reason="config", timeout=self.options.timeout)
        except DeployError as error:
            if error.reason == "missing":  # no server there to read the files: nothing to keep them for
                return
            undo()
            if str(self.folder) in error.problem:
                raise DeployError(server, f"the configuration still reads the files in {self.folder}, so they were put "
                                  f"back: edit {config} so it no longer reads {self.folder}/fullchain.pem, reload, then "
                                  f"remove again ({error.problem})", reason="config") from None
            raise DeployError(server, f"{error.problem}; the files in {self.folder} were put back", reason=error.reason) \
                from None


class FilesTarget(FolderTarget):
    """Certbot's four files in a folder, then the reload command, if any."""

    kind = "files"
    options: FilesOptions

    def __init__(self, options: FilesOptions) -> None:
        super().__init__(options)

    def activation(self) -> Activation | None:
        command = self.options.reload_command
        if command is None:
            return None
        cwd = self.options.reload_cwd
        what = f"the reload command {command!r}"
        timeout, target = self.options.timeout, self.kind  # the command is named once, in the problem

        def run() -> None:
            run_command(target, ["sh", "-c", command], what=what, reason="reload", timeout=timeout, cwd=cwd)

        return Activation(key=f"command {command} (in {cwd})", run=run, description=f"run {command} in {cwd}")


def _factory(options: Any, state: Mapping[str, Any]) -> FilesTarget:
    assert isinstance(options, FilesOptions)
    return FilesTarget(options)


def _programs(options: Any) -> tuple[str, ...]:
    """The reload command, when there is one (the files themselves are written by certsmith)."""
    assert isinstance(options, FilesOptions)
    return (options.reload_command,) if options.reload_command is not None else ()


PLUGIN = TargetPlugin(
    kind="files",
    description="cert.pem, chain.pem, fullchain.pem and privkey.pem written into a folder, then an optional reload command",
    options_type=FilesOptions,
    secret_fields=(),
    factory=_factory,
    programs=_programs,
)
