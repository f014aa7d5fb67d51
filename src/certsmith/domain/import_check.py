"""ImportCertificate's checks (reference §10.9), reported the way a person can act on them.

``inspect_bundle`` looks at a certificate, its private key and its chain as given and returns
every problem found, each with what to do about it, and whether ``repair_bundle`` can repair it
safely (line endings, stray whitespace, chain order, the leaf repeated in the chain). The leaf is
the certificate the private key belongs to wherever it stands in the bundle (``chain_order``), so a
bundle in the wrong order is reported as such, not as a key that does not match.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from .chain_order import MAX_SEARCHED, LeafChoice, describe, find_leaf, order_chain, signs

__all__ = ["Bundle", "Problem", "Report", "assemble_bundle", "import_key_algorithm",
           "inspect_bundle", "pem_parts", "repair_bundle"]

MAX_KEY_BYTES = 5 * 1024
MAX_OCSP_URL = 1000
_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----[ \t]*\r?\n(.*?)\r?\n?[ \t]*-----END \1-----", re.S)
_RSA_SIZES = {1024: "RSA_1024", 2048: "RSA_2048", 3072: "RSA_3072", 4096: "RSA_4096"}
_CURVES = {"secp256r1": "EC_prime256v1", "secp384r1": "EC_secp384r1", "secp521r1": "EC_secp521r1"}


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # Certificate, PrivateKey or CertificateChain
    message: str
    repairable: bool = False

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class Bundle:
    certificate: bytes
    private_key: bytes
    chain: bytes | None = None


@dataclass(slots=True)
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # worth knowing; the import goes ahead
    certificate: x509.Certificate | None = None
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None
    chain: list[x509.Certificate] = field(default_factory=list)
    key_algorithm: str | None = None
    leaf_choice: LeafChoice | None = None  # where ``certificate`` stood in the bundle as given, and how it was found

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, message: str, repairable: bool = False) -> None:
        self.problems.append(Problem(where, message, repairable))

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(Problem(where, message, False))


def import_key_algorithm(public_key: object) -> str | None:
    """ACM's KeyAlgorithm name for an imported certificate's key (RSA 1024 included), or None."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return _RSA_SIZES.get(public_key.key_size)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _CURVES.get(public_key.curve.name)
    return None


def _text_problems(report: Report, where: str, data: bytes, kind: str) -> list[tuple[str, bytes]]:
    """The PEM blocks of ``data``, after noting what is wrong with the text around them."""
    if not data.strip():
        report.add(where, f"is empty; give the {kind} in PEM form (-----BEGIN ...-----)")
        return []
    blocks = [(m.group(1).decode(), m.group(0)) for m in _BLOCK.finditer(data)]
    if not blocks:
        if b"-----BEGIN" not in data:
            report.add(where, f"looks like DER (binary) or another encoding where PEM is needed; convert it with "
                              f"`openssl {'x509' if kind != 'private key' else 'pkey'} -inform DER -in FILE -out "
                              f"FILE.pem`")
        else:
            report.add(where, "has a BEGIN line without a matching END line: the PEM is cut short or altered")
        return []
    if b"\r\n" in data:
        report.add(where, "has CRLF (Windows) line endings; PEM needs LF", repairable=True)
    rest = _BLOCK.sub(b"", data).replace(b"\r", b"")
    if rest.strip(b" \t\n"):
        report.add(where, f"has text outside the PEM blocks ({rest.strip()[:40]!r}...); only the "
                          "-----BEGIN/END----- blocks belong there", repairable=True)
    elif rest != b"\n" * rest.count(b"\n") or data.startswith((b" ", b"\t", b"\n", b"\r")):
        report.add(where, "has stray whitespace around the PEM blocks", repairable=True)
    for _, block in blocks:
        lines = block.replace(b"\r", b"").split(b"\n")
        if any(line != line.strip() for line in lines):
            report.add(where, "has spaces or tabs inside a PEM block (the PEM was altered)", repairable=True)
            break
    return blocks


