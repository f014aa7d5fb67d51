"""cfssl as the reference signer of bench/issue_throughput.py (Debian's golang-cfssl, `cfssl serve`).

Two ways to run it:

- ``sign``: POST /api/v1/cfssl/sign with no authentication and no storage. This is the comparison
  the benchmark's goal names.
- ``authsign+certdb``: POST /api/v1/cfssl/authsign, where each request carries an HMAC-SHA256 token
  under a shared key, and cfssl's certificate database on SQLite records every certificate it
  signs. The database uses WAL and synchronous=NORMAL, certsmith's own SQLite settings. This is
  cfssl doing the same kinds of work as certsmith's IssueCertificate: it authenticates the
  request, signs, and stores the certificate.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
from load import Result, lua_script, run_wrk, tree_cpu_seconds

__all__ = ["CFSSL_CONFIGURATIONS", "bench_cfssl"]

# (label, variant); the first one is the reference of the benchmark's goal
CFSSL_CONFIGURATIONS: list[tuple[str, str]] = [
    ("cfssl serve /api/v1/cfssl/sign", "sign"),
    ("cfssl serve /api/v1/cfssl/authsign + certdb (SQLite WAL)", "authsign+certdb"),
]

# cfssl's certdb schema for SQLite (its certdb/sqlite migrations, with the columns later versions add)
_CERTDB_SCHEMA = """
CREATE TABLE certificates (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, ca_label blob, status blob NOT NULL,
  reason int, expiry timestamp, revoked_at timestamp, pem blob NOT NULL,
  issued_at timestamp, not_before timestamp, metadata text, sans text, common_name text,
  PRIMARY KEY (serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, body blob NOT NULL, expiry timestamp,
  PRIMARY KEY (serial_number, authority_key_identifier));
"""


def _stored(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        count: int = connection.execute("SELECT count(*) FROM certificates").fetchone()[0]
    return count


def bench_cfssl(tmp: Path, csr: bytes, args: argparse.Namespace, label: str, variant: str, port: int) -> Result:
    folder = tmp / label.replace(" ", "_").replace("/", "_")
    folder.mkdir(parents=True)
    (folder / "ca-csr.json").write_text('{"CN":"Bench CFSSL Root","key":{"algo":"ecdsa","size":256}}')
    profile: dict[str, object] = {"expiry": "720h",
                                  "usages": ["digital signature", "key encipherment", "server auth", "client auth"]}
    config: dict[str, object] = {"signing": {"default": profile}}
    command = ["cfssl", "serve", "-address", "127.0.0.1", "-port", str(port), "-ca", "ca.pem", "-ca-key", "ca-key.pem",
               "-config", "config.json", "-loglevel", "5"]
    request = json.dumps({"certificate_request": csr.decode()})
    database = folder / "certdb.sqlite"
    stores = variant != "sign"
    if not stores:
        endpoint, body = "sign", request
    else:
        key = secrets.token_bytes(32)
        profile["auth_key"] = "bench"
        config["auth_keys"] = {"bench": {"type": "standard", "key": key.hex()}}
        token = hmac.new(key, request.encode(), hashlib.sha256).digest()
        endpoint = "authsign"
        body = json.dumps({"token": base64.b64encode(token).decode(), "request": base64.b64encode(request.encode()).decode()})
        with sqlite3.connect(database) as connection:
            connection.executescript(_CERTDB_SCHEMA)
        (folder / "db.json").write_text(json.dumps({
            "driver": "sqlite3",
            "data_source": f"file:{database}?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000"}))
        command += ["-db-config", "db.json"]
    (folder / "config.json").write_text(json.dumps(config))
    gencert = subprocess.run(["cfssl", "gencert", "-initca", "ca-csr.json"], cwd=folder, capture_output=True,
                             check=True).stdout
    subprocess.run(["cfssljson", "-bare", "ca"], cwd=folder, input=gencert, check=True)
    with open(folder / "serve.log", "wb") as log:
        process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/cfssl/{endpoint}"
        answer: object = None
        for _ in range(100):  # until it listens and signs
            try:
                answer = httpx.post(url, content=body).json()
            except httpx.HTTPError as error:
                answer = error
            if isinstance(answer, dict) and answer.get("success"):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"cfssl {variant} never signed: {answer}")
        stored_before = _stored(database) if stores else 0
        script = folder / "cfssl.lua"
        lua_script(script, "POST", body, {"Content-Type": "application/json"})
        cpu_before = tree_cpu_seconds(process.pid)
        requests, bad, elapsed = run_wrk(url, script, args.seconds, args.connections, args.threads)
        cpu = tree_cpu_seconds(process.pid) - cpu_before
        signed = requests - bad
        stored = ""
        if stores:
            count = _stored(database) - stored_before
            assert count >= signed, f"cfssl answered {signed} requests but stored {count} certificates"
            stored = f", {count} certificates stored"
        print(f"{label}: {requests} requests ({bad} non-2xx) in {elapsed:.2f} s{stored}; {cpu:.2f} s of CPU")
        return Result(signed / elapsed, cpu / signed * 1000)
    finally:
        process.terminate()
        process.wait()
