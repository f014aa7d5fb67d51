"""The SSL context uvicorn serves with, reloaded when its files change (and, with ``--tls auto``,
renewed before they expire), in every API process."""

from __future__ import annotations

import functools
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .auto import AutoTLS

__all__ = ["ServerTLS", "context_factory"]

log = logging.getLogger("certsmith.tls")


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """What an API process needs to serve HTTPS (picklable: uvicorn hands it to its worker processes)."""

    cert_path: Path
    key_path: Path
    password: bytes | None = None
    auto: AutoTLS | None = None
    check_seconds: float = 3600.0

    def load(self, context: ssl.SSLContext) -> None:
        context.load_cert_chain(self.cert_path, self.key_path, password=self.password)

    def stamp(self) -> tuple[float, float]:
        return self.cert_path.stat().st_mtime_ns, self.key_path.stat().st_mtime_ns


def context_factory(tls: ServerTLS) -> Callable[[Any, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """An ``ssl_context_factory`` for uvicorn's Config."""
    return functools.partial(_make_context, tls)


def _make_context(tls: ServerTLS, _config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load(context)
    threading.Thread(target=_watch, args=(tls, context), name="certsmith-tls", daemon=True).start()
    return context


def _watch(tls: ServerTLS, context: ssl.SSLContext) -> None:
    """Renew (auto) and reload: new connections get the new certificate, open ones keep theirs."""
    stamp = tls.stamp()
    stop = threading.Event()
    while not stop.wait(tls.check_seconds):
        try:
            if tls.auto is not None and tls.auto.ensure():
                log.info("renewed the server certificate in %s", tls.auto.directory)
            if tls.stamp() != stamp:
                tls.load(context)
                stamp = tls.stamp()
                log.info("serving the new certificate from %s", tls.cert_path)
        except (OSError, ValueError, ssl.SSLError) as error:  # keep serving the certificate already loaded
            log.error("could not renew or reload the server certificate: %s", error)
