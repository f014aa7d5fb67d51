"""What the commands that work on this machine's data folder share (serve, worker, credentials, master-key)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ..keys.master_key import MasterKeyError
from ..settings import Settings, load_settings

if TYPE_CHECKING:
    from ..services.wiring import Container

__all__ = ["ConfigOption", "DataDirOption", "DatabaseUrlOption", "check_port", "fail", "local_settings",
           "open_container"]

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file", envvar="CERTSMITH_CONFIG",
                                                   show_envvar=True)]
DataDirOption = Annotated[Path | None, typer.Option(help="data folder (database, master key, credentials) "
                                                         "\\[default: ./certsmith-data]", envvar="CERTSMITH_DATA_DIR")]

DatabaseUrlOption = Annotated[str | None, typer.Option(help="SQLAlchemy URL \\[default: SQLite in the data folder]",
                                                       envvar="CERTSMITH_DATABASE_URL")]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"certsmith: {message}", fg="red", err=True)
    raise typer.Exit(code)


def local_settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except (ValueError, OSError) as exc:
        fail(f"bad settings: {exc}")


def check_port(option: str, value: int) -> None:
    """A port setting (from the flag, its CERTSMITH_* variable or the TOML file) from 1 to 65535, or the command ends."""
    if not 1 <= value <= 65535:
        setting = option.removeprefix("--").replace("-", "_")
        fail(f"{option} must be from 1 to 65535, not {value} (the value of {option}, CERTSMITH_{setting.upper()} "
             f"or {setting} in the settings file)")


def open_container(settings: Settings) -> Container:
    """Migrate, open the master key against the database, make the first credentials: or say what is wrong."""
    from ..domain.errors import CertsmithError
    from ..services.wiring import build

    _check_read_settings(settings)
    try:
        return build(settings)
    except MasterKeyError as error:
        fail(str(error))
    except OSError as error:  # the data folder: a file in its place, no permission, a full disk
        where = f"--data-dir {settings.data_dir}"
        if error.filename and Path(error.filename) != settings.data_dir:
            where += f" ({error.filename})"
        fail(f"{where}: {error.strerror or error}")
    except ValueError as error:  # a setting that only makes sense once read (validation zone, resolvers, DNS address)
        fail(f"bad settings: {error}")
    except CertsmithError as error:
        fail(f"bad settings: {error.message}")


def _check_read_settings(settings: Settings) -> None:
    """The settings that are read when the server is built, checked before anything is made on disk."""
    from ..dns.probe import split_listen
    from ..dns.resolve import parse_resolvers
    from ..domain.errors import ValidationError
    from ..domain.public_names import check_zone_name
    from ..notify.smtp import SmtpTarget

    try:
        if settings.smtp_url:
            SmtpTarget.parse(settings.smtp_url)
        if settings.validation_zone:
            check_zone_name(settings.validation_zone)
        parse_resolvers(settings.resolvers)
        split_listen(settings.dns_listen)
    except ValidationError as error:
        fail(f"bad settings: {error.message}")
    except ValueError as error:
        fail(f"bad settings: {error}")
