"""``certsmith agent --config agent.toml``: deploy this host's bindings, pulled from the server."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from ..deploy.agent.config import ConfigError, load_config
from ..deploy.agent.loop import Agent

__all__ = ["agent"]

STOP_WAIT = 300.0  # seconds a stop waits for a deployment under way to finish


def agent(
    config: Annotated[Path, typer.Option("--config", "-c", help="the agent's settings (agent.toml)",
                                         envvar="CERTSMITH_AGENT_CONFIG")] = Path("/etc/certsmith/agent.toml"),
    once: Annotated[bool, typer.Option(help="poll once without waiting, deploy what came, and exit")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Deploy the certificates bound to this host's agent: poll the server, install, reload, check, report."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        settings = load_config(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    stop = threading.Event()
    runner = Agent(settings, stop=stop)
    if once:
        try:
            runner.step(wait=0)
        except (BotoCoreError, ClientError) as exc:
            typer.echo(f"error: the server at {settings.endpoint} cannot be reached or refused the agent: {exc}",
                       err=True)
            raise typer.Exit(1) from None
        return
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=runner.run, name="certsmith-agent", daemon=True)
    thread.start()
    while thread.is_alive() and not stop.wait(1.0):
        pass
    # A poll under way is dropped (the server keeps the work); a deployment under way is let finish.
    deadline = threading.Event()
    timer = threading.Timer(STOP_WAIT, deadline.set)
    timer.daemon = True
    timer.start()
    while runner.deploying.is_set() and thread.is_alive() and not deadline.is_set():
        thread.join(0.1)
    timer.cancel()
    logging.getLogger("certsmith.agent").info("agent stopped")
