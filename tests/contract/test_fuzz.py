"""Malformed and random input never gets a 5xx, a dropped connection or a traceback: only the AWS error shape.

The fuzzer (src/certsmith/testing/fuzz.py) generates inputs for every operation of the botocore models of
ACM and ACM-PCA and sends them, SigV4-signed, over JSON 1.1 and RPC v2 CBOR to a server of its own (the
fuzzer creates CAs and certificates, which the other contract tests' shared server should not see). The
cases of the issue are checked one by one as well, on the shared server.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest

from certsmith.testing.fuzz import discover_operations
from certsmith.testing.fuzz_runner import run_fuzz
from certsmith.testing.server import logged_errors

from ..conftest import Server, backend_url, start_server
from .test_wire import signed

FUZZ_SECONDS = float(os.environ.get("CERTSMITH_FUZZ_SECONDS", "18"))
CBOR_TYPE = "application/cbor"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("fuzz"), backend_url())
    yield srv
    srv.stop()


def test_fuzzed_inputs_get_only_aws_errors(fuzz_server: Server) -> None:
    seed = int(os.environ.get("CERTSMITH_FUZZ_SEED", random.randrange(2**32)))
    report = run_fuzz(fuzz_server.endpoint, fuzz_server.access_key, seconds=FUZZ_SECONDS, seed=seed)
    found = "\n".join(finding.describe() for finding in report.findings)
    assert not report.findings, f"seed {seed}: {len(report.findings)} findings in {report.requests} requests:\n{found}"
    errors = logged_errors(fuzz_server.log_path.read_text(errors="replace"))
    assert not errors, f"seed {seed}: the server logged errors:\n" + "\n".join(errors[:10])
    # It fuzzed for real: many inputs, some of which got past the checks into the services.
    assert report.requests > 2000, report
    assert report.answers["200"] > 50 and report.answers["400 SerializationException"] > 50, report.answers


def test_the_fuzz_bench_runs_its_own_server() -> None:
    """bench/fuzz_api.py for long runs: here 300 inputs, so that it cannot rot."""
    bench = Path(__file__).resolve().parents[2] / "bench" / "fuzz_api.py"
    run = subprocess.run([sys.executable, str(bench), "--requests", "300", "--seed", "1"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"^300 requests in [\d.]+ s: \d+ requests per second", run.stdout, flags=re.MULTILINE), run.stdout
    assert re.search(r"^  400 SerializationException +\d+$", run.stdout, flags=re.MULTILINE), run.stdout
    assert "\n0 findings\n" in run.stdout, run.stdout
    # Which operations 300 random inputs reach depends on the two connections' timing: nearly all of them.
    fuzzed = re.search(r"^(\d+) operations fuzzed", run.stdout, flags=re.MULTILINE)
    assert fuzzed is not None and int(fuzzed.group(1)) >= 55, run.stdout


def test_every_operation_of_both_services_is_fuzzed() -> None:
    targets = {operation.target for operation in discover_operations()}
    assert {"ACMPrivateCA.IssueCertificate", "ACMPrivateCA.CreateCertificateAuthority",
            "CertificateManager.SearchCertificates", "CertificateManager.ImportCertificate"} <= targets
    assert len(targets) >= 60  # 23 ACM-PCA and 40 ACM operations in the models this was written against


# ---- the cases, one by one --------------------------------------------------------------------

def call(server: Server, operation: str, body: bytes, cbor: bool) -> httpx.Response:
    service, _, name = operation.partition(".")
    signing = "acm-pca" if service == "ACMPrivateCA" else "acm"
    if cbor:
        return signed(server, "", body, service=signing, path=f"/service/{service}/operation/{name}",
                      content_type=CBOR_TYPE)
    return signed(server, operation, body, service=signing)


def encode(document: dict[str, Any], cbor: bool) -> bytes:
    return cbor2.dumps(document) if cbor else json.dumps(document).encode()


def error_of(response: httpx.Response, cbor: bool) -> tuple[int, str, str]:
    document: dict[str, Any] = cbor2.loads(response.content) if cbor else response.json()
    assert set(document) == {"__type", "message"}, document
    assert response.headers["x-amzn-errortype"] == document["__type"]
    return response.status_code, document["__type"], document["message"]


MALFORMED_JSON = {
    "nested 100,000 deep": b'{"Tags":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "objects nested 900 deep": b'{"A":' * 900 + b"1" + b"}" * 900,
    "nested 65 deep": b'{"Tags":' + b"[" * 64 + b"]" * 64 + b"}",
    "bad UTF-8": b'{"CertificateAuthorityArn":"\xff\xfe"}',
    "UTF-16": '{"MaxResults": 5}'.encode("utf-16"),
    "truncated": b'{"CertificateAuthorityArn":"arn:aws:acm-pca:us-east-1:1',
    "an array at the top": b"[]",
    "a string at the top": b'"text"',
    "null at the top": b"null",
    "1e999": b'{"MaxResults":1e999}',
    "a 5,000-digit number": b'{"MaxResults":' + b"9" * 5000 + b"}",
    "NaN": b'{"MaxResults":NaN}',
    "-Infinity": b'{"MaxResults":-Infinity}',
    "a key twice": b'{"MaxResults":5,"MaxResults":6}',
    "bytes after the object": b'{"MaxResults":5} x',
}


@pytest.mark.parametrize("case", MALFORMED_JSON)
def test_malformed_json_is_a_serialization_exception(server: Server, case: str) -> None:
    response = call(server, "ACMPrivateCA.ListCertificateAuthorities", MALFORMED_JSON[case], cbor=False)
    status, code, message = error_of(response, cbor=False)
    assert (status, code) == (400, "SerializationException"), message
    assert "Traceback" not in message and len(message) < 400


MALFORMED_CBOR = {
    "nested 100,000 deep": b"\xa1\x64Tags" + b"\x81" * 100_000 + b"\x80",
    "nested 65 deep": b"\xa1\x64Tags" + b"\x81" * 64 + b"\x80",
    "bad UTF-8": b"\xa1\x6aMaxResults\x62\xff\xfe",
    "truncated": cbor2.dumps({"CertificateAuthorityArn": "arn:aws:acm-pca:us-east-1:1"})[:-5],
    "an array at the top": b"\x80",
    "null at the top": b"\xf6",
    "a bignum": cbor2.dumps({"MaxResults": 2**80}),
    "a key twice": b"\xa2\x6aMaxResults\x05\x6aMaxResults\x06",
    "an integer key": b"\xa1\x01\x02",
    "a shared reference to itself": b"\xa1\x64Tags\xd8\x1c\x81\xd8\x1d\x00",
    "a regular expression tag": cbor2.dumps({"NextToken": cbor2.CBORTag(35, "(a")}),
    "bytes after the map": cbor2.dumps({"MaxResults": 5}) + b"\x00",
    "a length of 2**63": b"\xa1\x64Tags\x9b\x7f" + b"\xff" * 7,
}


@pytest.mark.parametrize("case", MALFORMED_CBOR)
def test_malformed_cbor_is_a_serialization_exception(server: Server, case: str) -> None:
    response = call(server, "ACMPrivateCA.ListCertificateAuthorities", MALFORMED_CBOR[case], cbor=True)
    status, code, message = error_of(response, cbor=True)
    assert (status, code) == (400, "SerializationException"), message
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"


@pytest.mark.parametrize("cbor", [False, True], ids=["json", "cbor"])
@pytest.mark.parametrize("seconds", [1e12, -1e12, 253_402_300_800, 1e308, float("nan"), float("inf"), 2**63])
def test_timestamp_out_of_range_is_a_validation_exception_naming_it(server: Server, cbor: bool, seconds: float) -> None:
    if not cbor and not math.isfinite(seconds):
        pytest.skip("JSON has no NaN or Infinity (such a body is a SerializationException, tested above)")
    body = encode({"FilterStatement": {"Filter": {"X509AttributeFilter": {"NotAfter": {
        "Start": cbor2.CBORTag(1, seconds) if cbor else seconds}}}}}, cbor)
    status, code, message = error_of(call(server, "CertificateManager.SearchCertificates", body, cbor), cbor)
    assert (status, code) == (400, "ValidationException"), message
    assert "filterStatement.filter.x509AttributeFilter.notAfter.start" in message and "timestamp" in message


@pytest.mark.parametrize("cbor", [False, True], ids=["json", "cbor"])
def test_a_timestamp_in_range_is_accepted(server: Server, cbor: bool) -> None:
    start = 1_700_000_000
    body = encode({"FilterStatement": {"Filter": {"X509AttributeFilter": {"NotAfter": {
        "Start": cbor2.CBORTag(1, start) if cbor else start}}}}}, cbor)
    response = call(server, "CertificateManager.SearchCertificates", body, cbor)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("cbor", [False, True], ids=["json", "cbor"])
@pytest.mark.parametrize("member,value,path", [
    ("MaxResults", "ten", "maxResults"),
    ("MaxResults", 2**40, "maxResults"),
    ("MaxResults", 2.5, "maxResults"),
    ("ResourceOwner", 7, "resourceOwner"),
    ("NextToken", ["x"], "nextToken"),
    ("NextToken", {"a": 1}, "nextToken"),
])
def test_a_member_of_the_wrong_type_is_a_validation_exception_naming_it(
        server: Server, cbor: bool, member: str, value: Any, path: str) -> None:
    body = encode({member: value}, cbor)
    status, code, message = error_of(call(server, "ACMPrivateCA.ListCertificateAuthorities", body, cbor), cbor)
    assert (status, code) == (400, "ValidationException"), message
    assert f"'{path}'" in message


def test_a_lone_surrogate_is_a_validation_exception(server: Server) -> None:
    status, code, message = error_of(call(server, "ACMPrivateCA.ListCertificateAuthorities",
                                          b'{"NextToken":"a\\ud800"}', cbor=False), cbor=False)
    assert (status, code) == (400, "ValidationException") and "'nextToken'" in message
