"""How the CLI reaches a running certsmith: botocore clients with the credentials file, over HTTP or HTTPS."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
    SSLError,
)

from ..models import MODELS_PATH

__all__ = ["ApiError", "Client", "ClientOptions", "endpoint_problem", "make_client"]

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
DEFAULT_CREDENTIALS = Path("certsmith-data/credentials")
DEFAULT_REGION = "us-east-1"


class ApiError(Exception):
    """A failed API call, in words for people."""


@dataclass(frozen=True, slots=True)
class ClientOptions:
    endpoint: str
    credentials: Path
    region: str
    ca_bundle: Path | None = None  # PEM certificates to trust for an https endpoint, instead of the system's

    def ssl_context(self) -> ssl.SSLContext:
        """What an HTTP client outside botocore (``ca crl``'s download) verifies the server with."""
        if self.ca_bundle is not None:
            return ssl.create_default_context(cafile=str(self.ca_bundle))
        return ssl.create_default_context()


class Client:
    """Calls one service; errors come back as ApiError with the AWS code and message."""

    def __init__(self, raw: Any, options: ClientOptions) -> None:
        self.raw = raw
        self.options = options

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.raw, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ApiError(f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}") from None
        except BotoCoreError as exc:
            raise ApiError(self._explain(exc)) from None
        result.pop("ResponseMetadata", None)
        return result

    def call_all(self, operation: str, items: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a paged list operation: pages followed by NextToken until the last."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(operation, **kwargs)
            found += page.get(items, [])
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def wait(self, waiter: str, **kwargs: Any) -> None:
        try:
            self.raw.get_waiter(waiter).wait(WaiterConfig={"Delay": 1, "MaxAttempts": 120}, **kwargs)
        except BotoCoreError as exc:
            raise ApiError(self._explain(exc)) from None

    def _explain(self, exc: BotoCoreError) -> str:
        if isinstance(exc, SSLError):
            trusted = f"the CA in {self.options.ca_bundle}" if self.options.ca_bundle else "the system's CAs"
            return (f"{exc}\nthe server's certificate is not trusted by {trusted}: pass --ca-bundle with the CA "
                    "that signed it (certsmith serve --tls auto writes <data-dir>/tls/ca.pem), or set "
                    "CERTSMITH_CA_BUNDLE or AWS_CA_BUNDLE")
        if isinstance(exc, NoCredentialsError):
            return _no_key(self.options.credentials)
        if isinstance(exc, EndpointConnectionError):
            return (f"no certsmith answers at {self.options.endpoint}: is `certsmith serve` running there? "
                    "(--endpoint or CERTSMITH_ENDPOINT)")
        return str(exc)


def endpoint_problem(endpoint: str) -> str | None:
    """What is wrong with an --endpoint value, in words for people; None if it is an http(s) URL with a host."""
    what = "an http:// or https:// URL"
    try:
        parts = urlsplit(endpoint.strip())
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        if usable and parts.port == 0:
            raise ValueError("port 0")
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        usable = False
        what += " with a port from 1 to 65535" if "port" in str(exc).lower() else ""
    if usable:
        return None
    return (f"--endpoint must be {what}, e.g. {DEFAULT_ENDPOINT}, not {endpoint!r} "
            "(the value of --endpoint or CERTSMITH_ENDPOINT)")


def make_client(service: str, options: ClientOptions) -> Client:
    problem = endpoint_problem(options.endpoint)
    if problem is not None:
        raise ApiError(problem)
    if not options.credentials.exists():
        raise ApiError(f"no credentials file at {options.credentials}; pass --credentials or set "
                       "AWS_SHARED_CREDENTIALS_FILE (certsmith serve writes <data-dir>/credentials)")
    session = botocore.session.get_session()
    # The credentials file first: the data loader reads the configuration once, and with a profile named but no
    # ~/.aws/config (a fresh machine) botocore would not find the profile in a file set after that.
    session.set_config_variable("credentials_file", str(options.credentials))
    session.set_config_variable("profile", "default")
    try:  # verify=None leaves botocore to its own rules (AWS_CA_BUNDLE, then the system's CAs)
        session.get_component("data_loader").search_paths.append(str(MODELS_PATH))  # certsmith's own API
        raw = session.create_client(service, endpoint_url=options.endpoint, region_name=options.region,
                                    verify=str(options.ca_bundle) if options.ca_bundle else None,
                                    config=Config(retries={"max_attempts": 2}))
    except ProfileNotFound:
        raise ApiError(_no_key(options.credentials)) from None
    except (BotoCoreError, ValueError) as exc:  # botocore's ValueError: an endpoint it cannot use
        raise ApiError(str(exc)) from None
    return Client(raw, options)


def _no_key(credentials: Path) -> str:
    return (f"no access key in {credentials}: it needs a [default] section with aws_access_key_id and "
            "aws_secret_access_key (certsmith serve writes one to <data-dir>/credentials)")
