"""What the AWS targets share: their options, boto3 clients, AWS failures as DeployError, and imports into ACM.

Without keys in the options, boto3's default credential chain is used. ``endpoint_url`` (moto, a private endpoint)
is used for every service a target calls.

The ELBv2 and CloudFront targets keep two ACM certificates per binding ("slots"): a new version is imported into
the slot the listener or distribution does not use, then switched to, so what is served changes in one step and
undo switches back to the previous slot, which still holds the previous version.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography import x509

from certsmith.domain.aws_options import check_aws_access
from certsmith.domain.errors import ValidationError

from .base import DeployError, Material, serial_text

__all__ = ["AcmCertificates", "AwsCalls", "AwsOptions", "acm_region", "import_to_spare", "serial_of_pem", "slots_of"]

log = logging.getLogger(__name__)

_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):[0-9]{12}:certificate/[A-Za-z0-9-]+$")
_CREDENTIAL_CODES = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
                               "UnrecognizedClientException", "InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException",
                               "IncompleteSignature", "MissingAuthenticationToken", "AuthFailure", "InvalidSignatureException",
                               "UnauthorizedOperation"})
_MISSING_CODES = frozenset({"ResourceNotFoundException", "ListenerNotFound", "LoadBalancerNotFound", "NoSuchDistribution",
                            "CertificateNotFound"})
_SERVICES = {"acm": "ACM", "elbv2": "Elastic Load Balancing", "cloudfront": "CloudFront"}
_IAM_PREFIXES = {"elbv2": "elasticloadbalancing"}
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(-----END [A-Z0-9 ]+-----|$)", re.S)
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/=]{40,}")
_XML_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,1000})</Message>", re.S)


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsOptions:
    """The region, the credentials (or the default chain) and the endpoint; each target adds its own options."""

    KIND: ClassVar[str] = "aws"

    region: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    def __post_init__(self) -> None:
        kind = self.KIND
        region = check_aws_access(kind, region=self.region, endpoint_url=self.endpoint_url,
                                  access_key_id=self.access_key_id, secret_access_key=self.secret_access_key,
                                  session_token=self.session_token, example_endpoint="https://acm.eu-west-1.amazonaws.com")
        object.__setattr__(self, "region", region)
        if not 0 < self.timeout <= 300:
            raise ValidationError(f"{kind} option 'timeout' must be more than 0 and at most 300 seconds, not "
                                  f"{self.timeout}", field="timeout")
        self._check()

    def _check(self) -> None:
        """A target's own checks of its options (ValidationError naming the field)."""


def acm_region(kind: str, field: str, arn: str, region: str) -> str:
    """``arn`` when it is an ACM certificate ARN in ``region``; ValidationError naming ``field`` otherwise."""
    found = _ACM_ARN.match(arn)
    if not found:
        raise ValidationError(f"{kind} option {field!r}: {arn!r} is not an ACM certificate ARN "
                              "(like arn:aws:acm:eu-west-1:123456789012:certificate/...)", field=field)
    if found.group(1) != region:
        raise ValidationError(f"{kind} option {field!r}: the certificate is in {found.group(1)} but region is {region}",
                              field=field)
    return arn


def serial_of_pem(pem: str) -> str:
    """The serial of a PEM certificate as certsmith shows it (colon-separated hex)."""
    return serial_text(x509.load_pem_x509_certificate(pem.encode()).serial_number)


def _scrub(text: str) -> str:
    """An AWS message fit to show: no PEM blocks or long base64 runs, at most 300 characters."""
    text = _LONG_BASE64.sub("...", _PEM_BLOCK.sub("[PEM]", text)).strip()
    return text if len(text) <= 300 else text[:297] + "..."


