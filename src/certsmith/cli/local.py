"""What the commands that work on this machine's data folder share (serve, worker, credentials, master-key)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ..keys.master_key import MasterKeyError
from ..settings import Settings, load_settings

if TYPE_CHECKING:
    from ..services.wiring import Container

__all__ = ["ConfigOption", "DataDirOption", "DatabaseUrlOption", "fail", "local_settings", "open_container"]

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


def open_container(settings: Settings) -> Container:
    """Migrate, open the master key against the database, make the first credentials: or say what is wrong."""
    from ..services.wiring import build

    try:
        return build(settings)
    except MasterKeyError as error:
        fail(str(error))
    except ValueError as error:  # a setting that only makes sense once read (validation zone, resolvers, DNS address)
        fail(f"bad settings: {error}")
