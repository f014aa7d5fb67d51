"""Settings: one typed object built at the entry point from defaults, a TOML file, CERTSMITH_* and flags."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["Settings", "load_settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the server, with its default.

    Two settings let API callers make the server run programs as its own user, so both are off by default:
    ``event_commands`` (event targets that run a command) and ``deploy_commands`` (deployment targets whose options
    name a program the server runs: a files target's ``reload_command``, the ``nginx`` or ``apachectl`` binary, a
    HAProxy reload command). With ``deploy_commands`` off such targets are deployed through an agent on their host.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./certsmith-data")
    database_url: str | None = None
    region: str = "us-east-1"
    public_url: str | None = None
    master_key: str | None = None
    worker: bool = True
    worker_threads: int = 1
    log_level: str = "info"
    key_pool_size: int = 16  # spare private keys kept ready per key algorithm; 0 turns the pool off
    tls_cert: Path | None = None  # PEM certificate (with its chain) to serve HTTPS with
    tls_key: Path | None = None  # its PEM private key
    tls: str = "off"  # "off", or "auto": a server certificate from certsmith's own internal root
    tls_check_seconds: float = 3600.0  # how often the server looks for a renewed (or, with auto, due) certificate
    access_log: bool = False  # one log line per request
    # Public certificates: the zone delegated to certsmith's DNS server, where it answers ACME DNS-01 challenges
    validation_zone: str | None = None
    dns_listen: str = "127.0.0.1:5300"  # HOST:PORT of that DNS server (UDP and TCP); port 53 in production
    resolvers: str = ""  # HOST[:PORT],... asked whether validation records are in place; empty: the system's
    validation_nameservers: str = ""  # host names of the zone's NS records (comma-separated); default ns.<zone>
    http_validation_port: int = 80  # the port certsmith checks a name's HTTP validation redirect on
    smtp_url: str | None = None  # smtp[s]://[USER:PASSWORD@]HOST[:PORT][?starttls=true]: where approval mails go out
    mail_from: str = "certsmith@localhost"  # the From of approval mails
    renewal_sweep_seconds: float = 30.0  # how often each worker looks for due renewals and expiry notices
    job_lease_seconds: float = 300.0  # a job a worker took is its own this long; then (the worker died) any takes it
    endpoint_probe_seconds: float = 30.0  # how often each worker looks for monitored endpoints due a probe
    event_commands: bool = False  # let event targets run shell commands as the server's user (any account may add one)
    event_delivery_seconds: float = 2.0  # how often each worker dispatches new events to rules and sends due deliveries
    event_retry_seconds: float = 10.0  # the first wait after a failed delivery; it doubles per attempt, up to 15 minutes
    metrics_token: str | None = None  # when set, GET /metrics wants "Authorization: Bearer <token>"
    metrics_certificate_series: int = 100000  # per-certificate series on /metrics at most (the soonest to expire)
    deploy_commands: bool = False  # let server-side deployment targets run programs (reload commands, nginx, apachectl)
    deploy_parallel: int = 16  # targets one deployment installs (and endpoints it verifies) at once
    deploy_verify_attempts: int = 5  # TLS handshakes after a deployment until the endpoint serves the new serial
    deploy_verify_delay_seconds: float = 2.0  # the wait between those handshakes
    deploy_attempts: int = 5  # runs of a deployment to a target that is unreachable before its item fails
    deploy_retry_seconds: float = 30.0  # the first wait before such a run; it doubles per run, up to an hour

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'certsmith.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert is not None or self.tls == "auto" else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(name: str, value: Any) -> Any:
    """The value as the setting's type; a ValueError naming the setting if it is not one."""
    kind = str({f.name: f.type for f in fields(Settings)}[name])
    if "Path" in kind:
        if not isinstance(value, str | Path):
            raise ValueError(f"setting {name} must be a path, not {value!r}")
        return Path(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"setting {name} must be true or false (or 1/0, yes/no, on/off), not {value!r}")
    if kind == "float":
        try:
            number = math.nan if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"setting {name} must be a number, not {value!r}")
        return number
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        try:
            whole = int(value) if isinstance(value, str) or (isinstance(value, float) and value.is_integer()) else None
        except ValueError:
            whole = None
        if whole is None:
            raise ValueError(f"setting {name} must be a whole number, not {value!r}")
        return whole
    return value


def _coerced(name: str, value: Any, origin: str) -> Any:
    try:
        return _coerce(name, value)
    except ValueError as exc:
        raise ValueError(f"{exc} (from {origin})") from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < TOML file (``[certsmith]`` table or top level) < CERTSMITH_* variables < explicit overrides."""
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    path = config_file or (Path(os.environ["CERTSMITH_CONFIG"]) if os.environ.get("CERTSMITH_CONFIG") else None)
    if path is not None:
        for key, value in _table(path).items():
            name = key.replace("-", "_")
            if name not in known:
                raise ValueError(f"{path}: unknown setting {key!r}")
            values[name] = _coerced(name, value, str(path))
    for name in known:
        variable = f"CERTSMITH_{name.upper()}"
        env = os.environ.get(variable)
        if env is not None:
            values[name] = _coerced(name, env, variable)
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value)
    return replace(Settings(), **values)


def _table(path: Path) -> dict[str, Any]:
    """The settings of a TOML file: its ``[certsmith]`` table, or its top level."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the settings file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid TOML file: {exc}") from None
    table = document.get("certsmith", document)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: 'certsmith' must be a table ([certsmith]), not {type(table).__name__}")
    return table
