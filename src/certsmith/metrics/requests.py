"""API requests answered by this process, by service, operation and result (``OK`` or the AWS error code).

The one in-memory count of /metrics: each API process counts what it answered, and Prometheus sums the processes
(``sum by (operation, code)``). Counted on the event loop (no lock: a dict increment under the GIL); read from
the scrape's thread as a copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, MutableMapping
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["UNKNOWN", "ApiRequests"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

UNKNOWN = "unknown"  # an operation no table knows: one series, whatever name a client made up


class ApiRequests(Collector):
    """``certsmith_api_requests_total``; ``wrap`` puts the count around the AWS endpoint."""

    def __init__(self, operations: Mapping[str, tuple[str, Collection[str]]]) -> None:
        """``operations``: X-Amz-Target prefix → (service name, the operations it has)."""
        self._operations = operations
        self._counts: dict[tuple[str, str, str], int] = {}

    def count(self, service: str, operation: str, code: str) -> None:
        key = (service, operation, code)
        self._counts[key] = self._counts.get(key, 0) + 1

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("certsmith_api_requests", "AWS API requests answered by this process, by "
                                     "service, operation and code (OK, or the AWS error code).",
                                     labels=["service", "operation", "code"])
        for (service, operation, code), value in sorted(self._counts.copy().items()):
            family.add_metric([service, operation, code], value)
        yield family

    def operation_of(self, scope: Scope) -> tuple[str, str]:
        """(service, operation) of an AWS request: ``X-Amz-Target`` (JSON 1.1) or the path (RPC v2 CBOR)."""
        path: str = scope["path"]
        if path.startswith("/service/"):
            parts = path.strip("/").split("/")
            prefix, operation = (parts[1], parts[3]) if len(parts) == 4 else ("", "")
        else:
            target = next((value for name, value in scope["headers"] if name == b"x-amz-target"), b"")
            prefix, _, operation = target.decode("latin-1").partition(".")
        known = self._operations.get(prefix)
        if known is None:
            return UNKNOWN, UNKNOWN
        return known[0], operation if operation in known[1] else UNKNOWN

    def wrap(self, app: Any) -> Any:
        """An ASGI app that runs ``app`` and counts its answer: OK, or the ``x-amzn-errortype`` it sent."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            service, operation = self.operation_of(scope)
            code = "InternalFailure"  # unless a response starts

            async def watch(message: MutableMapping[str, Any]) -> None:
                nonlocal code
                if message["type"] == "http.response.start":
                    code = "OK"
                    if message["status"] >= 400:
                        code = next((value.decode("latin-1") for name, value in message.get("headers", ())
                                     if name == b"x-amzn-errortype"), str(message["status"]))
                await send(message)

            try:
                await app(scope, receive, watch)
            finally:
                self.count(service, operation, code)

        return counted
