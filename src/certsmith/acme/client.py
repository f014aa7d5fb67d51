"""An ACME (RFC 8555) client for DNS-01 orders, on top of certbot's ``acme`` library.

The library does the JWS signing, the messages and the nonces; this module adds the CA bundle handling,
the error mapping (:mod:`certsmith.acme.errors`), repeated ``badNonce`` retries, and polling with a short
backoff instead of the library's one-second sleeps. An :class:`AcmeSession` is not thread-safe: use one per thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from acme import challenges, messages
from acme import errors as acme_errors
from acme.client import ClientNetwork, ClientV2
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy import jwa, jwk
from josepy.interfaces import JSONDeSerializable
from josepy.json_util import field

from certsmith.acme.errors import (
    PROBLEM_PREFIX,
    AcmeError,
    AcmeProblem,
    authorization_problem,
    error_from_response,
    problem_from_json,
    retry_after_seconds,
    translated,
    unreachable,
)

__all__ = ["AcmeAccount", "AcmeEndpoint", "AcmeSession", "DnsChallenge", "PlacedOrder", "directory_meta",
           "generate_account_key", "register_account"]

logger = logging.getLogger(__name__)

BAD_NONCE_ATTEMPTS = 20  # badNonce is always worth retrying (RFC 8555 6.5); a real CA rarely sends two in a row
FIRST_DELAY, MAX_DELAY = 0.02, 1.0
BUNDLE_KEEP = 86400.0  # seconds an unused CA bundle file stays in the cache folder
_CURVES = {"secp256r1": jwa.ES256, "secp384r1": jwa.ES384, "secp521r1": jwa.ES512}


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
class DnsChallenge:
    identifier: str  # as requested: "*.example.test" for a wildcard
    record_name: str  # "_acme-challenge.example.test"
    txt_value: str
    challenge_url: str
    authorization_url: str
    status: str  # "pending" or "valid"


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    url: str
    finalize_url: str
    challenges: list[DnsChallenge]
    status: str


def generate_account_key() -> bytes:
    """A new EC P-256 account key, as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def directory_meta(endpoint: AcmeEndpoint) -> dict[str, Any]:
    """The directory's ``meta`` object (termsOfService, caaIdentities, externalAccountRequired, ...)."""
    net = _Network(endpoint)
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
    net = _Network(endpoint, key_pem)
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
    """Orders with DNS-01 challenges, for one account at one CA.

    When the CA no longer knows the account (:class:`AcmeProblem` with ``code == "accountDoesNotExist"``, e.g. a
    test CA that restarted), register the same key again with :func:`register_account` and use the new account.
    """

    def __init__(self, endpoint: AcmeEndpoint, account: AcmeAccount, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.account = account
        self._net = _Network(endpoint, account.key_pem, account.uri, timeout)
        self._directory: messages.Directory | None = None

    def close(self) -> None:
        self._net.session.close()

    def __enter__(self) -> AcmeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_order(self, names: Sequence[str], replaces: str | None = None) -> PlacedOrder:
        """Place an order for DNS names; ``replaces`` is the ARI certificate id of the certificate it renews."""
        wanted = _checked_names(names)
        body = _NewOrder(identifiers=[messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in wanted],
                         replaces=replaces)
        with translated():
            response = self._post(self._dir()["newOrder"], body)
            order = messages.Order.from_json(response.json())
            url = response.headers.get("Location")
            if not url:
                raise AcmeError("the ACME server created the order but did not say where (no Location header)")
            found = [self._challenge(self._authorization(authz_url)[0], authz_url) for authz_url in order.authorizations]
        found.sort(key=lambda c: wanted.index(c.identifier) if c.identifier in wanted else len(wanted))
        return PlacedOrder(url, order.finalize, found, order.status.name)

    def answer(self, challenge: DnsChallenge) -> None:
        """Tell the CA the TXT record is in place. An already valid challenge needs nothing."""
        if challenge.status == "valid":
            return
        with translated():
            try:
                self._post(challenge.challenge_url, challenges.DNS01Response())
            except AcmeProblem:  # answered before (a retry after a restart): fine if the CA is on it already
                authz, _ = self._authorization(challenge.authorization_url)
                if authz.status.name not in ("valid", "processing"):
                    raise

    def wait_authorizations(self, order: PlacedOrder, deadline: float) -> None:
        """Poll the order's authorizations until all are valid (``deadline`` on :func:`time.monotonic`).

        Raises :class:`AcmeProblem` (with ``identifier``) when one fails, :class:`TimeoutError` past the deadline.
        """
        waiting = list(dict.fromkeys(c.authorization_url for c in order.challenges if c.status != "valid"))
        poller = _Poller(deadline, "the authorizations")
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
        poller = _Poller(deadline, "the certificate")
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

    def _challenge(self, authz: messages.Authorization, authz_url: str) -> DnsChallenge:
        name = authz.identifier.value
        requested = f"*.{name}" if authz.wildcard else name
        status = authz.status.name
        dns = [c for c in authz.challenges if isinstance(c.chall, challenges.DNS01)]
        if status not in ("pending", "valid"):
            raise authorization_problem(authz)
        if not dns and status == "pending":
            raise AcmeError(f"the ACME server offers no dns-01 challenge for {requested}")
        if not dns:  # valid already, through another challenge type
            return DnsChallenge(requested, f"_acme-challenge.{name}", "", authz.challenges[0].uri, authz_url, status)
        assert self._net.key is not None
        chall: challenges.DNS01 = dns[0].chall
        return DnsChallenge(requested, chall.validation_domain_name(name), chall.validation(self._net.key), dns[0].uri,
                            authz_url, status)


class _NewOrder(messages.NewOrder):
    replaces: str | None = field("replaces", omitempty=True)  # draft-ietf-acme-ari


class _Network(ClientNetwork):
    """The library's network layer, with certsmith's CA bundle, timeouts, errors and badNonce retries."""

    def __init__(self, endpoint: AcmeEndpoint, key_pem: bytes | None = None, account_uri: str | None = None,
                 timeout: float = 30.0) -> None:
        key, alg = _jwk(key_pem) if key_pem is not None else (None, jwa.ES256)
        account = messages.RegistrationResource(body=messages.Registration(), uri=account_uri) if account_uri else None
        super().__init__(key=key, account=account, alg=alg, user_agent=endpoint.user_agent)
        self._bundle = endpoint.ca_bundle_pem
        self._verify: str | bool = _ca_bundle_path(self._bundle) if self._bundle else True
        self._timeout = timeout

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if self._bundle and not os.path.exists(str(self._verify)):  # removed by a temp folder cleaner
            self._verify = _ca_bundle_path(self._bundle)
        kwargs["verify"] = self._verify  # a path: requests then ignores REQUESTS_CA_BUNDLE and the like
        kwargs["timeout"] = self._timeout
        kwargs.setdefault("headers", {}).setdefault("User-Agent", self.user_agent)
        try:
            response = self.session.request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            raise unreachable(method, url, exc, self._timeout) from exc
        response.encoding = "utf-8"
        return response

    @classmethod
    def _check_response(cls, response: requests.Response, content_type: str | None = None) -> requests.Response:
        if not response.ok:
            raise error_from_response(response)
        return super()._check_response(response, content_type=content_type)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for attempt in range(1, BAD_NONCE_ATTEMPTS + 1):
            try:
                return self._post_once(*args, **kwargs)
            except AcmeProblem as problem:
                if problem.code != "badNonce" or attempt == BAD_NONCE_ATTEMPTS:
                    raise
                logger.debug("badNonce from %s, retrying (attempt %d)", args[0] if args else "?", attempt + 1)
        raise AssertionError("unreachable")


class _Poller:
    """Sleeps between polls: 20 ms, doubling up to 1 s, or the server's Retry-After; TimeoutError past the deadline."""

    def __init__(self, deadline: float, what: str) -> None:
        self.deadline, self.what, self.delay = deadline, what, FIRST_DELAY

    def sleep(self, retry_after: float | None) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self.what} did not become valid before the deadline")
        time.sleep(min(retry_after if retry_after is not None else self.delay, remaining))
        self.delay = min(self.delay * 2, MAX_DELAY)


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


