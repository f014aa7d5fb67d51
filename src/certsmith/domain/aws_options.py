"""The options every plugin that calls AWS shares (a DNS provider on Route 53, the AWS deployment targets): a region,
keys (or boto3's default chain), an endpoint URL. Checked here once, with errors naming the option."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import ValidationError

__all__ = ["REGION", "check_aws_access"]

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


def check_aws_access(kind: str, *, region: str, endpoint_url: str | None, access_key_id: str | None,
                     secret_access_key: str | None, session_token: str | None, example_endpoint: str) -> str:
    """Check the shared options of ``kind``; the region, normalized. ValidationError naming the option otherwise."""
    if (access_key_id is None) != (secret_access_key is None):
        missing = "secret_access_key" if secret_access_key is None else "access_key_id"
        raise ValidationError(f"{kind} option {missing!r} is required with the other one (or give neither, to use "
                              "the default AWS credentials)", field=missing)
    if session_token is not None and access_key_id is None:
        raise ValidationError(f"{kind} option 'session_token' needs 'access_key_id' and 'secret_access_key'",
                              field="session_token")
    if access_key_id is not None and not re.fullmatch(r"[\x21-\x7e]+", access_key_id):
        raise ValidationError(f"{kind} option 'access_key_id' must be printable characters without spaces",
                              field="access_key_id")
    normal = region.strip().lower()
    if not REGION.match(normal):
        raise ValidationError(f"{kind} option 'region': {region!r} is not an AWS region (like eu-west-1)", field="region")
    if endpoint_url is not None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValidationError(f"{kind} option 'endpoint_url': {endpoint_url!r} is not an http(s) URL "
                                  f"(like {example_endpoint})", field="endpoint_url")
    return normal
