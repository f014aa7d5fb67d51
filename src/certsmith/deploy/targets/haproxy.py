"""The ``haproxy`` target: the folder's four files plus the crt file HAProxy loads, swapped in through its runtime API.

The crt file (``crt_name`` in the folder, ``haproxy.pem`` unless set) holds the certificate, its chain and the key,
as ``bind ... ssl crt <path>/haproxy.pem`` wants it. With ``socket`` (the admin socket: ``stats socket <file> level
admin``) an install writes the files, then ``set ssl cert`` + ``commit ssl cert`` give the running workers the new
certificate at once, without a reload; HAProxy's refusal (a key that does not fit, a file its configuration does not
name) is reason "refused" with HAProxy's words, and the files are put back. The runtime API changes memory only, which
is why the file is written too: a later reload reads it.

Without ``socket`` the activation reloads HAProxy through its master CLI (``master_socket``: ``haproxy -W -S <file>``)
or runs ``reload_command``. Removing a binding deletes the files; HAProxy keeps the certificate in memory until its
configuration no longer names the file.
"""

from __future__ import annotations

import os
import re
import socket as sockets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsmith.domain.errors import ValidationError

from .atomic import FileSpec, remove_files, write_files
from .base import Activation, DeployError, Held, Installed, Material, TargetPlugin, serial_text
from .files import FILE_NAMES, FolderOptions, FolderTarget, run_command, split_command

__all__ = ["PLUGIN", "HaproxyOptions", "HaproxyTarget", "haproxy_command"]

_UNSAFE = re.compile(r"[\s;\\\"'#]")
_TRANSACTION = re.compile(r"^Transaction (?:created|updated) for certificate (\S+)!", re.M)
_ONGOING = re.compile(r"^# transaction\n\*(\S+)", re.M)
_SERIAL = re.compile(r"^Serial: ([0-9A-Fa-f]+)\s*$", re.M)
_PROC_MASTER = re.compile(r"^\d+\s+master\s+(\d+)(?:\s+\[failed: (\d+)\])?", re.M)  # "failed" from 2.6
_PRIVATE_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def haproxy_command(path: str, line: str, payload: str | None = None, *, timeout: float = 10.0) -> str:
    """One command on an HAProxy CLI socket (admin or master) and its whole answer; OSError when it cannot be asked.

    A payload is sent as HAProxy wants it (``<command> <<``, the lines, then an empty line): it must have no empty
    line of its own.
    """
    message = line + (" <<\n" + payload.strip("\n") + "\n\n" if payload is not None else "\n")
    with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(message.encode())
        sock.shutdown(sockets.SHUT_WR)  # the master CLI answers and closes only once the request has ended
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _lock(path: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _words(answer: str) -> str:
    """HAProxy's answer on one line, without any key material."""
    text = _PRIVATE_PEM.sub("[private key removed]", answer)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())[:500] or "(no answer)"


def _pem_lines(text: str) -> str:
    """PEM text without empty lines (an empty line ends a runtime API payload) or carriage returns."""
    return "\n".join(line for line in text.replace("\r", "").splitlines() if line.strip()) + "\n"


@dataclass(frozen=True, slots=True)
class HaproxyOptions(FolderOptions):
    """The folder's options, the crt file's name, and how HAProxy takes the new certificate."""

    crt_name: str = "haproxy.pem"  # the file in the folder that a bind line names with ``crt``
    socket: str | None = None  # the admin socket (stats socket ... level admin): update without a reload
    master_socket: str | None = None  # without socket: reload through the master CLI (haproxy -W -S <file>)
    reload_command: str | None = None  # without either socket: run with sh -c, e.g. "systemctl reload haproxy"

    def __post_init__(self) -> None:
        FolderOptions.__post_init__(self)
        if "/" in self.crt_name or self.crt_name in (".", "..") or self.crt_name in FILE_NAMES:
            raise ValidationError(f"option 'crt_name' must be a file name in the folder other than "
                                  f"{', '.join(FILE_NAMES)}, not {self.crt_name!r}", field="crt_name")
        if _UNSAFE.search(os.path.join(self.path, self.crt_name)):
            raise ValidationError("options 'path' and 'crt_name' must not contain spaces, semicolons, quotes, hashes or "
                                  "backslashes (HAProxy's command line could not name the file)", field="crt_name")
        for name in ("socket", "master_socket"):
            value = getattr(self, name)
            if value is not None and not os.path.isabs(value):
                raise ValidationError(f"option {name!r} must be the absolute path of a UNIX socket, not {value!r}",
                                      field=name)
        if self.reload_command is not None:
            split_command("reload_command", self.reload_command)
        if self.socket is None and self.master_socket is None and self.reload_command is None:
            raise ValidationError("haproxy needs option 'socket' (the admin socket: the certificate is swapped without "
                                  "a reload), or else 'master_socket' or 'reload_command' to reload HAProxy",
                                  field="socket")


