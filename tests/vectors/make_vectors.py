"""Writes the ImportCertificate vectors of this folder (see README.md). Run: python tests/vectors/make_vectors.py"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).parent
NOW = datetime.now(UTC).replace(microsecond=0)
LONG = (NOW - timedelta(days=1), NOW + timedelta(days=365 * 40))
PEM = serialization.Encoding.PEM


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certsmith vectors"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(subject: str, key: Any, issuer: tuple[x509.Name, Any] | None, ca: bool,
                window: tuple[datetime, datetime] = LONG, dns: str | None = None) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer else (name(subject), key)
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(window[0]).not_valid_after(window[1])
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns or subject)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(PEM) for c in certificates)


def key_pem(key: Any, form: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
            password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(PEM, form, encryption)


def family(folder: str, make_key: Any) -> dict[str, Any]:
    root_key, intermediate_key, leaf_key = make_key(), make_key(), make_key()
    root = certificate(f"Vector {folder} Root", root_key, None, ca=True)
    intermediate = certificate(f"Vector {folder} Intermediate", intermediate_key, (root.subject, root_key), ca=True)
    leaf = certificate(f"{folder}.vectors.test", leaf_key, (intermediate.subject, intermediate_key), ca=False)
    out = HERE / folder
    out.mkdir(exist_ok=True)
    (out / "leaf.pem").write_bytes(pem(leaf))
    (out / "leaf.key").write_bytes(key_pem(leaf_key))
    (out / "chain.pem").write_bytes(pem(intermediate, root))
    return {"root": root, "root_key": root_key, "intermediate": intermediate, "intermediate_key": intermediate_key,
            "leaf": leaf, "leaf_key": leaf_key, "out": out}


def main() -> None:
    rsa_key = lambda bits=2048: rsa.generate_private_key(public_exponent=65537, key_size=bits)  # noqa: E731
    r = family("rsa", rsa_key)
    e = family("ec", lambda: ec.generate_private_key(ec.SECP256R1()))
    out: Path = r["out"]
    (out / "leaf.pkcs1.key").write_bytes(key_pem(r["leaf_key"], serialization.PrivateFormat.TraditionalOpenSSL))
    (e["out"] / "leaf.sec1.key").write_bytes(
        b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
        + key_pem(e["leaf_key"], serialization.PrivateFormat.TraditionalOpenSSL))
    (out / "chain-wrong-order.pem").write_bytes(pem(r["root"], r["intermediate"]))
    (out / "chain-missing-intermediate.pem").write_bytes(pem(r["root"]))
    (out / "chain-with-leaf.pem").write_bytes(pem(r["leaf"], r["intermediate"], r["root"]))
    # Fullchain files in the orders other tools write them: the checks find the leaf by its key.
    (out / "fullchain-intermediate-first.pem").write_bytes(pem(r["intermediate"], r["leaf"], r["root"]))
    (e["out"] / "fullchain-reversed.pem").write_bytes(pem(e["root"], e["intermediate"], e["leaf"]))
    (out / "leaf.encrypted.key").write_bytes(key_pem(r["leaf_key"], password=b"vector passphrase"))
    (out / "leaf.crlf.pem").write_bytes(pem(r["leaf"]).replace(b"\n", b"\r\n"))
    (out / "leaf.trailing-garbage.pem").write_bytes(pem(r["leaf"]) + b"garbage after the certificate\n")
    (out / "leaf.whitespace.pem").write_bytes(b"\n  " + pem(r["leaf"]).replace(b"\n", b"  \n", 3) + b"  \n\n")
    (out / "leaf.der").write_bytes(r["leaf"].public_bytes(serialization.Encoding.DER))
    (out / "leaf.der.key").write_bytes(r["leaf_key"].private_bytes(serialization.Encoding.DER,
                                                                   serialization.PrivateFormat.PKCS8,
                                                                   serialization.NoEncryption()))
    (out / "other.key").write_bytes(key_pem(rsa_key()))
    issuer = (r["intermediate"].subject, r["intermediate_key"])
    for label, window in (("expired", (datetime(2001, 1, 1, tzinfo=UTC), datetime(2002, 1, 1, tzinfo=UTC))),
                          ("not-yet-valid", (datetime(2090, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)))):
        key = rsa_key()
        (out / f"{label}.pem").write_bytes(pem(certificate(f"{label}.vectors.test", key, issuer, False, window)))
        (out / f"{label}.key").write_bytes(key_pem(key))
    small = rsa_key(1024)
    (out / "rsa1024.pem").write_bytes(pem(certificate("rsa1024.vectors.test", small, issuer, False)))
    (out / "rsa1024.key").write_bytes(key_pem(small))
    odd = ec.generate_private_key(ec.SECP256K1())
    ec_issuer = (e["intermediate"].subject, e["intermediate_key"])
    (e["out"] / "secp256k1.pem").write_bytes(pem(certificate("secp256k1.vectors.test", odd, ec_issuer, False)))
    (e["out"] / "secp256k1.key").write_bytes(key_pem(odd))


if __name__ == "__main__":
    main()
