"""The ACME client's errors: what the CA refused (RFC 7807 problems), and the CA being out of reach."""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import re
from collections.abc import Iterator
from typing import Any

import requests
from acme import errors as acme_errors
from acme import messages
from josepy import errors as jose_errors

__all__ = ["PROBLEM_PREFIX", "AcmeError", "AcmeProblem", "AcmeRateLimited", "AcmeUnavailable", "authorization_problem",
           "error_from_response", "problem_from_json", "retry_after_seconds", "translated", "unreachable"]

PROBLEM_PREFIX = "urn:ietf:params:acme:error:"


class AcmeError(Exception):
    """Base of the ACME client's errors (also: an answer from the CA that does not follow the protocol)."""


class AcmeProblem(AcmeError):
    """The CA refused the request, with an RFC 7807 problem document.

    ``type`` is the problem's URI as the CA sent it (``urn:ietf:params:acme:error:accountDoesNotExist``);
    ``code`` is its short ACME name (``accountDoesNotExist``). ``identifier`` names the name the problem is about,
    in the form it was requested (``*.example.test``), when known.
    """

    def __init__(self, type: str, detail: str, status: int | None = None,
                 subproblems: list[dict[str, Any]] | None = None, identifier: str | None = None) -> None:
        self.type = type
        self.detail = detail
        self.status = status
        self.subproblems = list(subproblems or [])
        self.identifier = identifier
        super().__init__(self.message())

    @property
    def code(self) -> str:
        return self.type.removeprefix(PROBLEM_PREFIX)

    def message(self) -> str:
        about = f" ({self.identifier})" if self.identifier else ""
        text = f"the ACME server refused{about}: {self.code}: {self.detail}"
        for sub in self.subproblems:
            ident = sub.get("identifier")
            name = f"{ident.get('value')}: " if isinstance(ident, dict) else ""
            text += f"; {name}{str(sub.get('type', '')).removeprefix(PROBLEM_PREFIX)}: {sub.get('detail', '')}"
        return text

    def as_dict(self) -> dict[str, Any]:
        shape = {"type": self.type, "detail": self.detail, "status": self.status, "subproblems": self.subproblems}
        if self.identifier:
            shape["identifier"] = self.identifier  # the one name refused: only its validation is marked FAILED
        return shape


class AcmeUnavailable(AcmeError):
    """The CA cannot be used now (connection or TLS failure, timeout, HTTP 5xx): try again later.

    ``retry_after`` is the CA's Retry-After in seconds, when it sent one; ``problem`` its problem document, if any.
    """

    def __init__(self, message: str, retry_after: float | None = None, problem: dict[str, Any] | None = None) -> None:
        self.retry_after = retry_after
        self.problem = problem
        super().__init__(message)


class AcmeRateLimited(AcmeUnavailable):
    """The CA's rate limit (``urn:ietf:params:acme:error:rateLimited`` or HTTP 429): wait ``retry_after`` seconds."""


def retry_after_seconds(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    now = now or datetime.datetime.now(datetime.UTC)
    return max(0.0, (when - now).total_seconds())


def problem_from_json(document: Any, status: int | None = None, identifier: str | None = None) -> AcmeProblem:
    """An :class:`AcmeProblem` from a problem document (a challenge's or order's ``error``, or a response body)."""
    doc = document if isinstance(document, dict) else {}
    subproblems = [sub for sub in doc.get("subproblems") or [] if isinstance(sub, dict)]
    if identifier is None and isinstance(doc.get("identifier"), dict):
        identifier = str(doc["identifier"].get("value") or "") or None
    if status is None and isinstance(doc.get("status"), int):
        status = doc["status"]
    detail = doc.get("detail") or doc.get("title") or ""
    return AcmeProblem(str(doc.get("type") or "about:blank"), str(detail), status, subproblems, identifier)


def error_from_response(response: requests.Response) -> AcmeError:
    """The error for an HTTP response that is not a success."""
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    try:
        document = response.json()
    except ValueError:
        document = None
    where = f"{response.request.method} {response.url}" if response.request is not None else response.url
    if not isinstance(document, dict):
        if status == 429:
            return AcmeRateLimited(f"the ACME server is rate limiting ({where}: HTTP 429)", retry_after)
        if status >= 500:
            return AcmeUnavailable(f"the ACME server failed ({where}: HTTP {status})", retry_after)
        return AcmeError(f"the ACME server answered {where} with HTTP {status} and no problem document")
    problem = problem_from_json(document, status)
    if problem.code == "rateLimited" or status == 429:
        return AcmeRateLimited(f"the ACME server is rate limiting: {problem.detail}", retry_after, problem.as_dict())
    if status >= 500:
        return AcmeUnavailable(f"the ACME server failed ({where}: HTTP {status}): {problem.code}: {problem.detail}",
                               retry_after, problem.as_dict())
    return problem


_REASON = re.compile(r"\[Errno -?\d+\][^'\")\]]*|\[SSL[^\]]*\][^'\")]*|certificate verify failed[^'\")]*")


def unreachable(method: str, url: str, exc: requests.RequestException, timeout: float) -> AcmeUnavailable:
    """The :class:`AcmeUnavailable` for a request that got no HTTP answer."""
    if isinstance(exc, requests.exceptions.SSLError):
        kind = "the TLS handshake failed"
    elif isinstance(exc, requests.exceptions.Timeout):
        kind = f"no answer within {timeout:g} s"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        kind = "the connection failed"
    else:
        kind = "the request failed"
    match = _REASON.search(str(exc))
    reason = match.group(0).strip() if match else type(exc).__name__
    return AcmeUnavailable(f"cannot reach the ACME server ({method} {url}): {kind}: {reason}")


def authorization_problem(authz: messages.Authorization) -> AcmeProblem:
    """The problem of an authorization that did not become valid: its challenge's error, naming the identifier."""
    name = f"*.{authz.identifier.value}" if authz.wildcard else authz.identifier.value
    for chall in authz.challenges:
        if chall.error is not None:
            return problem_from_json(chall.error.to_json(), identifier=name)
    return AcmeProblem("about:blank", f"the authorization is {authz.status.name}", identifier=name)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """The library's own errors, and answers that do not follow the protocol, as :class:`AcmeError`."""
    try:
        yield
    except (AcmeError, TimeoutError, ValueError) as exc:
        if isinstance(exc, requests.exceptions.JSONDecodeError):
            raise AcmeError("the ACME server's answer is not JSON") from exc
        raise
    except (acme_errors.Error, jose_errors.Error, KeyError) as exc:
        raise AcmeError(f"unexpected answer from the ACME server: {type(exc).__name__}: {exc}") from exc
