"""The one exception tree of certsmith.

    CertsmithError
    ├── UserError                      the caller can fix it (4xx on the wire)
    │   ├── ValidationError            a field breaks a shape rule (length, pattern, enum, required)
    │   ├── InvalidArgsError           arguments are well-formed but do not fit together
    │   ├── InvalidArnError            an ARN is malformed or names another service/region
    │   ├── InvalidNextTokenError
    │   ├── InvalidPolicyError
    │   ├── InvalidRequestError
    │   ├── InvalidStateError          the resource is not in a state that allows the operation
    │   ├── InvalidTagError
    │   ├── TooManyTagsError
    │   ├── LimitExceededError
    │   ├── LockoutPreventedError
    │   ├── MalformedCSRError
    │   ├── MalformedCertificateError
    │   ├── CertificateMismatchError
    │   ├── PermissionAlreadyExistsError
    │   ├── RequestAlreadyProcessedError
    │   ├── RequestInProgressError
    │   ├── RequestFailedError
    │   ├── ResourceNotFoundError
    │   ├── ResourceInUseError
    │   ├── ConcurrentModificationError
    │   ├── DnsProviderError           a DNS provider refused or could not be reached (names provider and record)
    │   ├── UnknownOperationError
    │   ├── PayloadTooLargeError
    │   ├── AccessDeniedError          the caller's key may not call this operation or touch this resource
    │   └── AuthenticationError        bad or missing credentials or signature
    │       ├── UnrecognizedClientError
    │       └── InvalidSignatureError
    └── InternalError                  certsmith's own fault (5xx); never shows internals

Every error has a stable ``code`` (the class's wire name is chosen at the edge, by table) and a
``message`` meant for people. Messages never contain key material.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "CertificateMismatchError",
    "CertsmithError",
    "ConcurrentModificationError",
    "ConflictError",
    "DnsProviderError",
    "InternalError",
    "InvalidArgsError",
    "InvalidArnError",
    "InvalidEventPatternError",
    "InvalidNextTokenError",
    "InvalidPolicyError",
    "InvalidRequestError",
    "InvalidSignatureError",
    "InvalidStateError",
    "InvalidTagError",
    "LimitExceededError",
    "LockoutPreventedError",
    "MalformedCSRError",
    "MalformedCertificateError",
    "PayloadTooLargeError",
    "PermissionAlreadyExistsError",
    "RequestAlreadyProcessedError",
    "RequestFailedError",
    "RequestInProgressError",
    "ResourceInUseError",
    "ResourceNotFoundError",
    "TooManyTagsError",
    "UnknownOperationError",
    "UnrecognizedClientError",
    "UserError",
    "ValidationError",
]


class CertsmithError(Exception):
    code = "certsmith_error"

    def __init__(self, message: str, *, field: str | None = None, arn: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.arn = arn


class UserError(CertsmithError):
    code = "user_error"


class InternalError(CertsmithError):
    code = "internal_error"


class ValidationError(UserError):
    code = "validation"


class InvalidEventPatternError(ValidationError):
    """EventBridge's InvalidEventPatternException: the pattern is not one EventBridge would take."""

    code = "invalid_event_pattern"


class InvalidArgsError(UserError):
    code = "invalid_args"


class InvalidArnError(UserError):
    code = "invalid_arn"


class InvalidNextTokenError(UserError):
    code = "invalid_next_token"


class InvalidPolicyError(UserError):
    code = "invalid_policy"


class InvalidRequestError(UserError):
    code = "invalid_request"


class InvalidDomainValidationOptionsError(UserError):
    code = "invalid_domain_validation_options"


class InvalidStateError(UserError):
    code = "invalid_state"


class InvalidTagError(UserError):
    code = "invalid_tag"


class TooManyTagsError(UserError):
    code = "too_many_tags"


class LimitExceededError(UserError):
    code = "limit_exceeded"


class LockoutPreventedError(UserError):
    code = "lockout_prevented"


class MalformedCSRError(UserError):
    code = "malformed_csr"


class MalformedCertificateError(UserError):
    code = "malformed_certificate"


class CertificateMismatchError(UserError):
    code = "certificate_mismatch"


class PermissionAlreadyExistsError(UserError):
    code = "permission_already_exists"


class RequestAlreadyProcessedError(UserError):
    code = "request_already_processed"


class RequestInProgressError(UserError):
    code = "request_in_progress"


class RequestFailedError(UserError):
    code = "request_failed"


class ResourceNotFoundError(UserError):
    code = "resource_not_found"


class ResourceInUseError(UserError):
    code = "resource_in_use"


class ConcurrentModificationError(UserError):
    code = "concurrent_modification"


class DnsProviderError(UserError):
    """A DNS provider refused a change or could not be reached; the message names the provider and the record."""

    code = "dns_provider"


class ConflictError(UserError):
    """The resource is not in a state the request can apply to (ACM's ConflictException)."""

    code = "conflict"


class UnknownOperationError(UserError):
    code = "unknown_operation"


class PayloadTooLargeError(UserError):
    code = "payload_too_large"


class AccessDeniedError(UserError):
    """The caller is known, but its key may not do this (an agent's key outside the agent operations)."""

    code = "access_denied"


class AuthenticationError(UserError):
    code = "authentication"


class UnrecognizedClientError(AuthenticationError):
    code = "unrecognized_client"


class InvalidSignatureError(AuthenticationError):
    code = "invalid_signature"
