"""The ACME client's network layer: certsmith's CA bundle, timeouts, error mapping, badNonce retries and polling."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from acme import messages
from acme.client import ClientNetwork
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy import jwa, jwk

from certsmith.acme.errors import AcmeProblem, error_from_response, unreachable

if TYPE_CHECKING:
    from certsmith.acme.client import AcmeEndpoint

__all__ = ["BAD_NONCE_ATTEMPTS", "BUNDLE_KEEP", "FIRST_DELAY", "MAX_DELAY", "Network", "Poller", "account_jwk",
           "ca_bundle_path"]

logger = logging.getLogger(__name__)

BAD_NONCE_ATTEMPTS = 20  # badNonce is always worth retrying (RFC 8555 6.5); a real CA rarely sends two in a row
FIRST_DELAY, MAX_DELAY = 0.02, 1.0
BUNDLE_KEEP = 86400.0  # seconds an unused CA bundle file stays in the cache folder
_CURVES = {"secp256r1": jwa.ES256, "secp384r1": jwa.ES384, "secp521r1": jwa.ES512}


class Network(ClientNetwork):
    """The library's network layer, with certsmith's CA bundle, timeouts, errors and badNonce retries."""

    def __init__(self, endpoint: AcmeEndpoint, key_pem: bytes | None = None, account_uri: str | None = None,
                 timeout: float = 30.0) -> None:
        key, alg = account_jwk(key_pem) if key_pem is not None else (None, jwa.ES256)
        account = messages.RegistrationResource(body=messages.Registration(), uri=account_uri) if account_uri else None
        super().__init__(key=key, account=account, alg=alg, user_agent=endpoint.user_agent)
        self._bundle = endpoint.ca_bundle_pem
        self._verify: str | bool = ca_bundle_path(self._bundle) if self._bundle else True
        self._timeout = timeout

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if self._bundle and not os.path.exists(str(self._verify)):  # removed by a temp folder cleaner
            self._verify = ca_bundle_path(self._bundle)
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


class Poller:
    """Sleeps between polls: 20 ms, doubling up to 1 s, or the server's Retry-After; TimeoutError past the deadline."""

    def __init__(self, deadline: float, what: str) -> None:
        self.deadline, self.what, self.delay = deadline, what, FIRST_DELAY

    def sleep(self, retry_after: float | None) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self.what} did not become valid before the deadline")
        time.sleep(min(retry_after if retry_after is not None else self.delay, remaining))
        self.delay = min(self.delay * 2, MAX_DELAY)


def account_jwk(key_pem: bytes) -> tuple[jwk.JWK, jwa.JWASignature]:
    """The account key as a JWK, and the signature algorithm that goes with it."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("key_pem: not an unencrypted PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return jwk.JWKEC(key=key), _CURVES[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return jwk.JWKRSA(key=key), jwa.RS256
    raise ValueError("key_pem: the account key must be EC P-256, P-384, P-521 or RSA of 2048 bits or more")


def ca_bundle_path(pem: str) -> str:
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
