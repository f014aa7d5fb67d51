"""What the parts of issuing one certificate cost on this machine, each done alone with no certsmith
code around it: the floor under any Python implementation of certsmith's design.

- cryptography: checking the CSR's signature, building and signing the certificate (pyca/cryptography);
- HTTP: uvicorn answering one POST of the same size with a minimal ASGI app;
- storage: SQLite (raw sqlite3, parameters prepared beforehand) writing what one IssueCertificate
  writes in certsmith's schema — the PENDING certificate, its job and the audit entry, grouped 16 to
  a transaction as the group commit does — and what the worker writes: the issued certificate, the
  job deleted, 64 to a transaction.

Each returns CPU milliseconds per certificate.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["crypto_floor", "http_floor", "storage_floor"]

_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"CertificateArn":"arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/' + b"0" * 36 + \\
        b'/certificate/' + b"0" * 32 + b'"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-amz-json-1.1"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''


def crypto_floor(csr: bytes, rounds: int = 2000) -> float:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Floor CA")])
    started = time.process_time()
    for _ in range(rounds):
        request = x509.load_pem_x509_csr(csr)
        assert request.is_signature_valid
        now = datetime.now(UTC)
        (x509.CertificateBuilder().subject_name(request.subject).issuer_name(issuer)
         .public_key(request.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, critical=False)
         .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return (time.process_time() - started) / rounds * 1000


def http_floor(folder: Path, port: int, body: str, load: Callable[[str, Path], int],
               cpu_seconds: Callable[[int], float]) -> float:
    """``load(url, script)`` runs the load generator and returns the number of requests answered."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "floor_app.py").write_text(_APP)
    script = folder / "floor.lua"
    script.write_text(f"wrk.method = \"POST\"\nwrk.body = {json.dumps(body)}\n"
                      "wrk.headers[\"Content-Type\"] = \"application/x-amz-json-1.1\"\n")
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "floor_app:app", "--host", "127.0.0.1", "--port",
                                str(port), "--log-level", "warning", "--no-access-log"], cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                httpx.post(url, content=b"{}")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        before = cpu_seconds(process.pid)
        answered = load(url, script)
        return (cpu_seconds(process.pid) - before) / answered * 1000
    finally:
        process.terminate()
        process.wait()


def storage_floor(folder: Path, certificates: int = 8000) -> float:
    """Migrates a new certsmith database in ``folder`` and writes ``certificates`` issuances into it."""
    from certsmith.store.database import migrate

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "floor.db"
    migrate(f"sqlite:///{path}")
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        db.execute(f"PRAGMA {pragma}")
    authority = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    now = datetime.now(UTC).replace(tzinfo=None)
    db.execute("INSERT INTO certificate_authorities (id, arn, account_id, region, type, status, usage_mode, "
               "key_storage_standard, key_algorithm, configuration, revocation, tags, crl_number, created_at, "
               "last_state_change_at) VALUES (?, ?, '123456789012', 'us-east-1', 'ROOT', 'ACTIVE', 'GENERAL_PURPOSE', "
               "'FIPS_140_2_LEVEL_3_OR_HIGHER', 'EC_prime256v1', '{}', '{}', '[]', 0, ?, ?)",
               (authority, f"arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/{authority}", str(now),
                str(now)))
    csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + ("A" * 64 + "\n") * 6 + "-----END CERTIFICATE REQUEST-----\n"
    cert_pem = "-----BEGIN CERTIFICATE-----\n" + ("A" * 64 + "\n") * 11 + "-----END CERTIFICATE-----\n"
    serials = [secrets.token_hex(16) for _ in range(certificates)]
    requests = [(authority, serial, "PENDING", "arn:aws:acm-pca:::template/EndEntityCertificate/V1",
                 json.dumps({"csr": csr_pem, "signing_algorithm": "SHA256WITHECDSA", "not_before": now.isoformat(),
                             "not_after": now.isoformat(), "api_passthrough": None}), str(now)) for serial in serials]
    jobs = [("certificate.issue", json.dumps({"authority_id": authority, "serial_hex": serial}), "leased", str(now), 1,
             8, str(now), "local-1", str(now), str(now)) for serial in serials]
    audit = [(str(now), "arn:aws:iam::123456789012:root", "IssueCertificate",
              f"arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/{authority}/certificate/{serial}",
              "Success") for serial in serials]
    started = time.process_time()
    for start in range(0, certificates, 16):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO issued_certificates (authority_id, serial_hex, status, template_arn, request, "
                       "created_at) VALUES (?, ?, ?, ?, ?, ?)", requests[start:start + 16])
        db.executemany("INSERT INTO jobs (kind, payload, state, run_after, attempts, max_attempts, lease_until, "
                       "leased_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", jobs[start:start + 16])
        db.executemany("INSERT INTO audit_log (at, principal, operation, resource, result) VALUES (?, ?, ?, ?, ?)",
                       audit[start:start + 16])
        db.execute("COMMIT")
    middle = time.process_time()
    rows = db.execute("SELECT id FROM issued_certificates ORDER BY id").fetchall()
    job_ids = [job_id for (job_id,) in db.execute("SELECT id FROM jobs ORDER BY id")]
    issued = [("ISSUED", cert_pem, "CN=bench.example.test", str(now), str(now), str(now), row_id, "PENDING")
              for (row_id,) in rows]
    resumed = time.process_time()
    for start in range(0, certificates, 64):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("UPDATE issued_certificates SET status=?, certificate_pem=?, subject=?, not_before=?, "
                       "not_after=?, issued_at=? WHERE id = ? AND status = ?", issued[start:start + 64])
        chunk = job_ids[start:start + 64]
        db.execute(f"DELETE FROM jobs WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        db.execute("COMMIT")
    finished = time.process_time()
    db.close()
    os.remove(path)
    return ((middle - started) + (finished - resumed)) / certificates * 1000
