"""``certsmith master-key``: the key that seals every private key at rest."""

from __future__ import annotations

import typer

from ..keys.master_key import MasterKeyError, MasterKeySource
from ..services.master_key import rotate_master_key
from ..tls.auto import AutoTLS, key_password
from .help import CertsmithTyper
from .local import ConfigOption, DatabaseUrlOption, DataDirOption, fail, local_settings, open_container

__all__ = ["master_key_app"]

master_key_app = CertsmithTyper(help="The master key that seals every private key and secret at rest.")


@master_key_app.command("rotate")
def rotate(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None, config: ConfigOption = None) -> None:
    """Re-seal every key and secret under a new master key. Stop every certsmith process on this database first."""
    settings = local_settings(config, data_dir=data_dir, database_url=database_url)
    container = open_container(settings)
    source = MasterKeySource(settings.data_dir, settings.master_key)
    try:
        result = rotate_master_key(source, container.database, container.clock)
    except MasterKeyError as error:
        fail(str(error))
    finally:
        container.database.dispose()
    tls_dir = settings.data_dir / "tls"
    if tls_dir.is_dir():  # the server's TLS key files are encrypted under a password derived from the master key
        AutoTLS(tls_dir, key_password(result.old_key), ()).reencrypt(key_password(result.new_key))
    counts = ", ".join(f"{count} in {table}" for table, count in result.resealed.items())
    typer.echo(f"re-sealed {sum(result.resealed.values())} secrets ({counts}) under a new master key")
    if settings.master_key:
        typer.echo(f"the new key is in {result.key_path}: set CERTSMITH_MASTER_KEY (master_key) to the output of "
                   f"`base64 -w0 {result.key_path}`, back it up, then delete the file")
    else:
        typer.echo(f"the new key is in {result.key_path}; back it up now (the old backup no longer opens this database)")