def _jwk(key_pem: bytes) -> tuple[jwk.JWK, jwa.JWASignature]:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("key_pem: not an unencrypted PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return jwk.JWKEC(key=key), _CURVES[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return jwk.JWKRSA(key=key), jwa.RS256
    raise ValueError("key_pem: the account key must be EC P-256, P-384, P-521 or RSA of 2048 bits or more")


def _ca_bundle_path(pem: str) -> str:
    """A file holding ``pem``, named by its hash in a per-user folder under the temporary folder.

    Written once per bundle and touched when used again; bundles unused for a day are removed.
    """
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        certs = []
    if not certs:
        raise ValueError("ca_bundle_pem: no PEM certificate in it")
    data = pem.encode()
    folder = _bundle_folder()
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.pem"
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            os.utime(path)
            return str(path)
    for old in folder.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > BUNDLE_KEEP:
                old.unlink()
    fd, partial = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)
    return str(path)


def _bundle_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"certsmith-ca-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022:
        return folder
    global _PRIVATE_FOLDER  # someone else's folder in the way: use a private one (removed at exit)
    if _PRIVATE_FOLDER is None:
        _PRIVATE_FOLDER = tempfile.TemporaryDirectory(prefix="certsmith-ca-")
    return Path(_PRIVATE_FOLDER.name)


_PRIVATE_FOLDER: tempfile.TemporaryDirectory[str] | None = None
