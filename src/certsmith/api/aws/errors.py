"""certsmith errors on the AWS wire: ``{"__type", "message"}`` and an HTTP status, by table."""

from __future__ import annotations

from ...domain import errors as e
from .protocol import SerializationError

__all__ = ["wire_error"]

# Most specific class first; the first match wins.
_TABLE: tuple[tuple[type[e.CertsmithError], str, int], ...] = (
    (e.UnrecognizedClientError, "UnrecognizedClientException", 403),
    (e.InvalidSignatureError, "InvalidSignatureException", 403),
    (SerializationError, "SerializationException", 400),
    (e.AccessDeniedError, "AccessDeniedException", 400),
    (e.InvalidEventPatternError, "InvalidEventPatternException", 400),
    (e.ValidationError, "ValidationException", 400),
    (e.InvalidArgsError, "InvalidArgsException", 400),
    (e.InvalidArnError, "InvalidArnException", 400),
    (e.InvalidNextTokenError, "InvalidNextTokenException", 400),
    (e.InvalidPolicyError, "InvalidPolicyException", 400),
    (e.InvalidRequestError, "InvalidRequestException", 400),
    (e.InvalidStateError, "InvalidStateException", 400),
    (e.InvalidDomainValidationOptionsError, "InvalidDomainValidationOptionsException", 400),
    (e.InvalidTagError, "InvalidTagException", 400),
    (e.TooManyTagsError, "TooManyTagsException", 400),
    (e.LimitExceededError, "LimitExceededException", 400),
    (e.LockoutPreventedError, "LockoutPreventedException", 400),
    (e.MalformedCSRError, "MalformedCSRException", 400),
    (e.MalformedCertificateError, "MalformedCertificateException", 400),
    (e.CertificateMismatchError, "CertificateMismatchException", 400),
    (e.PermissionAlreadyExistsError, "PermissionAlreadyExistsException", 400),
    (e.RequestAlreadyProcessedError, "RequestAlreadyProcessedException", 400),
    (e.RequestInProgressError, "RequestInProgressException", 400),
    (e.RequestFailedError, "RequestFailedException", 400),
    (e.ResourceNotFoundError, "ResourceNotFoundException", 400),
    (e.ResourceInUseError, "ResourceInUseException", 400),
    (e.ConcurrentModificationError, "ConcurrentModificationException", 400),
    (e.ConflictError, "ConflictException", 400),
    (e.DnsProviderError, "DnsProviderException", 400),
    (e.UnknownOperationError, "UnknownOperationException", 400),
    (e.PayloadTooLargeError, "ValidationException", 413),
)


def wire_error(error: e.CertsmithError) -> tuple[str, int, str]:
    """(__type, HTTP status, message). Internal errors never show their text."""
    for cls, code, status in _TABLE:
        if isinstance(error, cls):
            return code, status, error.message
    return "InternalFailure", 500, "certsmith could not complete the request; the server log has the details"
