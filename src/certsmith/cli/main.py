"""The ``certsmith`` command."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from ..settings import Settings, load_settings
from .ca import ca_app
from .cert import cert_app

__all__ = ["app", "main"]

app = typer.Typer(help="certsmith: a self-hosted certificate manager with the ACM and ACM-PCA APIs.",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, pretty_exceptions_show_locals=False)
app.add_typer(ca_app, name="ca")
app.add_typer(cert_app, name="cert")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file", envvar="CERTSMITH_CONFIG")]


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except (ValueError, OSError) as exc:
        typer.secho(f"certsmith: bad settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on [default: 8000]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data folder [default: ./certsmith-data]")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL [default: SQLite in the data folder]")] = None,
    region: Annotated[str | None, typer.Option(help="region in ARNs [default: us-east-1]")] = None,
    public_url: Annotated[str | None, typer.Option(help="base of CRL/OCSP URLs in certificates")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="do not run a worker in this process")] = False,
    processes: Annotated[int, typer.Option(help="API processes (each with its worker unless --no-worker)")] = 1,
    config: ConfigOption = None,
) -> None:
    """Run the API server and a job worker (in one process, or in each of --processes)."""
    import uvicorn

    from ..api.factory import app_from_settings, settings_to_environment
    from ..services.wiring import build

    settings = _settings(config, host=host, port=port, data_dir=data_dir, database_url=database_url, region=region,
                         public_url=public_url, worker=False if no_worker else None)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    typer.echo(f"certsmith listening on http://{settings.host}:{settings.port} "
               f"(data in {settings.data_dir}, credentials in {settings.data_dir / 'credentials'})", err=True)
    if processes > 1:
        build(settings).database.dispose()  # migrate and make the first credentials once, before forking
        settings_to_environment(settings)
        uvicorn.run("certsmith.api.factory:app_from_environment", factory=True, workers=processes,
                    host=settings.host, port=settings.port, log_level="warning", access_log=False)
        return
    uvicorn.run(app_from_settings(settings, prepare=True), host=settings.host, port=settings.port,
                log_level="warning", access_log=False)


@app.command()
def worker(
    data_dir: Annotated[Path | None, typer.Option(help="data folder (master key)")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL")] = None,
    threads: Annotated[int, typer.Option(help="worker threads")] = 1,
    config: ConfigOption = None,
) -> None:
    """Run workers only (no API); several may share one PostgreSQL database."""
    from ..services.wiring import build

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    container = build(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    workers = [threading.Thread(target=container.worker().run_forever, args=(stop,)) for _ in range(max(1, threads))]
    for thread in workers:
        thread.start()
    while any(thread.is_alive() for thread in workers):
        for thread in workers:
            thread.join(timeout=0.5)
    container.database.dispose()


def main() -> None:
    app()
