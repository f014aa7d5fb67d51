"""API requests are counted by service, operation and the code the endpoint answered with.

The endpoint here is a small ASGI app answering as the AWS endpoint does (status, ``x-amzn-errortype``); the
contract test counts real calls through the real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from certsmith.metrics.requests import UNKNOWN, ApiRequests

OPERATIONS = {"CertificateManager": ("acm", {"DescribeCertificate", "ListCertificates"}),
              "ACMPrivateCA": ("acm-pca", {"IssueCertificate"}),
              "Certsmith": ("certsmith", {"ListEndpoints"})}


def scope(target: str | None = None, path: str = "/") -> dict[str, Any]:
    headers = [(b"x-amz-target", target.encode())] if target else []
    return {"type": "http", "method": "POST", "path": path, "headers": headers}


def answering(status: int, error: str | None = None, fail: bool = False) -> Any:
    async def app(_scope: Any, _receive: Any, send: Any) -> None:
        if fail:
            raise RuntimeError("the endpoint broke before answering")
        headers = [(b"content-type", b"application/x-amz-json-1.1")]
        if error:
            headers.append((b"x-amzn-errortype", error.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})
    return app


def call(requests: ApiRequests, app: Any, request: dict[str, Any]) -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"{}"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(requests.wrap(app)(request, receive, send))
    assert sent, "the wrapped app's messages reach the client"


def counted(requests: ApiRequests) -> dict[tuple[str, str, str], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(requests)
    [family] = text_string_to_metric_families(generate_latest(registry).decode())
    assert family.name == "certsmith_api_requests" and family.type == "counter"
    return {(s.labels["service"], s.labels["operation"], s.labels["code"]): s.value for s in family.samples
            if s.name == "certsmith_api_requests_total"}


@pytest.mark.parametrize(("request_scope", "expected"), [
    (scope("CertificateManager.DescribeCertificate"), ("acm", "DescribeCertificate")),
    (scope("ACMPrivateCA.IssueCertificate"), ("acm-pca", "IssueCertificate")),
    (scope(path="/service/Certsmith/operation/ListEndpoints"), ("certsmith", "ListEndpoints")),
    (scope("CertificateManager.MadeUp"), ("acm", UNKNOWN)),
    (scope("Nobody.DescribeCertificate"), (UNKNOWN, UNKNOWN)),
    (scope(None), (UNKNOWN, UNKNOWN)),
    (scope(path="/service/Certsmith/ListEndpoints"), (UNKNOWN, UNKNOWN)),
])
def test_the_operation_of_a_request(request_scope: dict[str, Any], expected: tuple[str, str]) -> None:
    assert ApiRequests(OPERATIONS).operation_of(request_scope) == expected


def test_answers_are_counted_by_code() -> None:
    requests = ApiRequests(OPERATIONS)
    describe = scope("CertificateManager.DescribeCertificate")
    call(requests, answering(200), describe)
    call(requests, answering(200), describe)
    call(requests, answering(400, "ResourceNotFoundException"), describe)
    call(requests, answering(500), scope("ACMPrivateCA.IssueCertificate"))
    call(requests, answering(400, "UnknownOperationException"), scope("Made.Up"))
    assert counted(requests) == {
        ("acm", "DescribeCertificate", "OK"): 2.0,
        ("acm", "DescribeCertificate", "ResourceNotFoundException"): 1.0,
        ("acm-pca", "IssueCertificate", "500"): 1.0,
        (UNKNOWN, UNKNOWN, "UnknownOperationException"): 1.0,
    }


def test_an_endpoint_that_raises_is_counted_as_an_internal_failure() -> None:
    requests = ApiRequests(OPERATIONS)
    with pytest.raises(RuntimeError):
        asyncio.run(requests.wrap(answering(200, fail=True))(scope("CertificateManager.ListCertificates"),
                                                             None, None))  # type: ignore[arg-type]
    assert counted(requests) == {("acm", "ListCertificates", "InternalFailure"): 1.0}


def test_nothing_answered_yet_is_an_empty_counter() -> None:
    assert counted(ApiRequests(OPERATIONS)) == {}
