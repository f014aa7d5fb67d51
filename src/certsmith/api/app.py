"""The HTTP edge: the AWS API (JSON 1.1 / RPC v2 CBOR), CRL and OCSP, reports, health, metrics."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..domain.errors import CertsmithError
from ..metrics import CONTENT_TYPE, Metrics
from ..services.wiring import Container
from .approval_pages import approval_routes
from .aws.endpoint import AwsEndpoint, Receive, Scope, Send, is_aws_request, read_body
from .http_challenge import http_challenge_routes

__all__ = ["CertsmithApp", "create_app"]

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class CertsmithApp:
    """The ASGI application: AWS API calls go straight to their endpoint, everything else to Starlette."""

    def __init__(self, endpoint: AwsEndpoint, web: Starlette, metrics: Metrics | None = None) -> None:
        self.endpoint, self.web = endpoint, web
        self.aws: Any = endpoint if metrics is None else metrics.requests.wrap(endpoint)  # counted per operation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_aws_request(scope):
            await self.aws(scope, receive, send)
        else:
            await self.web(scope, receive, send)


def create_app(container: Container, lifespan: Lifespan | None = None) -> CertsmithApp:
    endpoint = AwsEndpoint(container)
    settings = container.settings
    metrics = Metrics(container.database, container.clock, token=settings.metrics_token,
                      certificate_series=settings.metrics_certificate_series,
                      operations={prefix: (service, set(table)) for prefix, (service, _, table) in endpoint.tables.items()})

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_page(request: Request) -> Response:
        if not metrics.allowed(request.headers.get("authorization")):
            return Response("GET /metrics wants Authorization: Bearer <metrics_token>\n", 401, media_type="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="certsmith metrics"'})
        try:
            page = await asyncio.to_thread(metrics.prepare)  # the database's part, off the event loop
        except Exception:  # noqa: BLE001 - logged where it failed
            return Response("metrics are not available now; the server log says why\n", 503, media_type="text/plain")
        return StreamingResponse(page, 200, media_type=CONTENT_TYPE)

    async def ocsp(request: Request) -> Response:
        authority_id = request.path_params["authority_id"]
        if request.method == "POST":
            try:
                der = await read_body(request.scope, request.receive)
            except CertsmithError:
                return Response(status_code=413)
        else:
            encoded = request.path_params.get("encoded", "")
            try:
                der = base64.b64decode(encoded)  # the path arrives percent-decoded
            except (binascii.Error, ValueError):
                der = b""
        answer = container.revocation.ocsp(authority_id, der)
        return Response(answer, 200, media_type="application/ocsp-response")

    async def files(request: Request) -> Response:
        path: str = request.path_params["path"]
        if path.endswith(".crl"):
            authority_id = path.rsplit("/", 1)[-1][: -len(".crl")]
            crl = container.revocation.crl(authority_id)
            if crl is None:
                return Response("no CRL for that CA\n", 404, media_type="text/plain")
            return Response(crl, 200, media_type="application/pkix-crl")
        if path.startswith("audit-report/"):
            data = container.audit_reports.download(path)
            if data is None:
                return Response("no such report\n", 404, media_type="text/plain")
            media = "text/csv" if path.endswith(".csv") else "application/json"
            return Response(data, 200, media_type=media)
        return Response("not found\n", 404, media_type="text/plain")

    routes: list[Any] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/ocsp/{authority_id}", ocsp, methods=["POST", "GET"]),
        Route("/ocsp/{authority_id}/{encoded:path}", ocsp, methods=["GET"]),
        *http_challenge_routes(container),
        *approval_routes(container),
        Route("/{path:path}", files, methods=["GET"]),
    ]
    return CertsmithApp(endpoint, Starlette(routes=routes, lifespan=lifespan), metrics)
