"""Values that get a fuzzed request past the first check: real PEM and DER, ARNs, names, policies.

Random bytes rarely parse as a CSR and random text is rarely an ARN, so most fuzzed requests would
stop at the first parser. These samples (made once, with fresh keys, and then broken in small ways)
let them reach the code behind it.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Samples"]

_TEMPLATES = ("arn:aws:acm-pca:::template/EndEntityCertificate/V1", "arn:aws:acm-pca:::template/RootCACertificate/V1",
              "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1",
              "arn:aws:acm-pca:::template/BlankEndEntityCertificate_APIPassthrough/V1",
              "arn:aws:acm-pca:::template/NoSuchTemplate/V1", "arn:aws:acm-pca:::template/")
_DOMAINS = ("fuzz.example.test", "*.example.test", "a.b.c.example.test", "example", "-bad-.test", "ex ample.test",
            "xn--e1afmkfd.test", "例え.テスト", "a" * 64 + ".test", ("a" * 63 + ".") * 4 + "test", "*.*.test", "", ".",
            "UPPER.EXAMPLE.TEST", "trailing.dot.test.", "under_score.test", "127.0.0.1")
_NAMED: dict[str, tuple[str, ...]] = {
    "CommonName": ("fuzz.example.test", "", "x" * 64, "x" * 65, "Fuzz CA", "é"),
    "Country": ("US", "ZZ", "U", "usa", "12"),
    "CertificateSerial": ("01", "00", "0a:bc", "ff" * 20, "zz", "-1", ":"),
    "SerialNumber": ("01:02", "00", "ff:" * 19 + "ff", "xy"),
    "IdempotencyToken": ("token", "t" * 36, "t" * 37, "ünï"),
    "Principal": ("acm.amazonaws.com", "*", "s3.amazonaws.com"),
    "SourceAccount": ("123456789012", "1", "abcdefghijkl"),
    "S3BucketName": ("bucket", "a", "bad bucket", "b" * 256),
    "ObjectIdentifier": ("1.3.6.1.4.1.99", "2.5.29.17", "9.9", "1.", "1.2.3.4.5.6.7.8.9.10.11.12", "0.40"),
    "Rfc822Name": ("fuzz@example.test", "@", "a@b@c"),
    "IpAddress": ("192.0.2.1", "::1", "999.1.1.1", "1.2.3"),
    "UniformResourceIdentifier": ("https://example.test/x", "::", "urn:x"),
    "CustomCname": ("crl.example.test", "http://x", ""),
    "OcspCustomCname": ("ocsp.example.test", "http://x", ""),
    "NextToken": ("", "x", "eyJ4IjoxfQ==", "%%%", "0" * 10_000, "\u00ff" * 20),
    "KeyAlgorithm": ("RSA_2048", "EC_prime256v1", "EC_secp384r1"),
    "Passphrase": ("", "passphrase", "p" * 128),
}


_LOOPBACK_URLS = ("https://127.0.0.1:1/dir", "http://127.0.0.1:9/directory", "https://[::1]:1/dir", "ftp://127.0.0.1/",
                  "not a url", "https://", "http://127.0.0.1:1/" + "d" * 2100)


def _dns_arn(rng: random.Random, service: str, kind: str) -> str:
    account, region = rng.choice(("123456789012", "000000000000", "1", "")), rng.choice(("us-east-1", "eu-west-1", ""))
    return f"arn:aws:{service}:{region}:{account}:{kind}/{uuid.UUID(int=rng.getrandbits(128))}"


def _fits(member: str, arn: str) -> bool:
    """Whether an ARN names what the member asks for (a CA for CertificateAuthorityArn, and so on)."""
    if "Template" in member:
        return ":template/" in arn
    if "CertificateAuthority" in member:
        return ":certificate-authority/" in arn and "/certificate/" not in arn
    if member.startswith("Certificate"):
        return "certificate/" in arn and ":template/" not in arn
    return True


class Samples:
    def __init__(self) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fuzz Root")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
              .not_valid_after(now + timedelta(days=365))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz.example.test")])
        sans = x509.SubjectAlternativeName([x509.DNSName("fuzz.example.test")])
        leaf = (x509.CertificateBuilder().subject_name(leaf_name).issuer_name(ca_name).public_key(leaf_key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=90)).add_extension(sans, critical=False)
                .sign(ca_key, hashes.SHA256()))
        csr = (x509.CertificateSigningRequestBuilder().subject_name(leaf_name).add_extension(sans, critical=False)
               .sign(leaf_key, hashes.SHA256()))
        pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
        key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        self.csr_pem = csr.public_bytes(pem)
        self.certificate_pem = leaf.public_bytes(pem)
        self.ca_pem = ca.public_bytes(pem)
        self.key_pem = key_pem
        self.blobs: dict[str, tuple[bytes, ...]] = {
            "Csr": (self.csr_pem, csr.public_bytes(der), self.certificate_pem),
            "Certificate": (self.certificate_pem, self.ca_pem, leaf.public_bytes(der), self.csr_pem),
            "CertificateChain": (self.ca_pem, self.ca_pem + self.certificate_pem, self.ca_pem * 3, b"\n"),
            "PrivateKey": (key_pem, leaf_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                           serialization.NoEncryption()), self.certificate_pem),
            "Value": (b"\x04\x00", b"\x30\x03\x01\x01\xff", b""),
            "Passphrase": (b"passphrase", b"", b"p" * 200),
        }
        self.everything = tuple(blob for blobs in self.blobs.values() for blob in blobs)

    def blob_for(self, member: str, rng: random.Random, damaged: bool = False) -> bytes:
        """A sample for the member (any sample when it has none of its own); ``damaged``: broken a little."""
        blob = rng.choice(self.blobs.get(member) or self.everything)
        roll = rng.random()
        if not damaged or not blob:
            return blob
        if roll < 0.4:
            return blob[: rng.randrange(len(blob))]  # cut short
        if roll < 0.8:
            data = bytearray(blob)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            return bytes(data)
        return blob.replace(b"\n", b"\r\n") if rng.random() < 0.5 else blob.replace(b"-----", b"----")

    def string_for(self, shape: str, member: str, arns: list[str], rng: random.Random, strays: bool) -> str | None:
        """A value for the member, if it is one of those samples cover; ``strays``: often a wrong one."""
        if member in _NAMED:
            return rng.choice(_NAMED[member])
        if member.endswith("Url"):  # always a loopback address: a URL certsmith fetches must never leave the machine
            return rng.choice(_LOOPBACK_URLS)
        if member.endswith("Arn") or shape.endswith("Arn") or member.endswith("Arns"):
            fitting = [arn for arn in arns if _fits(member, arn)]
            if fitting and not strays:
                return rng.choice(fitting)
            return self._arn(member, arns, rng)
        if "Domain" in member or "DnsName" in member or (member == "Value" and rng.random() < 0.3):
            return rng.choice(_DOMAINS)
        if member == "Policy":
            return self._policy(arns, rng)
        return None

    def _arn(self, member: str, arns: list[str], rng: random.Random) -> str:
        roll = rng.random()
        if arns and roll < 0.6:
            arn = rng.choice(arns)
            if roll < 0.45:
                return arn
            return rng.choice((arn + "x", arn.upper(), arn.replace("us-east-1", "eu-west-1"), arn[:-1],
                               arn.split("/certificate/")[0] + f"/certificate/{rng.getrandbits(128):032x}",
                               arn + "/certificate/" + "0" * 32, arn.replace(":acm-pca:", ":acm:")))
        if "Template" in member:
            return rng.choice(_TEMPLATES)
        return rng.choice((_dns_arn(rng, "acm-pca", "certificate-authority"), _dns_arn(rng, "acm", "certificate"),
                           "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x/certificate/y", "arn:",
                           "arn:aws:acm-pca", "not-an-arn", "arn:aws:iam::123456789012:role/r", "a" * 2049))

    def _policy(self, arns: list[str], rng: random.Random) -> str:
        resource = rng.choice(arns) if arns else "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x"
        statement = {"Effect": rng.choice(("Allow", "Deny", "Maybe")), "Principal": {"AWS": "123456789012"},
                     "Action": rng.choice(("acm-pca:IssueCertificate", ["acm-pca:*"], 5)), "Resource": resource}
        return rng.choice((json.dumps({"Version": "2012-10-17", "Statement": [statement]}), "{}", "not json", "[]",
                           json.dumps({"Statement": statement}), "{" * 70))

    @staticmethod
    def near_pattern(pattern: str, rng: random.Random) -> str:
        """A string of the characters a pattern names, in a random order: often nearly right, rarely right."""
        letters = re.sub(r"\\[pPdDwWsS]\{?\w*\}?|[\\\[\](){}*+?|^$]", "", pattern) or "a"
        return "".join(rng.choice(letters) for _ in range(rng.randint(1, 60)))
