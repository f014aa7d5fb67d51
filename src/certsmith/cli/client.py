"""How the CLI reaches a running certsmith: botocore clients with the credentials file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["ApiError", "ClientOptions", "make_client"]


class ApiError(Exception):
    """A failed API call, in words for people."""


@dataclass(frozen=True, slots=True)
class ClientOptions:
    endpoint: str
    credentials: Path
    region: str


def default_options(endpoint: str | None, credentials: Path | None, region: str | None) -> ClientOptions:
    return ClientOptions(
        endpoint=endpoint or os.environ.get("CERTSMITH_ENDPOINT", "http://127.0.0.1:8000"),
        credentials=credentials or Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "certsmith-data/credentials")),
        region=region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


class Client:
    """Calls one service; errors come back as ApiError with the AWS code and message."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.raw, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ApiError(f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}") from None
        except BotoCoreError as exc:
            raise ApiError(str(exc)) from None
        result.pop("ResponseMetadata", None)
        return result

    def wait(self, waiter: str, **kwargs: Any) -> None:
        try:
            self.raw.get_waiter(waiter).wait(WaiterConfig={"Delay": 1, "MaxAttempts": 120}, **kwargs)
        except BotoCoreError as exc:
            raise ApiError(str(exc)) from None


def make_client(service: str, options: ClientOptions) -> Client:
    if not options.credentials.exists():
        raise ApiError(f"no credentials file at {options.credentials}; pass --credentials or set "
                       "AWS_SHARED_CREDENTIALS_FILE (certsmith serve writes <data-dir>/credentials)")
    session = botocore.session.get_session()
    session.set_config_variable("credentials_file", str(options.credentials))
    session.set_config_variable("profile", "default")
    raw = session.create_client(service, endpoint_url=options.endpoint, region_name=options.region,
                                config=Config(retries={"max_attempts": 2}))
    return Client(raw)
