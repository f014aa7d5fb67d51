"""agent.toml: where the server is, the agent's key, how long a poll waits, where the agent keeps its state."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["AgentConfig", "ConfigError", "load_config"]

_KNOWN = frozenset({"endpoint", "region", "access_key_id", "secret_access_key", "credentials_file", "wait_seconds",
                    "state_dir", "ca_bundle", "max_backoff_seconds", "verify_seconds"})


class ConfigError(ValueError):
    """agent.toml is missing, unreadable or has a wrong field; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    endpoint: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    state_dir: Path
    region: str = "us-east-1"
    wait_seconds: int = 20  # how long one poll waits for work on the server (0 to 60)
    ca_bundle: Path | None = None  # PEM CAs to trust for an https endpoint, instead of the system's
    max_backoff_seconds: float = 60.0  # the longest wait between tries while the server cannot be reached
    verify_seconds: float = 15.0  # how long the local check may wait for the endpoint to serve the new serial


def _read_credentials(path: Path, where: str) -> tuple[str, str]:
    """(access key id, secret) from the [default] section of an AWS shared-credentials file."""
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{where}: credentials_file {path} cannot be read: {exc.strerror}") from None
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[", ";")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), value.strip())
    if not values.get("aws_access_key_id") or not values.get("aws_secret_access_key"):
        raise ConfigError(f"{where}: credentials_file {path} needs aws_access_key_id and aws_secret_access_key")
    return values["aws_access_key_id"], values["aws_secret_access_key"]


def _text(raw: dict[str, Any], name: str, where: str, default: str | None = None) -> str | None:
    value = raw.get(name, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{where}: {name} must be a non-empty string")
    return value.strip() if isinstance(value, str) else None


def _number(raw: dict[str, Any], name: str, where: str, default: float, low: float, high: float) -> float:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{where}: {name} must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


def load_config(path: Path) -> AgentConfig:
    """The agent's settings from ``path``; ConfigError naming the field for anything wrong."""
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(_KNOWN))}")
    endpoint = _text(raw, "endpoint", where)
    parts = urlsplit(endpoint or "")
    if endpoint is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: endpoint must be the server's http:// or https:// URL, not {endpoint!r}")
    state_dir = _text(raw, "state_dir", where)
    if state_dir is None:
        raise ConfigError(f"{where}: state_dir is required (a folder the agent keeps what it deployed in)")
    base = path.parent
    credentials = _text(raw, "credentials_file", where)
    key_id, secret = _text(raw, "access_key_id", where), _text(raw, "secret_access_key", where)
    if credentials is not None:
        if key_id or secret:
            raise ConfigError(f"{where}: give either credentials_file or access_key_id and secret_access_key, not both")
        key_id, secret = _read_credentials(base / credentials, where)
    elif not key_id or not secret:
        raise ConfigError(f"{where}: access_key_id and secret_access_key (or credentials_file) are required: "
                          "CreateAgent (certsmith deploy agent create) returns them")
    bundle = _text(raw, "ca_bundle", where)
    if bundle is not None and not (base / bundle).is_file():
        raise ConfigError(f"{where}: ca_bundle {base / bundle} is not a file")
    wait = _number(raw, "wait_seconds", where, 20, 0, 60)
    if wait != int(wait):
        raise ConfigError(f"{where}: wait_seconds must be a whole number of seconds, not {wait:g}")
    return AgentConfig(endpoint=endpoint.rstrip("/"), access_key_id=key_id, secret_access_key=secret,
                       state_dir=base / state_dir, region=_text(raw, "region", where, "us-east-1") or "us-east-1",
                       wait_seconds=int(wait), ca_bundle=base / bundle if bundle else None,
                       max_backoff_seconds=_number(raw, "max_backoff_seconds", where, 60, 1, 3600),
                       verify_seconds=_number(raw, "verify_seconds", where, 15, 0, 600))