def _load_certificates(report: Report, where: str, blocks: list[tuple[str, bytes]]) -> list[x509.Certificate]:
    certificates = []
    for index, (label, block) in enumerate(blocks):
        if label != "CERTIFICATE":
            report.add(where, f"block {index + 1} is a {label}, not a CERTIFICATE")
            continue
        try:
            with warnings.catch_warnings():  # what pyca only warns of today (a serial that is not positive) it will refuse
                warnings.simplefilter("error", CryptographyDeprecationWarning)
                certificates.append(_readable(x509.load_pem_x509_certificate(_clean(block))))
        except _UNREADABLE as exc:
            report.add(where, f"block {index + 1} is not a readable X.509 certificate ({exc})")
    return certificates


_UNREADABLE = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion, x509.DuplicateExtension,
               x509.UnsupportedGeneralNameType, CryptographyDeprecationWarning)


def _readable(certificate: x509.Certificate) -> x509.Certificate:
    """The certificate, once every part the checks read has parsed (pyca/cryptography parses lazily)."""
    _ = (certificate.version, certificate.issuer.rdns, certificate.subject.rdns, list(certificate.extensions),
         certificate.public_key(), certificate.not_valid_before_utc, certificate.not_valid_after_utc,
         certificate.signature_hash_algorithm, certificate.serial_number, certificate.signature_algorithm_oid)
    return certificate


def _clean(block: bytes) -> bytes:
    lines = [line.strip() for line in block.replace(b"\r", b"").split(b"\n")]
    return b"\n".join(line for line in lines if line) + b"\n"


