"""Write a set of files into one folder all or nothing, as far as POSIX allows, and put the old ones back on undo.

Every file is first written in full to a temporary file in the same folder (its mode set before any content goes
in, its owner and group set by name), flushed to disk, and only when all of them are ready are they renamed over
the old names one by one (``os.replace``, atomic per file); the folder is then flushed too. Until the renames
nothing has changed; a failure between two renames puts back the files already replaced. The previous contents,
modes and owners are kept in memory, so ``undo`` restores them exactly, or deletes files that did not exist.

A name that is a symbolic link is replaced by a regular file (the link itself, not what it points to).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .base import DeployError

__all__ = ["MAX_ID", "FileSpec", "check_folder", "id_problem", "remove_files", "resolve_owner", "write_files"]

_TEMP_PREFIX = ".certsmith-"
MAX_ID = 4294967294  # the largest user or group id; 4294967295 is (uid_t) -1, "leave unchanged"


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One file to write: its content and permission bits (owner and group are given for the whole set)."""

    content: bytes
    mode: int = 0o644


@dataclass(frozen=True, slots=True)
class _Previous:
    content: bytes
    mode: int
    uid: int
    gid: int
    link: str | None = None  # the target of a symbolic link (restored as the link itself)


def _numeric_id(value: str) -> int | None:
    """The id ``value`` spells in ASCII decimal digits (None when it is not all such digits), unbounded."""
    if not value or not all("0" <= c <= "9" for c in value):
        return None
    digits = value.lstrip("0") or "0"
    return int(digits) if len(digits) <= 10 else MAX_ID + 1  # int() of thousands of digits raises


def id_problem(option: str, value: str, what: str) -> str | None:
    """Why ``value`` of ``option`` is neither a ``what`` ("user", "group") name nor an id from 0 to MAX_ID, or None."""
    shown = repr(value) if len(value) <= 64 else repr(value[:64]) + "..."
    number = _numeric_id(value)
    if number is not None:
        return None if number <= MAX_ID else f"option {option!r} {shown} is not an id: ids go from 0 to {MAX_ID}"
    if value.isdigit():
        return f"option {option!r} must be a {what} name or an id in the digits 0-9, not {shown}"
    if not value.strip() or value != value.strip() or not value.isprintable() or ":" in value or "/" in value \
            or value[0] in "-+" or len(value) > 256:
        return f"option {option!r} must be a {what} name or an id from 0 to {MAX_ID}, not {shown}"
    return None


def _resolve_id(target: str, option: str, value: str, what: str) -> int:
    problem = id_problem(option, value, what)
    if problem is not None:
        raise DeployError(target, problem, reason="config")
    number = _numeric_id(value)
    if number is not None:
        return number
    try:
        return pwd.getpwnam(value).pw_uid if what == "user" else grp.getgrnam(value).gr_gid
    except (KeyError, ValueError):
        raise DeployError(target, f"the {option} {value!r} is not a {what} on this host", reason="config") from None


def resolve_owner(target: str, owner: str | None, group: str | None) -> tuple[int, int]:
    """(uid, gid) for user and group names or ASCII decimal ids; -1 for one not given.

    DeployError "config" naming the option for an unknown name or a value that is neither a name nor an id.
    """
    uid = -1 if owner is None else _resolve_id(target, "owner", owner, "user")
    gid = -1 if group is None else _resolve_id(target, "group", group, "group")
    return uid, gid


def check_folder(target: str, folder: Path) -> None:
    """DeployError "unwritable" naming ``folder`` unless it is a folder this process can create files in."""
    if not folder.is_absolute():
        raise DeployError(target, f"the path {str(folder)!r} must be absolute", reason="config")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DeployError(target, f"the folder {folder} {what}", reason="unwritable")
    probe = folder / f"{_TEMP_PREFIX}check-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise DeployError(target, f"cannot create files in the folder {folder}: {exc.strerror}", reason="unwritable") \
            from None
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _read_previous(target: str, path: Path) -> _Previous | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DeployError(target, f"cannot read {path}: {exc.strerror}", reason="unwritable") from None
    if stat.S_ISDIR(info.st_mode):
        raise DeployError(target, f"{path} is a folder, not a file", reason="unwritable")
    if stat.S_ISLNK(info.st_mode):
        return _Previous(b"", 0, info.st_uid, info.st_gid, link=os.readlink(path))
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise DeployError(target, f"cannot read {path}: {exc.strerror}", reason="unwritable") from None
    return _Previous(content, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)


