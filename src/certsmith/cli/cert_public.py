"""``certsmith cert request --public``, ``cert create-records`` and ``cert resend-email``: public certificates.

A public certificate is validated through one CNAME per name, ``_acme-challenge.<name>`` → a label in the
validation zone delegated to certsmith (printed as zone-file lines, or written through a DNS provider by
``create-records``), directly through a DNS provider, by an HTTP redirect, or by approval mails. The request
command may then wait for the certificate (``certsmith doctor validation`` says what it sees when it does not come).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape

from .client import ApiError, Client
from .common import (
    DEFAULT_CREDENTIALS,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    AsJson,
    CaBundle,
    Credentials,
    Endpoint,
    Region,
    api_failures,
    connect,
    fail,
    print_json,
    stdout_console,
)

__all__ = ["ISSUER_TAG", "PROVIDER_TAG", "RECORD_TTL", "create_records", "request_public", "resend_email", "zone_lines"]

console = stdout_console()
ISSUER_TAG = "certsmith:issuer"  # the tag that names the issuer of a public request (ACM's API has no parameter)
PROVIDER_TAG = "certsmith:dns-provider"  # the tag that asks for DNS-01 answered directly through a DNS provider
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


def redirect_lines(detail: dict[str, Any]) -> list[str]:
    """One line per name validated over HTTP: where its web server redirects from, and to."""
    return [f"{r['RedirectFrom']} -> {r['RedirectTo']}" for option in detail.get("DomainValidationOptions") or []
            if (r := option.get("HttpRedirect"))]


def email_lines(detail: dict[str, Any]) -> list[str]:
    return [f"{option['DomainName']}: approval mail to {', '.join(option['ValidationEmails'])}"
            for option in detail.get("DomainValidationOptions") or [] if option.get("ValidationEmails")]


def _instructions(detail: dict[str, Any], direct: str | None) -> list[str]:
    """What the user does next, as lines for stdout: records, redirects, mailboxes to watch, or nothing."""
    if direct is not None:
        return [f"; nothing to add: DNS provider {direct} answers each name's DNS-01 challenge directly"]
    if (redirects := redirect_lines(detail)):
        return [*redirects, "; make the web server of each name redirect every path under the first URL to the same "
                            "path under the second, once (nginx: location ~ ^/\\.well-known/acme-challenge/(.*)$ "
                            "{ return 302 <second URL>$1; })"]
    if (mails := email_lines(detail)):
        return [*mails, "; approve each name with the link in one of its mails (links last 72 hours)"]
    records = zone_lines(detail)
    return [*records, _note(len(records))]


def _shown(option: dict[str, Any]) -> bool:
    return bool(option.get("ResourceRecord") or option.get("HttpRedirect") or option.get("ValidationEmails"))


def _records_of(acm: Client, arn: str, direct: bool) -> dict[str, Any]:
    """DescribeCertificate once every name shows its record, redirect or mailboxes (or the request has failed)."""
    deadline = time.monotonic() + RECORDS_WITHIN
    while True:
        detail: dict[str, Any] = acm.call("describe_certificate", CertificateArn=arn)["Certificate"]
        options = detail.get("DomainValidationOptions") or []
        if detail["Status"] != PENDING or direct or (options and all(_shown(o) for o in options)):
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
    direct = next((t.get("Value") for t in tags if t.get("Key") == PROVIDER_TAG), None)
    if issuer is not None:
        if any(tag.get("Key") == ISSUER_TAG for tag in tags):
            raise fail(f"--issuer {issuer} and --tag {ISSUER_TAG}=... both name the issuer: give one", code=2)
        tags.append({"Key": ISSUER_TAG, "Value": issuer})
    if tags:
        request["Tags"] = tags
    with api_failures():
        acm = connect_to("acm")
        if key_algorithm is None:
            key_algorithm = _default_key_algorithm(connect_to, issuer)
        arn = acm.call("request_certificate", KeyAlgorithm=key_algorithm, **request)["CertificateArn"]
        detail = _records_of(acm, arn, direct is not None)
    if detail["Status"] != PENDING:
        raise _failure(detail)
    lines = _instructions(detail, direct)
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




def create_records(
    arn: Annotated[str, typer.Argument(metavar="ARN", help="a public certificate waiting for validation")],
    provider: Annotated[str, typer.Option("--provider", metavar="NAME", help="the DNS provider to write through "
                                                                             "(certsmith dns-provider list)")],
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Write the validation CNAME of every pending name through a DNS provider; a record already right is left alone,
    so running it again changes nothing."""
    with api_failures():
        records = connect("certsmith", endpoint, credentials, region, ca_bundle).call(
            "create_validation_records", CertificateArn=arn, ProviderName=provider)["Records"]
    if as_json:
        print_json(records)
        return
    for record in records:
        what = "wrote" if record["State"] == "WRITTEN" else "already right"
        console.print(f"{what}: {escape(record['Name'])} {RECORD_TTL} IN {record['Type']} {escape(record['Value'])}",
                      soft_wrap=True, highlight=False)
    written = sum(1 for r in records if r["State"] == "WRITTEN")
    _say(f"{written} record(s) written, {len(records) - written} already right; certsmith checks them now")


def resend_email(
    arn: Annotated[str, typer.Argument(metavar="ARN", help="a certificate validated by email, still pending")],
    domain: Annotated[str, typer.Option("--domain", metavar="NAME", help="the certificate's name to approve")],
    validation_domain: Annotated[str | None, typer.Option(
        "--validation-domain", metavar="DOMAIN", show_default="the name's validation domain",
        help="the domain whose admin@, administrator@, hostmaster@, postmaster@ and webmaster@ get the mail")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
) -> None:
    """Send the approval mails of one name again (new links, valid 72 hours)."""
    with api_failures():
        acm = connect("acm", endpoint, credentials, region, ca_bundle)
        if validation_domain is None:
            detail = acm.call("describe_certificate", CertificateArn=arn)["Certificate"]
            validation_domain = next((o.get("ValidationDomain") for o in detail.get("DomainValidationOptions") or []
                                      if o.get("DomainName") == domain), None) or domain
        acm.call("resend_validation_email", CertificateArn=arn, Domain=domain, ValidationDomain=validation_domain)
    _say(f"approval mails for {domain} sent again to the mailboxes of {validation_domain}")
