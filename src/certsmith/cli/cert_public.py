"""``certsmith cert request --public``: request a public certificate and print its validation records.

A public certificate is validated through one CNAME per name, ``_acme-challenge.<name>`` → a label in the
validation zone delegated to certsmith. The records are printed as zone-file lines; then the command may
wait for the certificate (``certsmith doctor validation`` says what the resolvers see when it does not come).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import typer

from .client import ApiError, Client
from .common import fail, print_json, stdout_console

__all__ = ["ISSUER_TAG", "RECORD_TTL", "request_public", "zone_lines"]

console = stdout_console()
ISSUER_TAG = "certsmith:issuer"  # the tag that names the issuer of a public request (ACM's API has no parameter)
RECORD_TTL = 300
RECORDS_WITHIN = 30.0  # seconds DescribeCertificate may take to show the validation records (ACM: a few)
POLL_SECONDS = 1.0
PENDING = "PENDING_VALIDATION"
FAILURE_HINTS = {
    "CAA_ERROR": "a CAA record of the name does not allow the issuer",
    "DOMAIN_VALIDATION_DENIED": "the CA could not validate the name",
    "INVALID_PUBLIC_DOMAIN": "a public suffix, such as co.uk, cannot have a certificate",
    "DOMAIN_NOT_ALLOWED": "names under Amazon's domains cannot be requested",
    "PCA_INVALID_ARGS": "is the key algorithm of the private CA's key family?",
    "PCA_INVALID_STATE": "is the issuer's private CA ACTIVE?",
}


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def zone_lines(detail: dict[str, Any]) -> list[str]:
    """One zone-file line per distinct validation record (a wildcard and its base name share one)."""
    records = dict.fromkeys((_absolute(r["Name"]), r["Type"], _absolute(r["Value"]))
                            for option in detail.get("DomainValidationOptions") or []
                            if (r := option.get("ResourceRecord")))
    return [f"{name} {RECORD_TTL} IN {rtype} {value}" for name, rtype, value in records]


def _note(count: int) -> str:
    what = "this record" if count == 1 else f"these {count} records"
    return (f"; add {what} once, at the DNS host of the name: it validates this request and every later request "
            "and renewal for that name")


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _records_of(acm: Client, arn: str) -> dict[str, Any]:
    """DescribeCertificate once every name shows its record (or the request has failed)."""
    deadline = time.monotonic() + RECORDS_WITHIN
    while True:
        detail: dict[str, Any] = acm.call("describe_certificate", CertificateArn=arn)["Certificate"]
        options = detail.get("DomainValidationOptions") or []
        if detail["Status"] != PENDING or (options and all(o.get("ResourceRecord") for o in options)):
            return detail
        if time.monotonic() >= deadline:
            raise ApiError(f"{arn} shows no validation records after {RECORDS_WITHIN:.0f} s; "
                           f"`certsmith cert describe {arn} --json` shows them once they are there")
        time.sleep(0.2)


def _wait_for_issue(acm: Client, arn: str, timeout: float) -> dict[str, Any]:
    """Poll until the request leaves PENDING_VALIDATION or ``timeout`` seconds pass; says each name validated."""
    deadline = time.monotonic() + timeout
    validated: set[str] = set()
    while True:
        detail: dict[str, Any] = acm.call("describe_certificate", CertificateArn=arn)["Certificate"]
        if detail["Status"] != PENDING or time.monotonic() >= deadline:
            return detail
        for option in detail.get("DomainValidationOptions") or []:
            if option.get("ValidationStatus") == "SUCCESS" and option["DomainName"] not in validated:
                validated.add(option["DomainName"])
                _say(f"{option['DomainName']}: validated")
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _failure(detail: dict[str, Any]) -> typer.Exit:
    arn, status = detail["CertificateArn"], detail["Status"]
    reason = detail.get("FailureReason", "OTHER" if status == "FAILED" else "")
    hint = FAILURE_HINTS.get(reason, "")
    return fail(f"the request {arn} is {status}{': ' + reason if reason else ''}{' (' + hint + ')' if hint else ''}; "
                f"`certsmith doctor validation {arn}` says what the resolvers see and what the CA last said")


def _default_key_algorithm(connect_to: Callable[[str], Client], issuer: str | None) -> str:
    """EC_prime256v1, or RSA_2048 when the issuer is a private CA with an RSA key."""
    certsmith = connect_to("certsmith")
    if issuer is not None:
        found: dict[str, Any] | None = certsmith.call("describe_issuer", Name=issuer)["Issuer"]
    else:
        found = next((i for i in certsmith.call("list_issuers").get("Issuers", []) if i.get("IsDefault")), None)
    if found is None or found.get("Type") != "PRIVATE_CA":  # no issuer: RequestCertificate says how to add one
        return "EC_prime256v1"
    authority = connect_to("acm-pca").call("describe_certificate_authority",
                                           CertificateAuthorityArn=found["CertificateAuthorityArn"])
    key = authority["CertificateAuthority"]["CertificateAuthorityConfiguration"]["KeyAlgorithm"]
    return "EC_prime256v1" if key.startswith("EC_") else "RSA_2048"


def request_public(connect_to: Callable[[str], Client], request: dict[str, Any], issuer: str | None,
                   key_algorithm: str | None, wait: bool, timeout: float, quiet: bool, as_json: bool) -> None:
    """RequestCertificate without a CA; print the ARN and the records to add; with ``wait``, wait for the certificate.

    stdout: the ARN, then (without --quiet or --json) one zone-file line per record and a ``;`` note;
    with --json the certificate's description instead. Everything else goes to stderr.
    """
    tags: list[dict[str, str]] = list(request.pop("Tags", []))
    if issuer is not None:
        if any(tag.get("Key") == ISSUER_TAG for tag in tags):
            raise fail(f"--issuer {issuer} and --tag {ISSUER_TAG}=... both name the issuer: give one", code=2)
        tags.append({"Key": ISSUER_TAG, "Value": issuer})
    if tags:
        request["Tags"] = tags
    try:
        acm = connect_to("acm")
        if key_algorithm is None:
            key_algorithm = _default_key_algorithm(connect_to, issuer)
        arn = acm.call("request_certificate", KeyAlgorithm=key_algorithm, **request)["CertificateArn"]
        detail = _records_of(acm, arn)
    except ApiError as exc:
        raise fail(str(exc)) from None
    if detail["Status"] != PENDING:
        raise _failure(detail)
    records = zone_lines(detail)
    lines = [*records, _note(len(records))]
    if quiet:  # stdout holds the ARN alone (or, with --json, the JSON at the end): the records go to stderr
        sys.stdout.write(f"{arn}\n")
        _say("\n".join(lines))
    elif as_json:
        _say("\n".join([arn, *lines]))
    else:
        sys.stdout.write("\n".join([arn, *lines]) + "\n")
    sys.stdout.flush()
    if wait:
        _say(f"waiting for the certificate (up to {timeout:.0f} s; Ctrl-C stops waiting, not the request)")
        try:
            detail = _wait_for_issue(acm, arn, timeout)
        except ApiError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            _say(f"stopped waiting; certsmith goes on: `certsmith cert describe {arn}` shows where it is")
            raise typer.Exit(130) from None
        if detail["Status"] == PENDING:
            raise fail(f"the request {arn} is still {PENDING} after {timeout:.0f} s (certsmith keeps checking for 72 "
                       f"hours); `certsmith doctor validation {arn}` says what the resolvers see")
        if detail["Status"] != "ISSUED":
            raise _failure(detail)
        _say(f"issued: {arn}")
    if as_json:
        print_json(detail)


