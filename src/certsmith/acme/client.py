"""An ACME (RFC 8555) client for DNS-01 and HTTP-01 orders, on top of certbot's ``acme`` library.

The library does the JWS signing, the messages and the nonces; this module adds the CA bundle handling,
the error mapping (:mod:`certsmith.acme.errors`), repeated ``badNonce`` retries, and polling with a short
backoff instead of the library's one-second sleeps (:mod:`certsmith.acme.network`). An :class:`AcmeSession` is
not thread-safe: use one per thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from acme import challenges, messages
from acme import errors as acme_errors
from acme.client import ClientV2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.interfaces import JSONDeSerializable
from josepy.json_util import field

from certsmith.acme.ari import RenewalInfo, certificate_id, check_certificate_id, first_certificate, parse_renewal_info
from certsmith.acme.errors import (
    PROBLEM_PREFIX,
    AcmeError,
    AcmeProblem,
    authorization_problem,
    problem_from_json,
    retry_after_seconds,
    translated,
)
from certsmith.acme.network import Network, Poller

__all__ = ["CHALLENGE_TYPES", "AcmeAccount", "AcmeEndpoint", "AcmeSession", "Challenge", "DnsChallenge", "PlacedOrder",
           "directory_meta", "generate_account_key", "register_account"]

CHALLENGE_TYPES = ("dns-01", "http-01")
_CHALLENGE_CLASSES: dict[str, type[challenges.KeyAuthorizationChallenge]] = {
    "dns-01": challenges.DNS01, "http-01": challenges.HTTP01}
_RESPONSES: dict[str, type[challenges.KeyAuthorizationChallengeResponse]] = {
    "dns-01": challenges.DNS01Response, "http-01": challenges.HTTP01Response}


@dataclass(frozen=True, slots=True)
class AcmeEndpoint:
    directory_url: str
    ca_bundle_pem: str | None = None  # trusted for the directory's TLS instead of the default CAs
    user_agent: str = "certsmith"


@dataclass(frozen=True, slots=True)
class AcmeAccount:
    uri: str
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class Challenge:
    """One authorization's challenge of the type the order asked for."""

    identifier: str  # as requested: "*.example.test" for a wildcard
    type: str  # "dns-01" or "http-01"
    token: str  # base64url, as the CA sent it ("" for an authorization valid through another type)
    record_name: str  # dns-01: "_acme-challenge.example.test"; http-01: ""
    value: str  # dns-01: the TXT value; http-01: the key authorization served at /.well-known/acme-challenge/<token>
    challenge_url: str
    authorization_url: str
    status: str  # "pending" or "valid"

    @property
    def txt_value(self) -> str:
        """The dns-01 TXT value (``value``)."""
        return self.value


DnsChallenge = Challenge


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    url: str
    finalize_url: str
    challenges: list[Challenge]
    status: str


def generate_account_key() -> bytes:
    """A new EC P-256 account key, as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def directory_meta(endpoint: AcmeEndpoint) -> dict[str, Any]:
    """The directory's ``meta`` object (termsOfService, caaIdentities, externalAccountRequired, ...)."""
    net = Network(endpoint)
    with translated(), contextlib.closing(net.session):
        document = net.get(endpoint.directory_url).json()
    meta = document.get("meta") if isinstance(document, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def register_account(endpoint: AcmeEndpoint, key_pem: bytes, email: str | None, eab_kid: str | None = None,
                     eab_hmac_key: str | None = None) -> AcmeAccount:
    """Create the account of ``key_pem`` (agreeing to the terms of service), or find it if it exists.

    External Account Binding is used when ``eab_kid`` and ``eab_hmac_key`` (base64url, as CAs hand it out) are given.
    """
    if (eab_kid is None) != (eab_hmac_key is None):
        raise ValueError("eab_kid and eab_hmac_key: give both or neither")
    if email is not None and (not email or "@" not in email or any(c in email for c in ", \t\r\n")):
        raise ValueError("email: must be one address such as admin@example.com")
    net = Network(endpoint, key_pem)
    with translated(), contextlib.closing(net.session):
        directory = ClientV2.get_directory(endpoint.directory_url, net)
        binding = None
        if eab_kid is not None and eab_hmac_key is not None:
            assert net.key is not None
            binding = messages.ExternalAccountBinding.from_data(net.key.public_key(), eab_kid,
                                                                _checked_hmac_key(eab_hmac_key), directory)
        registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True,
                                                          external_account_binding=binding)
        try:
            uri = ClientV2(directory, net).new_account(registration).uri
        except acme_errors.ConflictError as existing:  # 200 + Location: this key's account exists
            uri = existing.location
    if not uri:
        raise AcmeError("the ACME server created the account but did not say where (no Location header)")
    return AcmeAccount(uri, key_pem)