class HaproxyTarget(FolderTarget):
    """A crt file HAProxy serves, with the four files beside it; swapped live through the admin socket."""

    kind = "haproxy"
    options: HaproxyOptions

    def __init__(self, options: HaproxyOptions) -> None:
        super().__init__(options)
        self.crt = self.folder / options.crt_name
        self._ref: str | None = None

    def describe(self) -> str:
        return f"haproxy {self.crt}"

    # -- talking to HAProxy

    def _ask(self, path: str, line: str, payload: str | None = None) -> str:
        try:
            answer = haproxy_command(path, line, payload, timeout=self.options.timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            raise DeployError(self.describe(), f"HAProxy is not listening on {path} (is it running, with that socket "
                              "in its configuration?)", reason="unreachable") from None
        except PermissionError:
            raise DeployError(self.describe(), f"not allowed to use HAProxy's socket {path} (permission denied)",
                              reason="credentials") from None
        except TimeoutError:
            raise DeployError(self.describe(), f"HAProxy did not answer on {path} within {self.options.timeout:g} s",
                              reason="unreachable") from None
        except OSError as exc:
            raise DeployError(self.describe(), f"cannot talk to HAProxy on {path}: {exc.strerror or exc}",
                              reason="unreachable") from None
        if answer.lstrip().startswith("Permission denied"):
            raise DeployError(self.describe(), f"HAProxy's socket {path} refuses certificate updates: give it "
                              "'level admin'", reason="credentials")
        return answer

    def _admin(self, line: str, payload: str | None = None) -> str:
        assert self.options.socket is not None
        return self._ask(self.options.socket, line, payload)

    def _reference(self) -> str:
        """The name HAProxy knows the crt file by (the path as its configuration spells it)."""
        if self._ref is not None:
            return self._ref
        listing = self._admin("show ssl cert")
        names = [line.strip() for line in listing.splitlines() if line.strip() and not line.startswith(("#", "*"))]
        wanted = str(self.crt)
        found = wanted if wanted in names else None
        for name in names if found is None else ():
            try:
                if os.path.samefile(name, wanted):
                    found = name
                    break
            except OSError:
                continue
        if found is None:
            raise DeployError(self.describe(), f"HAProxy does not load {wanted}: name it in a bind line "
                              f"(bind ... ssl crt {wanted}) and reload HAProxy once", reason="config")
        self._ref = found
        return found

    def _wait_for_other_transactions(self, ref: str) -> None:
        """HAProxy holds one certificate transaction at a time: abort a stale one of ours, wait for another's."""
        deadline = time.monotonic() + self.options.timeout
        while True:
            ongoing = _ONGOING.search(self._admin("show ssl cert"))
            if ongoing is None:
                return
            if ongoing.group(1) == ref:
                self._admin(f"abort ssl cert {ref}")
                continue
            if time.monotonic() > deadline:
                raise DeployError(self.describe(), f"HAProxy is in the middle of another certificate update "
                                  f"({ongoing.group(1)}) for more than {self.options.timeout:g} s", reason="unreachable")
            time.sleep(0.05)

    def _swap(self, ref: str, payload: str) -> None:
        """set ssl cert + commit ssl cert; DeployError "refused" with HAProxy's words (its transaction aborted)."""
        self._wait_for_other_transactions(ref)
        answer = self._admin(f"set ssl cert {ref}", payload)
        opened = _TRANSACTION.search(answer)
        if opened is None or opened.group(1) != ref:
            if opened is not None:  # HAProxy added the payload to another update under way: undo that
                self._admin(f"abort ssl cert {opened.group(1)}")
            elif _ONGOING.search(self._admin("show ssl cert")):
                self._admin(f"abort ssl cert {ref}")
            raise DeployError(self.describe(), f"HAProxy refused the certificate: {_words(answer)}", reason="refused")
        answer = self._admin(f"commit ssl cert {ref}")
        if "Success!" not in answer:
            self._admin(f"abort ssl cert {ref}")
            raise DeployError(self.describe(), f"HAProxy refused the certificate: {_words(answer)}", reason="refused")

    # -- the target

    def check(self) -> None:
        super().check()
        if self.options.socket is not None:
            self._reference()
        elif self.options.master_socket is not None:
            self._ask(self.options.master_socket, "show proc")

    def payload(self, material: Material) -> str:
        """What the crt file holds: the certificate, its chain and the key."""
        return _pem_lines(material.fullchain_pem + material.private_key_pem)

    def files(self, material: Material) -> dict[str, FileSpec]:
        files = super().files(material)
        files[self.options.crt_name] = FileSpec(self.payload(material).encode(), int(self.options.key_mode, 8))
        return files

    def install(self, material: Material) -> Installed:
        if self.options.socket is None:
            _check_pair(self.describe(), material)  # nothing checks it before the reload
            undo_files = write_files(self.describe(), self.folder, self.files(material), owner=self.options.owner,
                                     group=self.options.group)
            return Installed(undo=undo_files, state={})
        with _lock(self.options.socket):
            ref = self._reference()  # HAProxy is reachable and loads the file, before anything is written
            before = _read_text(self.crt)
            undo_files = write_files(self.describe(), self.folder, self.files(material), owner=self.options.owner,
                                     group=self.options.group)
            try:
                self._swap(ref, self.payload(material))
            except BaseException:
                undo_files()
                raise

        def undo() -> None:
            assert self.options.socket is not None
            with _lock(self.options.socket):
                undo_files()
                if before is not None:
                    self._swap(ref, _pem_lines(before))

        return Installed(undo=undo, state={})

    def activation(self) -> Activation | None:
        if self.options.socket is not None:
            return None
        if self.options.master_socket is not None:
            master = self.options.master_socket
            return Activation(key=f"haproxy master {master}", run=lambda: self._master_reload(master),
                              description=f"reload HAProxy through its master CLI {master}")
        command = self.options.reload_command
        assert command is not None
        timeout = self.options.timeout

        def run() -> None:
            run_command(f"reload command {command!r}", ["sh", "-c", command], what=f"the reload command {command!r}",
                        reason="reload", timeout=timeout)

        return Activation(key=f"command {command} (in /)", run=run, description=f"run {command} in /")

    def _master_reload(self, master: str) -> None:
        """``reload`` on the master CLI; returns once the master has reloaded, DeployError "reload" if that failed."""
        server = f"haproxy master {master}"
        counts = _PROC_MASTER.search(self._ask(master, "show proc"))
        if counts is None:
            raise DeployError(server, f"{master} is not HAProxy's master CLI (show proc lists no master)", reason="config")
        before = int(counts.group(1))
        try:
            self._ask(master, "reload")
        except DeployError as exc:
            if exc.reason != "unreachable":
                raise
        deadline = time.monotonic() + self.options.timeout
        while True:
            try:
                counts = _PROC_MASTER.search(self._ask(master, "show proc"))
            except DeployError as exc:
                if exc.reason != "unreachable":
                    raise
                counts = None  # the master is executing itself again
            if counts is not None and int(counts.group(1)) > before:
                if int(counts.group(2) or 0):
                    raise DeployError(server, "HAProxy could not load its configuration and certificates again (a "
                                      "failed reload; its log says why); it goes on serving what it had", reason="reload")
                return
            if time.monotonic() > deadline:
                raise DeployError(server, f"HAProxy's master did not reload within {self.options.timeout:g} s",
                                  reason="reload")
            time.sleep(0.05)

    def held(self) -> Held:
        detail: dict[str, Any] = {"path": str(self.crt)}
        text = _read_text(self.crt)
        if text is None:
            return Held(None, detail)
        file_serial = _first_serial(text)
        detail["file_serial"] = file_serial
        if self.options.socket is not None:
            try:
                served = _SERIAL.search(self._admin(f"show ssl cert {self._reference()}"))
            except DeployError as exc:
                detail["haproxy"] = exc.problem
            else:
                if served is not None:
                    detail["served_serial"] = serial_text(int(served.group(1), 16))
                    return Held(detail["served_serial"], detail)
        return Held(file_serial, detail)

    def remove(self) -> None:
        remove_files(self.describe(), self.folder, (*FILE_NAMES, self.options.crt_name))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _first_serial(text: str) -> str | None:
    try:
        return serial_text(x509.load_pem_x509_certificate(text.encode()).serial_number)
    except ValueError:
        return None


def _check_pair(target: str, material: Material) -> None:
    """DeployError "refused" unless the key and the certificate belong together (HAProxy would refuse the reload)."""
    try:
        leaf = x509.load_pem_x509_certificate(material.certificate_pem.encode())
        key = serialization.load_pem_private_key(material.private_key_pem.encode(), password=None)
    except ValueError:
        raise DeployError(target, f"the certificate or the key of {material} cannot be read; nothing was written",
                          reason="refused") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise DeployError(target, f"the key of {material} does not match its certificate; nothing was written",
                          reason="refused")


def _factory(options: Any, state: Mapping[str, Any]) -> HaproxyTarget:
    assert isinstance(options, HaproxyOptions)
    return HaproxyTarget(options)


def _programs(options: Any) -> tuple[str, ...]:
    """The reload command whenever it is set (the admin and master sockets are talked to, not run)."""
    assert isinstance(options, HaproxyOptions)
    return (options.reload_command,) if options.reload_command is not None else ()


PLUGIN = TargetPlugin(
    kind="haproxy",
    description="a crt file (certificate, chain and key) HAProxy serves, swapped through its runtime API or reloaded",
    options_type=HaproxyOptions,
    secret_fields=(),
    factory=_factory,
    programs=_programs,
)
