"""The AWS API endpoint as a bare ASGI application: JSON 1.1 at ``POST /``, RPC v2 CBOR at
``POST /service/<Service>/operation/<Op>``.

It is the hot path of the server (every SDK call comes here), so it reads the ASGI scope itself
instead of going through a framework's request objects and middleware.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ...domain.errors import CertsmithError, InternalError, PayloadTooLargeError, UnknownOperationError
from ...services.audit_log import is_mutating
from ...services.context import Caller
from ...services.deploy.agents import check_agent_may_call
from ...services.wiring import Container
from ..sigv4 import verify_sigv4
from .acm import acm_operations
from .certsmith_api import certsmith_operations
from .errors import wire_error
from .pca import Handler, pca_operations
from .protocol import CBOR_TYPE, JSON_TYPE, decode_body, encode_body
from .shapes import service_shapes

__all__ = ["MAX_BODY", "AwsEndpoint", "is_aws_request", "read_body"]

log = logging.getLogger("certsmith.api")
MAX_BODY = 4 * 1024 * 1024
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

def is_aws_request(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    return path == "/" or path.startswith("/service/")


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The whole request body; PayloadTooLargeError past MAX_BODY (declared or actual)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise PayloadTooLargeError(f"the request body is {int(value)} bytes; the limit is {MAX_BODY}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLargeError(f"the request body is over the limit of {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lowercase name; repeated headers joined with commas, as SigV4 signs them."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


class AwsEndpoint:
    def __init__(self, container: Container) -> None:
        self.container = container
        # target prefix → (botocore service name, SigV4 signing names, operation table)
        self.tables: dict[str, tuple[str, tuple[str, ...], dict[str, Handler]]] = {
            "ACMPrivateCA": ("acm-pca", ("acm-pca",), pca_operations()),
            "CertificateManager": ("acm", ("acm",), acm_operations()),
            "Certsmith": ("certsmith", ("certsmith",), certsmith_operations()),
        }

    def _secret(self, access_key_id: str) -> str | None:
        credential = self.container.accounts.credential(access_key_id)
        return None if credential is None else credential.secret_access_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        path: str = scope["path"]
        cbor = path.startswith("/service/")
        headers = _headers(scope)
        try:
            prefix, operation = self._route(path, headers, cbor)
            body = await read_body(scope, receive)
            status, payload, extra = await self._execute(scope, headers, prefix, operation, body, cbor, request_id)
        except CertsmithError as error:
            status, payload, extra = self._error(error, cbor)
        except Exception:  # never a dropped connection: whatever failed, the client gets the AWS error shape
            log.exception("request %s (%s) failed", request_id, path)
            status, payload, extra = self._error(InternalError("internal failure"), cbor)
        response_headers = [(b"content-type", (CBOR_TYPE if cbor else JSON_TYPE).encode()),
                            (b"content-length", str(len(payload)).encode()),
                            (b"x-amzn-requestid", request_id.encode()), *extra]
        if cbor:
            response_headers.append((b"smithy-protocol", b"rpc-v2-cbor"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    def _route(self, path: str, headers: dict[str, str], cbor: bool) -> tuple[str, str]:
        if cbor:
            parts = path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "service" or parts[2] != "operation":
                raise UnknownOperationError(f"no operation at {path}")
            prefix, operation = parts[1], parts[3]
        else:
            target = headers.get("x-amz-target", "")
            prefix, _, operation = target.partition(".")
            if not target:
                raise UnknownOperationError("the request has no X-Amz-Target header")
        table = self.tables.get(prefix)
        if table is None or operation not in table[2]:
            raise UnknownOperationError(f"unknown operation {prefix}.{operation}")
        return prefix, operation

    async def _execute(self, scope: Scope, headers: dict[str, str], prefix: str, operation: str, body: bytes,
                       cbor: bool, request_id: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        service, signing_names, table = self.tables[prefix]
        try:
            identity = verify_sigv4(
                method="POST", raw_path=scope.get("raw_path", b"/").decode("latin-1"),
                query=scope.get("query_string", b"").decode("latin-1"), headers=headers, body=body,
                now=self.container.clock.now(), expected_services=signing_names, secret_for=self._secret)
            credential = self.container.accounts.credential(identity.access_key_id)
            assert credential is not None
            caller = Caller(credential.account_id, identity.region, credential.principal)
            check_agent_may_call(credential.principal, service, operation)  # an agent's key: only its own operations
            document = service_shapes(service).parse_input(operation, decode_body(body, cbor), cbor=cbor)
        except CertsmithError as error:
            return self._error(error, cbor)
        except Exception:
            log.exception("request %s (%s.%s) failed before it ran", request_id, prefix, operation)
            return self._error(InternalError("internal failure"), cbor)
        # Handled on the event loop: every operation is a few short database statements and some CPU,
        # and a thread pool would cost more in GIL contention than it saves. Work that can take long
        # (key generation, issuance, CRLs, reports) is done by workers; the rows that many requests
        # write at once (new certificates, audit entries) are committed in groups off the loop.
        try:
            result = table[operation](self.container, caller, document)
            if inspect.isawaitable(result):
                result = await result
        except CertsmithError as error:
            self._audit(caller, operation, document, None, wire_error(error)[0])
            return self._error(error, cbor)
        except Exception:
            log.exception("request %s (%s.%s) failed", request_id, prefix, operation)
            self._audit(caller, operation, document, None, "InternalFailure")
            return self._error(InternalError("internal failure"), cbor)
        self._audit(caller, operation, document, result, "Success")
        return 200, encode_body(result, cbor), []

    def _audit(self, caller: Caller, operation: str, request: dict[str, Any],
                     response: dict[str, Any] | None, result: str) -> None:
        if not is_mutating(operation):
            return
        resource = None
        for document, key in ((response, "CertificateArn"), (response, "CertificateAuthorityArn"),
                              (request, "CertificateAuthorityArn"), (request, "ResourceArn"),
                              ((response or {}).get("Issuer"), "IssuerArn"), ((response or {}).get("Binding"), "BindingArn"),
                              (request, "BindingArn"), (request, "CertificateArn")):
            if document and isinstance(document.get(key), str):
                resource = document[key]
                break
        try:
            self.container.audit_log.record(caller, operation, resource, result)
        except Exception:  # the operation itself is done; say so, and make the lost entry loud in the log
            log.exception("audit log entry lost: %s %s %s %s", caller.principal, operation, resource, result)

    @staticmethod
    def _error(error: CertsmithError, cbor: bool) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        code, status, message = wire_error(error)
        # A message may quote the request; a lone surrogate in it would not encode as UTF-8 (CBOR text).
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        return status, encode_body({"__type": code, "message": message}, cbor), [(b"x-amzn-errortype", code.encode())]