def _write_temp(target: str, folder: Path, name: str, spec: FileSpec, uid: int, gid: int) -> Path:
    """The content in a new temporary file beside ``name``, mode and owner set first, flushed to disk."""
    temp = folder / f"{_TEMP_PREFIX}{secrets.token_hex(6)}-{name}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), spec.mode & 0o600)
    except OSError as exc:
        raise DeployError(target, f"cannot create files in the folder {folder}: {exc.strerror}", reason="unwritable") \
            from None
    try:
        try:
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
        except PermissionError:
            raise DeployError(target, f"not allowed to give {folder / name} its owner or group (uid {uid}, gid {gid})",
                              reason="refused") from None
        os.fchmod(fd, spec.mode)
        view = memoryview(spec.content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except DeployError:
        os.close(fd)
        _unlink(temp)
        raise
    except OSError as exc:
        os.close(fd)
        _unlink(temp)
        raise DeployError(target, f"cannot write {folder / name}: {exc.strerror}", reason="unwritable") from None
    os.close(fd)
    return temp


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _put(target: str, folder: Path, files: Mapping[str, tuple[FileSpec, int, int]]) -> None:
    """Write ``files`` (name -> spec, uid, gid) all or nothing."""
    previous = {name: _read_previous(target, folder / name) for name in files}
    temps: dict[str, Path] = {}
    try:
        for name, (spec, uid, gid) in files.items():
            temps[name] = _write_temp(target, folder, name, spec, uid, gid)
    except BaseException:
        for temp in temps.values():
            _unlink(temp)
        raise
    replaced: list[str] = []
    try:
        for name, temp in temps.items():
            os.replace(temp, folder / name)
            replaced.append(name)
    except OSError as exc:
        for temp in temps.values():
            _unlink(temp)
        _restore(target, folder, {name: previous[name] for name in replaced})
        raise DeployError(target, f"cannot replace {folder / name}: {exc.strerror}", reason="unwritable") from None
    _sync_folder(folder)


def _restore(target: str, folder: Path, previous: Mapping[str, _Previous | None]) -> None:
    """Put each file back as it was (deleting those that did not exist)."""
    present = {name: was for name, was in previous.items() if was is not None and was.link is None}
    for name, was in previous.items():
        if was is None:
            _unlink(folder / name)
        elif was.link is not None:
            temp = folder / f"{_TEMP_PREFIX}{secrets.token_hex(6)}-{name}"
            try:
                os.symlink(was.link, temp)
                os.replace(temp, folder / name)
            except OSError as exc:
                _unlink(temp)
                raise DeployError(target, f"cannot restore the link {folder / name}: {exc.strerror}",
                                  reason="unwritable") from None
    if present:
        _put(target, folder, {name: (FileSpec(was.content, was.mode), was.uid, was.gid) for name, was in present.items()})
    else:
        _sync_folder(folder)


def write_files(target: str, folder: Path, files: Mapping[str, FileSpec], *, owner: str | None = None,
                group: str | None = None) -> Callable[[], None]:
    """Write ``files`` (name -> spec) into ``folder`` all or nothing; returns the undo that restores the old files.

    ``target`` names the target in errors. Raises DeployError ("unwritable": the folder is missing or not writable,
    "refused": the owner or group cannot be given, "config": an unknown owner or group); nothing has changed then.
    """
    for name in files:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"a file name must be a plain name, not {name!r}")
    uid, gid = resolve_owner(target, owner, group)
    check_folder(target, folder)
    previous = {name: _read_previous(target, folder / name) for name in files}
    _put(target, folder, {name: (spec, uid, gid) for name, spec in files.items()})
    done = False

    def undo() -> None:
        nonlocal done
        if not done:
            _restore(target, folder, previous)
            done = True

    return undo


def remove_files(target: str, folder: Path, names: Iterable[str]) -> Callable[[], None]:
    """Delete the named files from ``folder`` (those that are not there are fine); DeployError "unwritable".
    Returns the undo that puts them back exactly (content, mode, owner, links)."""
    names = list(names)
    previous = {name: _read_previous(target, folder / name) for name in names}
    for name in names:
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DeployError(target, f"cannot delete {folder / name}: {exc.strerror}", reason="unwritable") from None
    _sync_folder(folder)
    return lambda: _restore(target, folder, previous)
