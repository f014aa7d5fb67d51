"""certsmith's deployment operations: bindings of certificates to targets, and deployments of their versions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ...domain.errors import ValidationError
from ...services.context import Caller
from ...services.deploy.bindings import BindingRecord, BindingSpec
from ...services.deploy.deployments import DeploymentRecord
from ...services.wiring import Container
from .pca import Handler

__all__ = ["binding_shape", "deploy_operations", "deployment_shape"]


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def binding_shape(record: BindingRecord) -> dict[str, Any]:
    options = {k: v if isinstance(v, str) else json.dumps(v) for k, v in record.options.items() if v is not None}
    return _present({
        "BindingArn": record.arn, "BindingId": record.binding_id, "Name": record.name,
        "CertificateArn": record.certificate_arn, "Kind": record.kind, "Target": record.target, "Options": options,
        "SecretOptionsSet": record.secrets_set, "Agent": record.agent, "Verify": record.verify,
        "Rollback": record.rollback, "Status": record.status, "DeployedVersion": record.deployed_version,
        "DeployedSerial": record.deployed_serial, "DeployedAt": record.deployed_at, "LastError": record.last_error,
        "CreatedAt": record.created_at, "UpdatedAt": record.updated_at})


def deployment_shape(record: DeploymentRecord) -> dict[str, Any]:
    shape = _present({
        "DeploymentId": record.deployment_id, "CertificateArn": record.certificate_arn, "Version": record.version,
        "Serial": record.serial, "Trigger": record.trigger, "Status": record.status, "CreatedAt": record.created_at,
        "StartedAt": record.started_at, "FinishedAt": record.finished_at})
    if record.items is not None:
        shape["Items"] = [_present({
            "BindingArn": i.binding_arn, "Kind": i.kind, "Target": i.target, "Status": i.status, "Attempts": i.attempts,
            "PreviousVersion": i.previous_version, "VerifiedSerial": i.verified_serial, "Error": i.error,
            "StartedAt": i.started_at, "FinishedAt": i.finished_at}) for i in record.items]
    return shape


def _options(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationError("Options must be a map of option names to values", field="Options")
    return dict(raw)


async def create_binding(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    spec = BindingSpec(certificate_arn=req["CertificateArn"], kind=req["Kind"], options=_options(req.get("Options")),
                       name=req.get("Name"), agent=req.get("Agent"), verify=req.get("Verify"),
                       rollback=bool(req.get("Rollback", False)), deploy=bool(req.get("Deploy", True)))
    # The target's check (a folder written, a binary run, a cloud account asked) may take a while: off the event loop.
    record, deployment_id = await asyncio.to_thread(c.bindings.create, caller, spec)
    return _present({"Binding": binding_shape(record), "DeploymentId": deployment_id})


def describe_binding(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Binding": binding_shape(c.bindings.describe(caller, req["BindingArn"]))}


def list_bindings(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    records, token = c.bindings.page(caller, req.get("CertificateArn"), req.get("Agent"), req.get("MaxResults"),
                                     req.get("NextToken"))
    return _present({"Bindings": [binding_shape(r) for r in records], "NextToken": token})


async def delete_binding(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    await asyncio.to_thread(c.bindings.delete, caller, req["BindingArn"], bool(req.get("RemoveFromTarget", False)))
    return {}


def run_deployment(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    deployment_id = c.deployments.run(caller, req["CertificateArn"], req.get("BindingArns"), req.get("Version"))
    return {"DeploymentId": deployment_id}


def describe_deployment(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    return {"Deployment": deployment_shape(c.deployments.describe(caller, req["DeploymentId"]))}


def list_deployments(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    records, token = c.deployments.page(caller, req.get("CertificateArn"), req.get("MaxResults"), req.get("NextToken"))
    return _present({"Deployments": [deployment_shape(r) for r in records], "NextToken": token})


def deploy_operations() -> dict[str, Handler]:
    return {
        "CreateBinding": create_binding,
        "DescribeBinding": describe_binding,
        "ListBindings": list_bindings,
        "DeleteBinding": delete_binding,
        "RunDeployment": run_deployment,
        "DescribeDeployment": describe_deployment,
        "ListDeployments": list_deployments,
    }
