"""The HTTP edge: AWS JSON 1.1 / RPC v2 CBOR API, CRL and OCSP, reports, health."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..domain.errors import (
    CertsmithError,
    InternalError,
    PayloadTooLargeError,
    UnknownOperationError,
)
from ..services.audit_log import is_mutating
from ..services.context import Caller
from ..services.wiring import Container
from .aws.errors import wire_error
from .aws.pca import Handler, pca_operations
from .aws.protocol import CBOR_TYPE, JSON_TYPE, decode_body, encode_body
from .aws.shapes import service_shapes
from .sigv4 import verify_sigv4

__all__ = ["MAX_BODY", "create_app"]

log = logging.getLogger("certsmith.api")
MAX_BODY = 4 * 1024 * 1024
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]

# target prefix → (botocore service name, SigV4 signing names, operation table)
_PCA = "ACMPrivateCA"


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLargeError(f"the request body is {declared} bytes; the limit is {MAX_BODY}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLargeError(f"the request body is over the limit of {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class AwsEndpoint:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.tables: dict[str, tuple[str, tuple[str, ...], dict[str, Handler]]] = {
            _PCA: ("acm-pca", ("acm-pca",), pca_operations()),
        }

    def _secret(self, access_key_id: str) -> str | None:
        credential = self.container.accounts.credential(access_key_id)
        return None if credential is None else credential.secret_access_key

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        cbor = request.url.path.startswith("/service/")
        try:
            prefix, operation = self._route(request, cbor)
            body = await _read_body(request)
            # Handled on the event loop thread: every operation is a few short database statements and
            # some CPU, and handing it to a thread pool costs more in GIL contention than it saves.
            # Work that can take long (key generation, issuance, CRLs, reports) is done by workers.
            return self._execute(request, prefix, operation, body, cbor, request_id)
        except CertsmithError as error:
            return self._error(error, cbor, request_id)

    def _route(self, request: Request, cbor: bool) -> tuple[str, str]:
        if cbor:
            parts = request.url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "service" or parts[2] != "operation":
                raise UnknownOperationError(f"no operation at {request.url.path}")
            prefix, operation = parts[1], parts[3]
        else:
            target = request.headers.get("x-amz-target", "")
            prefix, _, operation = target.partition(".")
            if not target:
                raise UnknownOperationError("the request has no X-Amz-Target header")
        table = self.tables.get(prefix)
        if table is None or operation not in table[2]:
            raise UnknownOperationError(f"unknown operation {prefix}.{operation}")
        return prefix, operation

    def _execute(self, request: Request, prefix: str, operation: str, body: bytes, cbor: bool,
                 request_id: str) -> Response:
        service, signing_names, table = self.tables[prefix]
        try:
            identity = verify_sigv4(
                method=request.method, raw_path=request.scope.get("raw_path", b"/").decode("latin-1"),
                query=request.url.query, headers=request.headers, body=body, now=self.container.clock.now(),
                expected_services=signing_names, secret_for=self._secret)
            credential = self.container.accounts.credential(identity.access_key_id)
            assert credential is not None
            caller = Caller(credential.account_id, identity.region, credential.principal)
            document = service_shapes(service).parse_input(operation, decode_body(body, cbor), cbor=cbor)
        except CertsmithError as error:
            return self._error(error, cbor, request_id)
        except Exception:
            log.exception("request %s (%s.%s) failed before it ran", request_id, prefix, operation)
            return self._error(InternalError("internal failure"), cbor, request_id)
        try:
            result = table[operation](self.container, caller, document)
        except CertsmithError as error:
            self._audit(caller, operation, document, None, wire_error(error)[0])
            return self._error(error, cbor, request_id)
        except Exception:
            log.exception("request %s (%s.%s) failed", request_id, prefix, operation)
            self._audit(caller, operation, document, None, "InternalFailure")
            return self._error(InternalError("internal failure"), cbor, request_id)
        self._audit(caller, operation, document, result, "Success")
        headers = {"x-amzn-RequestId": request_id}
        if cbor:
            headers["smithy-protocol"] = "rpc-v2-cbor"
        return Response(encode_body(result, cbor), 200, headers=headers, media_type=CBOR_TYPE if cbor else JSON_TYPE)

    def _audit(self, caller: Caller, operation: str, request: dict[str, Any], response: dict[str, Any] | None,
               result: str) -> None:
        if not is_mutating(operation):
            return
        resource = None
        for document, key in ((response, "CertificateArn"), (response, "CertificateAuthorityArn"),
                              (request, "CertificateAuthorityArn"), (request, "ResourceArn")):
            if document and isinstance(document.get(key), str):
                resource = document[key]
                break
        try:
            self.container.audit_log.record(caller, operation, resource, result)
        except Exception:  # the operation itself is done; say so, and make the lost entry loud in the log
            log.exception("audit log entry lost: %s %s %s %s", caller.principal, operation, resource, result)

    @staticmethod
    def _error(error: CertsmithError, cbor: bool, request_id: str) -> Response:
        code, status, message = wire_error(error)
        headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
        if cbor:
            headers["smithy-protocol"] = "rpc-v2-cbor"
        body = encode_body({"__type": code, "message": message}, cbor)
        return Response(body, status, headers=headers, media_type=CBOR_TYPE if cbor else JSON_TYPE)


def create_app(container: Container, lifespan: Lifespan | None = None) -> Starlette:
    endpoint = AwsEndpoint(container)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ocsp(request: Request) -> Response:
        authority_id = request.path_params["authority_id"]
        if request.method == "POST":
            try:
                der = await _read_body(request)
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
        Route("/", endpoint.__call__, methods=["POST"]),
        Route("/service/{service}/operation/{operation}", endpoint.__call__, methods=["POST"]),
        Route("/ocsp/{authority_id}", ocsp, methods=["POST", "GET"]),
        Route("/ocsp/{authority_id}/{encoded:path}", ocsp, methods=["GET"]),
        Route("/{path:path}", files, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
