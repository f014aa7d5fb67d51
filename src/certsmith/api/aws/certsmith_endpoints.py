"""certsmith's endpoint monitoring operations: register, describe, list, remove, and probe an endpoint now."""

from __future__ import annotations

import asyncio
from typing import Any

from ...services.context import Caller
from ...services.endpoints.registry import EndpointRecord, EndpointSpec
from ...services.wiring import Container
from .pca import Handler

__all__ = ["endpoint_operations", "endpoint_shape"]


def endpoint_shape(record: EndpointRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "EndpointId": record.endpoint_id, "EndpointArn": record.arn, "Host": record.host, "Port": record.port,
        "ServerName": record.server_name, "CertificateArn": record.certificate_arn, "TrustSource": record.trust_source,
        "IntervalSeconds": record.interval_seconds, "CreatedAt": record.created_at, "NextProbeAt": record.next_probe_at,
        "Status": record.status, "ProbedAt": record.probed_at, "HandshakeMs": record.handshake_ms,
        "ServedSerial": record.served_serial, "ServedNotAfter": record.served_not_after,
        "DaysToExpiry": record.days_to_expiry, "ServedVersion": record.served_version,
        "CurrentSerial": record.current_serial, "CurrentVersion": record.current_version,
        "HostnameMatch": record.hostname_match, "Trusted": record.trusted, "Error": record.error,
        "Chain": [{"Subject": e.subject, "Issuer": e.issuer, "Serial": e.serial, "NotBefore": e.not_before,
                   "NotAfter": e.not_after} for e in record.chain] or None}
    return {k: v for k, v in values.items() if v is not None}


def create_endpoint(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    spec = EndpointSpec(host=req["Host"], port=req.get("Port"), server_name=req.get("ServerName"),
                        certificate_arn=req.get("CertificateArn"), trust_bundle=req.get("TrustBundle"),
                        interval_seconds=req.get("IntervalSeconds"))
    return {"Endpoint": endpoint_shape(c.endpoints.create(caller, spec))}


def describe_endpoint(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Endpoint": endpoint_shape(c.endpoints.describe(caller, req["EndpointId"]))}


def list_endpoints(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    records, token = c.endpoints.page(caller, certificate_arn=req.get("CertificateArn"), status=req.get("Status"),
                                      max_results=req.get("MaxResults"), token=req.get("NextToken"))
    return {"Endpoints": [endpoint_shape(r) for r in records], "NextToken": token}


def delete_endpoint(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.endpoints.delete(caller, req["EndpointId"])


async def probe_endpoint(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    # A probe is a TLS handshake over the network (up to its timeout): off the event loop.
    record = await asyncio.to_thread(c.endpoint_prober.probe_now, caller, req["EndpointId"])
    return {"Endpoint": endpoint_shape(record)}


def endpoint_operations() -> dict[str, Handler]:
    return {
        "CreateEndpoint": create_endpoint,
        "DescribeEndpoint": describe_endpoint,
        "ListEndpoints": list_endpoints,
        "DeleteEndpoint": delete_endpoint,
        "ProbeEndpoint": probe_endpoint,
    }
