"""Agents on certsmith's API: CreateAgent, ListAgents, DeleteAgent, and the agent's own PollAgentWork (a long poll)
and ReportDeployment."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ...services.context import Caller
from ...services.deploy.agents import AgentRecord, AgentReport, AgentWork
from ...services.wiring import Container
from .pca import Handler

__all__ = ["DEFAULT_WAIT", "POLL_EVERY", "agent_operations"]

DEFAULT_WAIT = 20  # seconds a poll waits for work when WaitSeconds is not given
POLL_EVERY = 0.5  # seconds between looks at the database while a poll waits


def _agent_shape(record: AgentRecord) -> dict[str, Any]:
    shape: dict[str, Any] = {"Name": record.name, "AgentArn": record.arn, "AccessKeyId": record.access_key_id,
                             "CreatedAt": record.created_at}
    if record.last_seen_at is not None:
        shape["LastSeenAt"] = record.last_seen_at
    return shape


def _work_shape(work: AgentWork) -> dict[str, Any]:
    shape: dict[str, Any] = {"BindingArn": work.binding_arn, "CertificateArn": work.certificate_arn, "Kind": work.kind,
                             "Options": work.options, "Version": work.version, "Serial": work.serial,
                             "Certificate": work.certificate_pem, "CertificateChain": work.chain_pem,
                             "PrivateKey": work.private_key_pem}
    if work.verify:
        shape["Verify"] = {k: work.verify[k] for k in ("Host", "Port", "ServerName") if work.verify.get(k) is not None}
    if work.deployment_id:
        shape["DeploymentId"] = work.deployment_id
    shape["Rollback"] = work.rollback
    return shape


def create_agent(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    record, credential = c.agents.create(caller, req["Name"])
    return {"Agent": _agent_shape(record), "SecretAccessKey": credential.secret_access_key}


def list_agents(c: Container, caller: Caller, _req: dict[str, Any]) -> dict[str, Any]:
    return {"Agents": [_agent_shape(r) for r in c.agents.agents(caller)]}


def delete_agent(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    c.agents.delete(caller, req["Name"])


async def poll_agent_work(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    """Answer at once with work; else look again every POLL_EVERY seconds until WaitSeconds have passed."""
    wait = req.get("WaitSeconds")
    deadline = time.monotonic() + (DEFAULT_WAIT if wait is None else wait)
    held = {entry["BindingArn"]: entry["Version"] for entry in req.get("Held") or []}
    passphrase: bytes = req["Passphrase"]
    await asyncio.to_thread(c.agents.touch, caller)
    while True:
        work = await asyncio.to_thread(c.agents.work, caller, held, passphrase)
        left = deadline - time.monotonic()
        if work or left <= 0:
            return {"Work": [_work_shape(w) for w in work]}
        await asyncio.sleep(min(POLL_EVERY, left))


async def report_deployment(c: Container, caller: Caller, req: dict[str, Any]) -> None:
    report = AgentReport(req["BindingArn"], req["Version"], req["Serial"], req["Status"], req.get("Error"),
                         req.get("VerifiedSerial"))
    await asyncio.to_thread(c.agents.report, caller, report)


def agent_operations() -> dict[str, Handler]:
    return {
        "CreateAgent": create_agent,
        "ListAgents": list_agents,
        "DeleteAgent": delete_agent,
        "PollAgentWork": poll_agent_work,
        "ReportDeployment": report_deployment,
    }
