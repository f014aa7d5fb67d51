"""``certsmith credentials``: the account's access keys, managed on this machine (like ``serve``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..domain.errors import UserError
from ..services.accounts import CACHE_SECONDS, write_credentials_file
from .help import CertsmithTyper
from .local import ConfigOption, DatabaseUrlOption, DataDirOption, fail, local_settings, open_container

__all__ = ["credentials_app"]

credentials_app = CertsmithTyper(help="Access keys of the account, made and revoked on the server's own machine.")

AccountOption = Annotated[str | None, typer.Option(help="account ID (needed only when there are several)")]


@credentials_app.command("create")
def create(
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
    account: AccountOption = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing credentials file")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="print only the new access key ID")] = False,
) -> None:
    """Make a new admin access key and write it to DATA_DIR/credentials (never over a file, without --force)."""
    settings = local_settings(config, data_dir=data_dir, database_url=database_url)
    path = settings.data_dir / "credentials"
    if path.exists() and not force:
        fail(f"{path} exists; it is kept. Use --force to replace it with a new key "
             "(the keys in it stay valid until `certsmith credentials revoke`)")
    container = open_container(settings)
    try:
        credential = container.accounts.create_access_key(account)
        write_credentials_file(path, credential, settings.region, replace=force)
    except UserError as error:
        fail(error.message)
    finally:
        container.database.dispose()
    if quiet:
        typer.echo(credential.access_key_id)
        return
    typer.echo(f"new access key {credential.access_key_id} for account {credential.account_id} written to {path}")
    typer.echo(f"use it with: export AWS_SHARED_CREDENTIALS_FILE={path}")


@credentials_app.command("list")
def list_keys(
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
    account: AccountOption = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="print only access key IDs")] = False,
) -> None:
    """List the account's access keys (never their secrets)."""
    container = open_container(local_settings(config, data_dir=data_dir, database_url=database_url))
    try:
        keys = container.accounts.access_keys(account)
    except UserError as error:
        fail(error.message)
    finally:
        container.database.dispose()
    if quiet:
        for key in keys:
            typer.echo(key.access_key_id)
        return
    table = Table("Access key ID", "Account", "Principal", "Created", box=None)
    for key in keys:
        table.add_row(key.access_key_id, key.account_id, key.principal, key.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"))
    Console(soft_wrap=True).print(table)


@credentials_app.command("revoke")
def revoke(
    access_key_id: Annotated[str, typer.Argument(help="the access key to revoke")],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option("--force", help="revoke even the account's last key")] = False,
) -> None:
    """Revoke an access key: requests signed with it are refused within seconds."""
    container = open_container(local_settings(config, data_dir=data_dir, database_url=database_url))
    try:
        credential = container.accounts.credential(access_key_id)
        if credential is None:
            fail(f"there is no access key {access_key_id}")
        if not force and len(container.accounts.access_keys(credential.account_id)) == 1:
            fail(f"{access_key_id} is the account's last access key; make another first "
                 "(`certsmith credentials create`), or use --force")
        container.accounts.revoke_access_key(access_key_id)
    except UserError as error:
        fail(error.message)
    finally:
        container.database.dispose()
    typer.echo(f"revoked {access_key_id}; running servers refuse it within {CACHE_SECONDS:.0f} seconds")