class AcmeSession:
    """Orders with DNS-01 or HTTP-01 challenges, for one account at one CA.

    When the CA no longer knows the account (:class:`AcmeProblem` with ``code == "accountDoesNotExist"``, e.g. a
    test CA that restarted), register the same key again with :func:`register_account` and use the new account.
    """

    def __init__(self, endpoint: AcmeEndpoint, account: AcmeAccount, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.account = account
        self._net = Network(endpoint, account.key_pem, account.uri, timeout)
        self._directory: messages.Directory | None = None

    def close(self) -> None:
        self._net.session.close()

    def __enter__(self) -> AcmeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_order(self, names: Sequence[str], replaces: str | None = None,
                  challenge_type: str = "dns-01") -> PlacedOrder:
        """Place an order for DNS names, with a ``challenge_type`` challenge (dns-01 or http-01) for each name.

        ``replaces`` is the ARI certificate id of the certificate it renews (RFC 9773 §5; see
        :func:`certsmith.acme.ari.certificate_id`). :class:`AcmeError` when the CA offers no challenge of that type
        for a name (CAs validate wildcard names with dns-01 only).
        """
        if challenge_type not in CHALLENGE_TYPES:
            raise ValueError(f"challenge_type: {challenge_type!r} is not one of {', '.join(CHALLENGE_TYPES)}")
        if replaces is not None:
            check_certificate_id(replaces)
        wanted = _checked_names(names)
        body = _NewOrder(identifiers=[messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in wanted],
                         replaces=replaces)
        with translated():
            response = self._post(self._dir()["newOrder"], body)
            order = messages.Order.from_json(response.json())
            url = response.headers.get("Location")
            if not url:
                raise AcmeError("the ACME server created the order but did not say where (no Location header)")
            found = [self._challenge(self._authorization(authz_url)[0], authz_url, challenge_type)
                     for authz_url in order.authorizations]
        found.sort(key=lambda c: wanted.index(c.identifier) if c.identifier in wanted else len(wanted))
        return PlacedOrder(url, order.finalize, found, order.status.name)

    def answer(self, challenge: Challenge) -> None:
        """Tell the CA the challenge is ready (TXT record or key authorization in place). A valid one needs nothing."""
        if challenge.status == "valid":
            return
        response = _RESPONSES.get(challenge.type)
        if response is None:
            raise ValueError(f"challenge: type {challenge.type!r} is not one of {', '.join(CHALLENGE_TYPES)}")
        with translated():
            try:
                self._post(challenge.challenge_url, response())
            except AcmeProblem:  # answered before (a retry after a restart): fine if the CA is on it already
                authz, _ = self._authorization(challenge.authorization_url)
                if authz.status.name not in ("valid", "processing"):
                    raise

    def wait_authorizations(self, order: PlacedOrder, deadline: float) -> None:
        """Poll the order's authorizations until all are valid (``deadline`` on :func:`time.monotonic`).

        Raises :class:`AcmeProblem` (with ``identifier``) when one fails, :class:`TimeoutError` past the deadline.
        """
        waiting = list(dict.fromkeys(c.authorization_url for c in order.challenges if c.status != "valid"))
        poller = Poller(deadline, "the authorizations")
        with translated():
            while waiting:
                retry_after = None
                for url in list(waiting):
                    authz, response = self._authorization(url)
                    status = authz.status.name
                    if status == "valid":
                        waiting.remove(url)
                    elif status not in ("pending", "processing"):
                        raise authorization_problem(authz)
                    else:
                        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                if waiting:
                    poller.sleep(retry_after)

    def finalize(self, order: PlacedOrder, csr_pem: bytes, deadline: float) -> str:
        """Finalize with ``csr_pem``, wait for the certificate and return the full chain PEM (leaf first).

        An order finalized before (a retry after a restart) is not finalized again: its certificate is fetched.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise ValueError("csr_pem: not a PEM certificate signing request") from None
        resource = messages.OrderResource(body=messages.Order(finalize=order.finalize_url), uri=order.url,
                                          csr_pem=csr.public_bytes(serialization.Encoding.PEM), authorizations=[])
        poller = Poller(deadline, "the certificate")
        with translated():
            try:
                body, retry_after = ClientV2(self._dir(), self._net).begin_finalization(resource).body, None
            except AcmeProblem as problem:  # finalized before (a retry after a restart)?
                body, retry_after = self._order(order.url)
                if problem.code != "orderNotReady" or body.status.name not in ("ready", "processing", "valid"):
                    raise
            while True:
                status = body.status.name
                if status == "valid" and body.certificate:
                    return _checked_chain(self._post(body.certificate, None).text)
                if status == "invalid":
                    if body.error is not None:
                        raise problem_from_json(body.error.to_json())
                    raise AcmeProblem("about:blank", "the order became invalid")
                if status == "ready":  # the finalization was not taken (the order was not ready yet): again
                    ClientV2(self._dir(), self._net).begin_finalization(resource)
                elif status == "pending":
                    raise AcmeProblem(PROBLEM_PREFIX + "orderNotReady", "the order's authorizations are not all valid")
                poller.sleep(retry_after)
                body, retry_after = self._order(order.url)

    def order_state(self, url: str) -> str:
        """The order's status: pending, ready, processing, valid or invalid."""
        with translated():
            return str(self._order(url)[0].status.name)

    def supports_renewal_info(self) -> bool:
        """Whether the CA's directory offers renewalInfo (ACME Renewal Information, RFC 9773)."""
        with translated():
            return self._renewal_info_url() is not None

    def renewal_info(self, certificate_pem: str) -> RenewalInfo | None:
        """The CA's suggested renewal window for a certificate it issued (the first one of ``certificate_pem``).

        None when the directory has no renewalInfo. An unauthenticated GET with the session's TLS trust: errors as
        the rest of the client (:class:`AcmeUnavailable`, :class:`AcmeProblem`; :class:`AcmeError` for a malformed
        answer). RFC 9773 asks clients not to ask about a certificate that has expired: that is the caller's check.
        """
        cert_id = certificate_id(first_certificate(certificate_pem))
        with translated():
            base = self._renewal_info_url()
            if base is None:
                return None
            url = f"{base.rstrip('/')}/{cert_id}"
            response = self._net.get(url, content_type="")  # JSON or not, read below
            try:
                document = response.json()
            except ValueError:
                raise AcmeError(f"the ACME server's renewalInfo for {cert_id} is not JSON") from None
            return parse_renewal_info(document, retry_after_seconds(response.headers.get("Retry-After")),
                                      f"the ACME server's renewalInfo for {cert_id}")

    def _renewal_info_url(self) -> str | None:
        try:
            url = self._dir()["renewalInfo"]
        except KeyError:
            return None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise AcmeError(f"the ACME server's directory has a renewalInfo that is not a URL: {url!r}")
        return url

    def _dir(self) -> messages.Directory:
        if self._directory is None:
            self._directory = ClientV2.get_directory(self.endpoint.directory_url, self._net)
        return self._directory

    def _post(self, url: str, body: JSONDeSerializable | None) -> requests.Response:
        return self._net.post(url, body, new_nonce_url=self._dir()["newNonce"])

    def _authorization(self, url: str) -> tuple[messages.Authorization, requests.Response]:
        authzr, response = ClientV2(self._dir(), self._net).poll(
            messages.AuthorizationResource(uri=url, body=messages.Authorization()))
        return authzr.body, response

    def _order(self, url: str) -> tuple[messages.Order, float | None]:
        response = self._post(url, None)
        return messages.Order.from_json(response.json()), retry_after_seconds(response.headers.get("Retry-After"))

    def _challenge(self, authz: messages.Authorization, authz_url: str, challenge_type: str) -> Challenge:
        name = authz.identifier.value
        requested = f"*.{name}" if authz.wildcard else name
        status = authz.status.name
        kind = _CHALLENGE_CLASSES[challenge_type]
        offered = [c for c in authz.challenges if isinstance(c.chall, kind)]
        if status not in ("pending", "valid"):
            raise authorization_problem(authz)
        record_name = f"_acme-challenge.{name}" if challenge_type == "dns-01" else ""
        if not offered and status == "pending":
            types = ", ".join(sorted({c.chall.typ for c in authz.challenges})) or "none"
            hint = " (ACME CAs validate wildcard names with dns-01 only)" if authz.wildcard else ""
            raise AcmeError(f"the ACME server offers no {challenge_type} challenge for {requested}{hint}; "
                            f"it offers: {types}")
        if not offered:  # valid already, through another challenge type
            return Challenge(requested, challenge_type, "", record_name, "", authz.challenges[0].uri, authz_url, status)
        assert self._net.key is not None
        chall: challenges.KeyAuthorizationChallenge = offered[0].chall
        if isinstance(chall, challenges.DNS01):
            record_name, value = chall.validation_domain_name(name), chall.validation(self._net.key)
        else:
            value = chall.key_authorization(self._net.key)
        return Challenge(requested, challenge_type, chall.encode("token"), record_name, value, offered[0].uri,
                         authz_url, status)


class _NewOrder(messages.NewOrder):
    replaces: str | None = field("replaces", omitempty=True)  # draft-ietf-acme-ari


def _checked_names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str) or not names:
        raise ValueError("names: give at least one DNS name, as a list")
    wanted: list[str] = []
    for raw in names:
        name = raw.strip().lower().removesuffix(".") if isinstance(raw, str) else ""
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"names: {raw!r} is not a DNS name")
        if name not in wanted:
            wanted.append(name)
    return wanted


def _checked_hmac_key(value: str) -> str:
    text = value.strip().rstrip("=")
    try:
        if not text or len(text) % 4 == 1:
            raise binascii.Error
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("eab_hmac_key: not a base64url key (as the CA hands it out)") from None
    if not decoded:
        raise ValueError("eab_hmac_key: empty")
    return text


def _checked_chain(pem: str) -> str:
    try:
        x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise AcmeError("the ACME server's certificate download is not a PEM certificate chain") from None
    return pem if pem.endswith("\n") else pem + "\n"
