"""The agent's calls to the server: botocore with certsmith's shipped model, so requests are signed with SigV4."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.config import Config

from ...models import MODELS_PATH
from .config import AgentConfig

__all__ = ["AgentClient"]


class AgentClient:
    """PollAgentWork and ReportDeployment with the agent's key; botocore's errors pass through."""

    def __init__(self, config: AgentConfig) -> None:
        session = botocore.session.get_session()
        session.get_component("data_loader").search_paths.append(str(MODELS_PATH))
        # The long poll holds the connection for up to wait_seconds: the read timeout must outlast it.
        self._wait = config.wait_seconds
        self._raw: Any = session.create_client(
            "certsmith", endpoint_url=config.endpoint, region_name=config.region,
            aws_access_key_id=config.access_key_id, aws_secret_access_key=config.secret_access_key,
            verify=str(config.ca_bundle) if config.ca_bundle else None,
            config=Config(connect_timeout=5, read_timeout=config.wait_seconds + 30, retries={"max_attempts": 1}))

    def poll(self, held: Mapping[str, int], passphrase: bytes, wait: int | None = None) -> list[dict[str, Any]]:
        answer = self._raw.poll_agent_work(WaitSeconds=self._wait if wait is None else wait, Passphrase=passphrase,
                                           Held=[{"BindingArn": arn, "Version": v} for arn, v in held.items()])
        work: list[dict[str, Any]] = answer.get("Work", [])
        return work

    def report(self, binding_arn: str, version: int, serial: str, succeeded: bool, error: str | None = None,
               verified_serial: str | None = None) -> None:
        extra = {k: v for k, v in (("Error", error), ("VerifiedSerial", verified_serial)) if v}
        self._raw.report_deployment(BindingArn=binding_arn, Version=version, Serial=serial,
                                    Status="SUCCEEDED" if succeeded else "FAILED", **extra)
