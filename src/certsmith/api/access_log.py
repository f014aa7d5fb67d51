"""``serve --access-log``: one line per request, naming the AWS operation rather than ``POST /``."""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

from .aws.endpoint import Receive, Scope, Send

__all__ = ["AccessLog"]

log = logging.getLogger("certsmith.access")


class AccessLog:
    """Wraps an ASGI app; logs client, method, path, operation, status and milliseconds."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            target = next((value.decode("latin-1") for name, value in scope.get("headers", ())
                           if name == b"x-amz-target"), "-")
            client = scope.get("client") or ("-", 0)
            log.info('%s "%s %s" %s %d %.1fms', client[0], scope["method"], logged_path(scope["path"]), target, status,
                     (time.perf_counter() - started) * 1000)


def logged_path(path: str) -> str:
    """The path as the log shows it: an approval link's token is a credential, so it is left out."""
    return "/approve/…" if path.startswith("/approve/") else path