def _check_certificate(report: Report, certificate: x509.Certificate, now: datetime) -> None:
    if certificate.version is not x509.Version.v3:
        report.add("Certificate", "is not an X.509 version 3 certificate")
    if not certificate.issuer.rdns:
        report.add("Certificate", "has an empty issuer name")
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = sans.get_values_for_type(x509.DNSName) + [str(a) for a in sans.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    if not names and not certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        report.add("Certificate", "names no domain or IP address (no subject CN and no subjectAltName)")
    if certificate.not_valid_after_utc <= now:
        report.add("Certificate", f"expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC; "
                                  "import its renewed certificate instead")
    if certificate.not_valid_before_utc > now:
        report.add("Certificate", f"is not valid until {certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC; "
                                  "import it once that time has come (or check the clock of the machine that made it)")
    report.key_algorithm = import_key_algorithm(certificate.public_key())
    if report.key_algorithm is None:
        report.add("Certificate", f"has a key certsmith cannot import ({_key_text(certificate.public_key())}); "
                                  "it imports RSA 1024/2048/3072/4096 and EC P-256/P-384/P-521 keys")
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        for description in access:
            if len(str(description.access_location.value)) > MAX_OCSP_URL:
                report.add("Certificate", f"has an AIA URL longer than {MAX_OCSP_URL} characters")
    except x509.ExtensionNotFound:
        pass


def _key_text(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"{public_key.key_size}-bit RSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    return type(public_key).__name__.replace("PublicKey", "").replace("_", "")


def _check_key(report: Report, data: bytes) -> None:
    blocks = _text_problems(report, "PrivateKey", data, "private key")
    if len(data) > MAX_KEY_BYTES:
        report.add("PrivateKey", f"is {len(data)} bytes; the limit is {MAX_KEY_BYTES}")
    keys = [(label, block) for label, block in blocks if label.endswith("PRIVATE KEY")]
    others = [label for label, _ in blocks if not label.endswith("PRIVATE KEY") and label != "EC PARAMETERS"]
    if others:
        report.add("PrivateKey", f"holds {', '.join(others)} blocks besides the key; give only the private key")
    if not keys:
        if blocks:
            report.add("PrivateKey", "holds no PRIVATE KEY block")
        return
    if len(keys) > 1:
        report.add("PrivateKey", f"holds {len(keys)} private keys; give exactly one")
    label, block = keys[0]
    if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block:
        report.add("PrivateKey", "is encrypted (protected by a passphrase); decrypt it with "
                                 "`openssl pkey -in key.pem -out key-decrypted.pem`")
        return
    try:
        key = serialization.load_pem_private_key(_clean(block) if b"Proc-Type" not in block else block, None)
    except (ValueError, TypeError) as exc:
        report.add("PrivateKey", f"is not a readable RSA or EC private key ({exc})")
        return
    except UnsupportedAlgorithm as exc:
        report.add("PrivateKey", f"is of a key type certsmith cannot read ({exc}); certsmith imports RSA and EC keys")
        return
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        report.key = key
    else:
        report.add("PrivateKey", f"is a {type(key).__name__.lstrip('_')} key; certsmith imports RSA and EC keys")


def _chain_problems(report: Report, leaf: x509.Certificate, chain: list[x509.Certificate], choice: LeafChoice) -> None:
    self_signed = signs(leaf, leaf)
    first = chain[0] if choice.position else leaf
    if leaf in chain:
        report.add("CertificateChain", "includes the certificate itself; the chain holds only the CAs above it",
                   repairable=True)
        chain = [c for c in chain if c != leaf]
    if choice.position and _misplaced_leaf(report, first, leaf, chain, choice.by_key):
        return
    if not chain:
        if not self_signed:  # optional in ACM too: clients then need the chain from elsewhere
            report.warn("CertificateChain", f"is not given: the certificate is signed by {leaf.issuer.rfc4514_string()!r}, "
                                            "so clients must already hold that CA's certificate and those above it; "
                                            "give them (intermediate, then root) to serve the whole chain")
        return
    if signs(chain[0], leaf) and all(signs(chain[i + 1], chain[i]) for i in range(len(chain) - 1)):
        return
    ordered = order_chain(leaf, chain)
    if ordered is not None:
        report.add("CertificateChain", "is in the wrong order: each certificate must sign the one before it "
                                       f"(expected {', then '.join(describe(c) for c in ordered)})", repairable=True)
        return
    if not any(signs(c, leaf) for c in chain):
        report.add("CertificateChain", f"does not hold the CA that signed the certificate "
                                       f"({leaf.issuer.rfc4514_string()!r}); add that intermediate certificate")
        return
    for index in range(len(chain) - 1 if len(chain) <= MAX_SEARCHED else 0):
        if not signs(chain[index + 1], chain[index]) and not any(signs(c, chain[index]) for c in chain):
            report.add("CertificateChain", f"certificate {index + 1} ({describe(chain[index])}) is signed by "
                                           f"{chain[index].issuer.rfc4514_string()!r}, which is not in the chain; "
                                           "add the missing intermediate")
            return
    report.add("CertificateChain", "does not link up: its certificates do not each sign the one before")


def _misplaced_leaf(report: Report, first: x509.Certificate, leaf: x509.Certificate, chain: list[x509.Certificate],
                    by_key: bool) -> bool:
    """Reports a bundle whose leaf is not first; True when that problem also gives the order of all of it."""
    why = "the private key is its key" if by_key else "the one certificate that signs no other in the bundle"
    text = (f"the bundle is out of order: it starts with {describe(first)}, but the certificate to import is "
            f"{describe(leaf)} ({why})")
    ordered = order_chain(leaf, chain)
    if ordered is None:
        report.add("Certificate", f"{text}; put the leaf first, its issuers after it in the chain", repairable=True)
        return False
    expected = ", then ".join(describe(c) for c in [leaf, *ordered])
    report.add("Certificate", f"{text}; put the leaf first, then each certificate's issuer: {expected}",
               repairable=True)
    return True


def pem_parts(data: bytes) -> list[tuple[str, bytes]]:
    """The PEM blocks of a file as (label, text), each with the text around it kept (so that checks still see it)."""
    matches = list(_BLOCK.finditer(data))
    parts = []
    for index, match in enumerate(matches):
        start = 0 if index == 0 else match.start()
        end = matches[index + 1].start() if index + 1 < len(matches) else len(data)
        parts.append((match.group(1).decode(), data[start:end]))
    return parts


def assemble_bundle(files: list[bytes]) -> Bundle:
    """A bundle from files as people have them (cert + key + chain, fullchain + key, one combined file):
    the first certificate is the certificate, the other certificates in order are the chain (the checks then
    find the leaf wherever it stands, and ``repair_bundle`` puts it first)."""
    certificates: list[bytes] = []
    keys: list[bytes] = []
    for data in files:
        parts = pem_parts(data)
        if not parts:
            certificates.append(data)  # DER or text: the checks say what it is
        for label, text in parts:
            (keys if label.endswith("PRIVATE KEY") or label == "EC PARAMETERS" else certificates).append(text)
    chain = b"".join(certificates[1:]) or None
    return Bundle(certificates[0] if certificates else b"", b"".join(keys), chain)


def inspect_bundle(bundle: Bundle, now: datetime) -> Report:
    """Every problem with the bundle, as given (nothing is repaired here)."""
    report = Report()
    certificate_blocks = _text_problems(report, "Certificate", bundle.certificate, "certificate")
    certificates = _load_certificates(report, "Certificate", certificate_blocks)
    if len(certificates) > 1:
        report.add("Certificate", f"holds {len(certificates)} certificates; give only the leaf here and the others "
                                  "as the chain", repairable=True)
    chain: list[x509.Certificate] = []
    if bundle.chain is not None:
        chain = _load_certificates(report, "CertificateChain",
                                   _text_problems(report, "CertificateChain", bundle.chain, "certificate chain"))
    given = certificates + chain
    _check_key(report, bundle.private_key)
    if not certificates:
        return report
    choice = report.leaf_choice = find_leaf(given, report.key.public_key() if report.key is not None else None)
    leaf = report.certificate = given[choice.position]
    report.chain = given[:choice.position] + given[choice.position + 1:]
    _check_certificate(report, leaf, now)
    if report.key is not None and not choice.by_key:
        report.add("PrivateKey", f"does not match the certificate: the key is {_key_text(report.key.public_key())}, "
                                 "from another key pair; find the key this certificate was issued for")
    _chain_problems(report, leaf, report.chain, choice)
    return report


def repair_bundle(bundle: Bundle, now: datetime) -> tuple[Bundle, list[str]]:
    """The bundle with its safely repairable problems repaired, and what was changed."""
    report = inspect_bundle(bundle, now)
    changes: list[str] = []
    if any(p.message.startswith("has CRLF") for p in report.problems):
        changes.append("line endings: CRLF → LF")
    if any("whitespace" in p.message or "spaces or tabs" in p.message for p in report.problems):
        changes.append("removed stray whitespace")
    if any(p.message.startswith("has text outside") for p in report.problems):
        changes.append("removed the text outside the PEM blocks")
    if report.certificate is None:
        return bundle, []
    leaf = report.certificate
    chain = [c for c in report.chain if c != leaf]
    if len(chain) != len(report.chain):
        changes.append("removed the certificate itself from the chain")
    if report.leaf_choice is not None and report.leaf_choice.position:
        changes.append(f"put the leaf first: {describe(leaf)}, " + (
            "the certificate of the private key" if report.leaf_choice.by_key else "the one certificate signing no other"))
    if any(p.field == "Certificate" and p.message.startswith("holds") for p in report.problems):
        changes.append("moved the extra certificates from Certificate to the chain")
    ordered = order_chain(leaf, chain)
    if ordered is not None and ordered != chain:
        changes.append("reordered the chain: " + ", then ".join(describe(c) for c in ordered))
        chain = ordered

    def pem(certificates: list[x509.Certificate]) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)

    key = bundle.private_key
    key_blocks = [m.group(0) for m in _BLOCK.finditer(key) if m.group(1).endswith(b"PRIVATE KEY")]
    if len(key_blocks) == 1 and b"Proc-Type" not in key_blocks[0]:
        key = _clean(key_blocks[0])
    repaired = Bundle(pem([leaf]), key, pem(chain) if chain else None)
    return repaired, changes
