"""Building the ASGI application with its workers, in this process or in each of several."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from ..services.wiring import Container, build
from ..settings import Settings, load_settings
from .access_log import AccessLog
from .app import create_app

__all__ = [
    "SETTINGS_VARIABLE",
    "app_from_container",
    "app_from_environment",
    "app_from_settings",
    "configure_logging",
    "settings_to_environment",
]

SETTINGS_VARIABLE = "CERTSMITH_PROCESS_SETTINGS"
log = logging.getLogger("certsmith.serve")


def app_from_settings(settings: Settings, *, prepare: bool) -> Any:
    """The app; its lifespan runs ``settings.worker_threads`` job workers when ``settings.worker``."""
    return app_from_container(build(settings, prepare=prepare))


def app_from_container(container: Container) -> Any:
    settings = container.settings
    stop = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        threads = []
        if settings.worker:
            for _ in range(max(1, settings.worker_threads)):
                thread = threading.Thread(target=container.worker().run_forever, args=(stop,), daemon=True)
                thread.start()
                threads.append(thread)
        try:
            yield
        finally:
            container.writes.close()  # pending requests' rows are committed (and handed to the workers)
            stop.set()
            container.signal.notify()
            for thread in threads:
                thread.join(timeout=10)
            container.stop_background()
            container.database.dispose()

    app = create_app(container, lifespan)
    return AccessLog(app) if settings.access_log else app


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.access_log:
        logging.getLogger("certsmith.access").setLevel(logging.INFO)


def settings_to_environment(settings: Settings) -> None:
    """Hand the settings to the processes uvicorn starts (they import ``app_from_environment``)."""
    os.environ[SETTINGS_VARIABLE] = json.dumps({k: str(v) if isinstance(v, Path) else v
                                                for k, v in asdict(settings).items()})


def app_from_environment() -> Any:
    document: dict[str, Any] = json.loads(os.environ[SETTINGS_VARIABLE])
    settings = load_settings(None, **document)
    configure_logging(settings)
    return app_from_settings(settings, prepare=False)