class AwsCalls:
    """boto3 clients of one target (made when first used) and its calls, every failure a DeployError."""

    def __init__(self, options: AwsOptions, describe: Callable[[], str]) -> None:
        self.options = options
        self._describe = describe
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.options.region
        if (service, region) not in self._clients:
            import boto3
            from botocore.config import Config

            options = self.options
            if self._session is None:
                self._session = boto3.session.Session(aws_access_key_id=options.access_key_id,
                                                      aws_secret_access_key=options.secret_access_key,
                                                      aws_session_token=options.session_token)
            config = Config(connect_timeout=options.timeout, read_timeout=options.timeout,
                            retries={"mode": "standard", "max_attempts": 3})
            self._clients[service, region] = self._session.client(service, region_name=region,
                                                                  endpoint_url=options.endpoint_url, config=config)
        return self._clients[service, region]

    def call(self, service: str, operation: str, *, region: str | None = None, **kwargs: Any) -> Any:
        """``operation`` of ``service`` (boto3's snake_case name); DeployError with AWS's own message on failure."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        name = _SERVICES.get(service, service)
        target = self._describe()
        try:
            client = self.client(service, region)
            return getattr(client, operation)(**kwargs)
        except ClientError as exc:
            code, text = _error(exc.response)
            action = self.client(service, region).meta.method_to_api_mapping.get(operation, operation)
            api = f"{_IAM_PREFIXES.get(service, service)}:{action}"
            if code in _CREDENTIAL_CODES:
                raise DeployError(target, f"{name} refused the credentials ({code}: {text}): check access_key_id and "
                                  f"secret_access_key (or the default AWS credentials) and that they allow {api}",
                                  reason="credentials") from None
            reason = "missing" if code in _MISSING_CODES else "refused"
            raise DeployError(target, f"{name} refused {api} ({code}: {text})", reason=reason) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise DeployError(target, "no AWS credentials: give access_key_id and secret_access_key, or configure the "
                              "default AWS credentials", reason="credentials") from None
        except (ConnectionError, HTTPClientError) as exc:
            where = self.options.endpoint_url or f"{name} in {region or self.options.region}"
            raise DeployError(target, f"cannot reach {where} ({type(exc).__name__}): check endpoint_url, region and the "
                              "network", reason="unreachable") from None
        except BotoCoreError as exc:
            raise DeployError(target, f"the {name} request failed ({type(exc).__name__}: {_scrub(str(exc))})",
                              reason="refused") from None

    def pages(self, service: str, operation: str, key: str, *, region: str | None = None,
              **kwargs: Any) -> list[Any]:
        """Every item under ``key`` of a Marker/NextMarker-paged operation."""
        items: list[Any] = []
        marker: str | None = None
        while True:
            answer = self.call(service, operation, region=region, **kwargs, **({"Marker": marker} if marker else {}))
            items.extend(answer.get(key) or [])
            marker = answer.get("NextMarker")
            if not marker:
                return items


def _error(response: Mapping[str, Any]) -> tuple[str, str]:
    """(code, message) of an error response; also from an XML body a JSON service's emulator may send instead."""
    error = response.get("Error") or {}
    code, text = str(error.get("Code", "") or "unknown"), str(error.get("Message", ""))
    if text.lstrip().startswith("<"):
        inner_code, inner_text = _XML_CODE.search(text), _XML_MESSAGE.search(text)
        code = inner_code.group(1) if inner_code else code
        text = inner_text.group(1) if inner_text else ""
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if code.isdigit() and status in (401, 403):
        code = "AccessDenied"
    return code, _scrub(text)


class AcmCertificates:
    """Certificates imported into ACM of one region."""

    def __init__(self, calls: AwsCalls, region: str | None = None) -> None:
        self.calls = calls
        self.region = region or calls.options.region

    def import_material(self, material: Material, arn: str | None = None) -> str:
        """Import ``material`` (re-importing into ``arn`` when given); the certificate's ARN."""
        args: dict[str, Any] = {"Certificate": material.certificate_pem.encode(),
                                "PrivateKey": material.private_key_pem.encode()}
        if material.chain_pem.strip():
            args["CertificateChain"] = material.chain_pem.encode()
        if arn is not None:
            args["CertificateArn"] = arn
        else:
            args["Tags"] = [{"Key": "certsmith:certificate", "Value": material.certificate_arn[:256]}]
        answer = self.calls.call("acm", "import_certificate", region=self.region, **args)
        return str(answer["CertificateArn"])

    def serial(self, arn: str) -> str | None:
        """The serial of the certificate ACM holds at ``arn``; None when there is no such certificate."""
        try:
            answer = self.calls.call("acm", "get_certificate", region=self.region, CertificateArn=arn)
        except DeployError as exc:
            if exc.reason == "missing":
                return None
            raise
        return serial_of_pem(str(answer["Certificate"]))

    def delete(self, arn: str, *, quiet: bool = False) -> None:
        """Delete the certificate at ``arn`` (gone already is fine); with ``quiet``, a refusal is only logged."""
        try:
            self.calls.call("acm", "delete_certificate", region=self.region, CertificateArn=arn)
        except DeployError as exc:
            if exc.reason == "missing":
                return
            if not quiet:
                raise
            log.warning("%s: the imported certificate %s was left in ACM: %s", exc.target, arn, exc.problem)

    def reachable(self) -> None:
        """Prove ACM answers with these credentials."""
        self.calls.call("acm", "list_certificates", region=self.region, MaxItems=1)


def slots_of(state: Mapping[str, Any]) -> list[str]:
    """The ACM certificates a binding imported (at most two), from its remembered state."""
    found = state.get("ImportedArns") or []
    return [str(arn) for arn in found if isinstance(arn, str)][:2] if isinstance(found, list) else []


def import_to_spare(acm: AcmCertificates, material: Material, slots: Sequence[str],
                    in_use: Sequence[str]) -> tuple[str, bool]:
    """Import ``material`` into a slot that is not in use (a new import when there is none, or it is gone).

    Returns the certificate's ARN and whether it is a new import.
    """
    spare = next((arn for arn in slots if arn not in in_use), None)
    if spare is not None:
        try:
            return acm.import_material(material, spare), False
        except DeployError as exc:
            if exc.reason != "missing":
                raise
            log.warning("%s: the imported certificate %s is gone from ACM; importing anew", exc.target, spare)
    return acm.import_material(material), True
