"""Command targets: a shell command run on the worker's host with the event's JSON on its standard input.

A command runs as the server's user, so whoever may create targets may run anything that user may: the
server runs them only with the setting ``event_commands`` on (``CERTSMITH_EVENT_COMMANDS=true``). The command
gets a small environment (PATH, HOME, locale, time zone and the ``CERTSMITH_EVENT_*`` variables), never the
server's own (which may hold the master key), and runs in ``/`` in a process group of its own, all of which
is stopped at the timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from .common import DeliveryFailed, body_of, check_common, check_number, keys_of, no_secret, shown

__all__ = ["COMMANDS_OFF", "PASSED_ENV", "STDERR_SHOWN", "check_command", "command_env", "run_command"]

COMMANDS_OFF = ("command targets are turned off on this server; its administrator can allow them with the setting "
                "event_commands (CERTSMITH_EVENT_COMMANDS=true)")
TIMEOUT_RANGE = (1, 3600)
MAX_LENGTH = 8192
STDERR_SHOWN = 300  # the last characters of the command's standard error a failure shows
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def check_command(config: Mapping[str, Any], secret: str | None) -> tuple[dict[str, Any], str | None]:
    """``{"command": str, "timeout_seconds"?}``; no secret."""
    given = keys_of("command", config, ("command", "timeout_seconds"))
    no_secret("command", secret)
    command = given.get("command")
    if command is None or (isinstance(command, str) and not command.strip()):
        raise ValueError("Command.Command: must not be empty")
    if not isinstance(command, str):
        raise ValueError(f"Command.Command: must be a string (run with /bin/sh -c), not {type(command).__name__}")
    if len(command) > MAX_LENGTH:
        raise ValueError(f"Command.Command: must be at most {MAX_LENGTH} characters")
    if "\0" in command:
        raise ValueError("Command.Command: must not hold a NUL character")
    checked: dict[str, Any] = {"command": command}
    if given.get("timeout_seconds") is not None:
        checked["timeout_seconds"] = check_number("command", "timeout_seconds", given["timeout_seconds"], *TIMEOUT_RANGE,
                                                  whole=False)
    return checked | check_common("command", given), None


def command_env(envelope: Mapping[str, Any]) -> dict[str, str]:
    """The environment a command runs with."""
    env = {name: os.environ[name] for name in PASSED_ENV if os.environ.get(name)}
    env.setdefault("PATH", DEFAULT_PATH)
    resources = envelope.get("resources")
    env |= {
        "CERTSMITH_EVENT_ID": str(envelope.get("id") or ""),
        "CERTSMITH_EVENT_TYPE": str(envelope.get("detail-type") or ""),
        "CERTSMITH_EVENT_SOURCE": str(envelope.get("source") or ""),
        "CERTSMITH_EVENT_TIME": str(envelope.get("time") or ""),
        "CERTSMITH_ACCOUNT": str(envelope.get("account") or ""),
        "CERTSMITH_REGION": str(envelope.get("region") or ""),
        "CERTSMITH_RESOURCES": " ".join(str(r) for r in resources) if isinstance(resources, list) else "",
    }
    return {key: value.replace("\0", "") for key, value in env.items()}


def run_command(config: Mapping[str, Any], envelope: Mapping[str, Any], timeout: float) -> None:
    """Run the command; exit 0 is done, anything else (a non-zero exit, the timeout) is a retryable failure."""
    wait = float(config.get("timeout_seconds") or timeout)
    try:
        process = subprocess.Popen(["/bin/sh", "-c", str(config["command"])], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=command_env(envelope), cwd="/",
                                   start_new_session=True, close_fds=True)
    except OSError as error:
        raise DeliveryFailed(f"command: cannot start /bin/sh ({error.strerror or error})", retryable=False) from None
    try:
        _, stderr = process.communicate(body_of(envelope), timeout=wait)
    except subprocess.TimeoutExpired:
        stderr = _stop(process)
        raise DeliveryFailed(_said(f"command: did not finish within {wait:g} s and was stopped", stderr),
                             retryable=True) from None
    code = process.returncode
    if code == 0:
        return
    if code < 0:
        raise DeliveryFailed(_said(f"command: killed by signal {-code}", stderr), retryable=True)
    raise DeliveryFailed(_said(f"command: exited with {code}", stderr), retryable=True)


def _stop(process: subprocess.Popen[bytes]) -> bytes:
    """Kill the command's whole process group; what it wrote to standard error so far."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    try:
        _, stderr = process.communicate(timeout=2)
    except subprocess.TimeoutExpired:  # something left the group and still holds the pipe
        for stream in (process.stdin, process.stderr):
            if stream is not None:
                stream.close()
        process.wait()
        return b""
    return stderr or b""


def _said(what: str, stderr: bytes | None) -> str:
    text = shown((stderr or b"").decode("utf-8", "replace"), STDERR_SHOWN, tail=True)
    return f"{what}: {text}" if text else what
