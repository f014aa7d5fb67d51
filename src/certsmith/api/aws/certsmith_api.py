"""certsmith's own operation table (``Certsmith.*``, SigV4 service ``certsmith``): what AWS has no operation for."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ...dns.resolve import Lookup
from ...services.context import Caller
from ...services.public.diagnosis import NameReport
from ...services.public.dns_providers import DnsProviderRecord
from ...services.public.issuers import IssuerRecord, IssuerSpec
from ...services.wiring import Container
from .certsmith_agent import agent_operations
from .certsmith_deliveries import delivery_operations
from .certsmith_deploy import deploy_operations
from .certsmith_endpoints import endpoint_operations
from .certsmith_reissue import reissue_operations
from .certsmith_renewal import renewal_operations
from .certsmith_report import report_operations
from .certsmith_rules import rule_operations
from .pca import Handler

__all__ = ["certsmith_operations", "issuer_shape"]


def issuer_shape(record: IssuerRecord) -> dict[str, Any]:
    shape: dict[str, Any] = {"Name": record.name, "IssuerArn": record.arn, "Type": record.type,
                             "HasCaBundle": record.has_ca_bundle, "CaaIdentities": record.caa_identities,
                             "IsDefault": record.is_default, "CreatedAt": record.created_at,
                             "UpdatedAt": record.updated_at}
    for key, value in (("AcmeDirectoryUrl", record.directory_url), ("ContactEmail", record.contact_email),
                       ("ExternalAccountKeyId", record.eab_key_id), ("CertificateAuthorityArn", record.authority_arn),
                       ("AcmeAccountUrl", record.account_url), ("DnsProvider", record.dns_provider)):
        if value is not None:
            shape[key] = value
    return shape


async def create_issuer(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    binding = req.get("ExternalAccountBinding") or {}
    identities = req.get("CaaIdentities")
    spec = IssuerSpec(name=req["Name"], directory_url=req.get("AcmeDirectoryUrl"), contact_email=req.get("ContactEmail"),
                      eab_key_id=binding.get("KeyId"), eab_hmac_key=binding.get("HmacKey"),
                      ca_bundle_pem=req.get("CaBundle"), authority_arn=req.get("CertificateAuthorityArn"),
                      caa_identities=tuple(identities) if identities is not None else None,
                      default=bool(req.get("Default", False)), dns_provider=req.get("DnsProvider"))
    # Registering with an ACME CA is a network round trip: off the event loop.
    record = await asyncio.to_thread(c.issuers.create, caller, spec)
    return {"Issuer": issuer_shape(record)}


def describe_issuer(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Issuer": issuer_shape(c.issuers.describe(caller, req["Name"]))}


def list_issuers(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    records, token = c.issuers.page(caller, req.get("MaxResults"), req.get("NextToken"))
    return {"Issuers": [issuer_shape(r) for r in records], "NextToken": token}


def update_issuer(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    record = c.issuers.update(caller, req["Name"], req.get("Default"), req.get("ContactEmail"), req.get("CaaIdentities"),
                              req.get("DnsProvider"))
    return {"Issuer": issuer_shape(record)}


def delete_issuer(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.issuers.delete(caller, req["Name"])


def provider_shape(record: DnsProviderRecord) -> dict[str, Any]:
    options = {k: v if isinstance(v, str) else json.dumps(v) for k, v in record.options.items() if v is not None}
    return {"Name": record.name, "DnsProviderArn": record.arn, "Kind": record.kind, "Options": options,
            "SecretOptions": record.secrets_set, "CreatedAt": record.created_at, "UpdatedAt": record.updated_at}


async def create_dns_provider(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    # Checking the settings is a round trip to the provider: off the event loop.
    record = await asyncio.to_thread(c.dns_providers.create, caller, req["Name"], req["Kind"], req.get("Options") or {})
    return {"DnsProvider": provider_shape(record)}


def describe_dns_provider(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"DnsProvider": provider_shape(c.dns_providers.describe(caller, req["Name"]))}


def list_dns_providers(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    records, token = c.dns_providers.page(caller, req.get("MaxResults"), req.get("NextToken"))
    return {"DnsProviders": [provider_shape(r) for r in records], "NextToken": token}


def delete_dns_provider(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.dns_providers.delete(caller, req["Name"])


async def create_validation_records(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    outcomes = await asyncio.to_thread(c.record_writer.create, caller, req["CertificateArn"], req["ProviderName"])
    return {"Records": [{"Name": o.name + ".", "Type": o.type, "Value": o.value + ".", "State": o.state,
                         "DomainNames": list(o.domain_names)} for o in outcomes]}


def _answers(lookups: list[Lookup]) -> list[dict[str, Any]]:
    return [{"Resolver": a.server, "Values": list(a.values), **({"Error": a.error} if a.error else {})} for a in lookups]


def _name_shape(name: NameReport) -> dict[str, Any]:
    dot = "." if name.kind == "CNAME" else ""
    return {"DomainName": name.domain_name, "ValidationStatus": name.status, "RecordName": name.record_name + dot,
            "RecordType": name.kind, "ExpectedValue": name.expected + dot, "Answers": _answers(name.answers),
            "Verdict": name.verdict}


async def diagnose_validation(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    report = await asyncio.to_thread(c.diagnosis.diagnose, caller, req["CertificateArn"])
    result: dict[str, Any] = {
        "CertificateArn": report.arn, "Status": report.status,
        "Names": [_name_shape(n) for n in report.names]}
    if report.issuer:
        result["Issuer"] = report.issuer
    if report.zone:
        result["Delegation"] = {"ValidationZone": report.zone, "Nameservers": _answers(report.delegation),
                                "Reachable": report.reachable, "Verdict": report.delegation_verdict}
    if report.problem:
        problem = report.problem
        result["LastAcmeProblem"] = {k: v for k, v in (("Type", problem.get("type")), ("Detail", problem.get("detail")),
                                                       ("Status", problem.get("status")),
                                                       ("Identifier", problem.get("identifier"))) if v is not None}
    if report.message:
        result["LastMessage"] = report.message
    if report.checked_at:
        result["LastAttemptAt"] = report.checked_at
    return result


def certsmith_operations() -> dict[str, Handler]:
    return {
        "CreateIssuer": create_issuer,
        "DescribeIssuer": describe_issuer,
        "ListIssuers": list_issuers,
        "UpdateIssuer": update_issuer,
        "DeleteIssuer": delete_issuer,
        "DiagnoseValidation": diagnose_validation,
        "CreateDnsProvider": create_dns_provider,
        "DescribeDnsProvider": describe_dns_provider,
        "ListDnsProviders": list_dns_providers,
        "DeleteDnsProvider": delete_dns_provider,
        "CreateValidationRecords": create_validation_records,
        **renewal_operations(),
        **reissue_operations(),
        **delivery_operations(),
        **endpoint_operations(),
        **rule_operations(),
        **report_operations(),
        **agent_operations(),
        **deploy_operations(),
    }
