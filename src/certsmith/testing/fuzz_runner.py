"""Send fuzzed inputs to a running certsmith, SigV4-signed, and judge every answer.

A finding is a 5xx, a dropped connection or no answer in time, or an error answer that is not in the
AWS shape (a ``{"__type", "message"}`` document in the request's protocol, with a matching
``x-amzn-errortype`` header and no traceback in it). Before fuzzing, :func:`prepare` makes an ACTIVE
root CA, a certificate it issued and ACM certificates through the API, so that fuzzed inputs can name
real resources (the generator also learns every ARN that a successful answer names).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.session
import cbor2
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509

from .fuzz import PROTOCOLS, Corpus, FuzzInput, InputGenerator, Operation, available_services, discover_operations, render
from .fuzz_encoding import Blob
from .fuzz_samples import Samples

__all__ = ["Finding", "FuzzReport", "SignedSender", "judge", "prepare", "run_fuzz"]

ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"
_JSON_TYPE, _CBOR_TYPE = "application/x-amz-json-1.1", "application/cbor"


@dataclass(frozen=True, slots=True)
class Finding:
    input: FuzzInput
    status: int | None  # None: the connection dropped, or no answer came in time
    problem: str

    def describe(self) -> str:
        status = "no answer" if self.status is None else f"HTTP {self.status}"
        return (f"{self.input.operation.target} over {self.input.protocol} ({self.input.note}): {status}: "
                f"{self.problem}\n    body: {render(self.input.body, self.input.protocol)}")


@dataclass
class FuzzReport:
    requests: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # "200", "400 ValidationException", …
    successes: Counter[str] = field(default_factory=Counter)  # 200s by operation ("ACMPrivateCA.IssueCertificate")
    operations: set[str] = field(default_factory=set)  # every operation fuzzed

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class SignedSender:
    """One keep-alive connection; each input signed with SigV4 as an SDK signs it."""

    def __init__(self, endpoint: str, access_key: tuple[str, str], region: str = "us-east-1",
                 timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.credentials = Credentials(*access_key)
        self.region = region
        self.client = httpx.Client(timeout=timeout)

    def send(self, item: FuzzInput) -> httpx.Response:
        operation = item.operation
        if item.protocol == "cbor":
            path = f"/service/{operation.target_prefix}/operation/{operation.name}"
            headers = {"Content-Type": _CBOR_TYPE, "Accept": _CBOR_TYPE, "smithy-protocol": "rpc-v2-cbor"}
        else:
            path, headers = "/", {"Content-Type": _JSON_TYPE, "X-Amz-Target": operation.target}
        request = AWSRequest(method="POST", url=self.endpoint + path, data=item.body, headers=headers)
        SigV4Auth(self.credentials, operation.signing_name, self.region).add_auth(request)
        return self.client.post(self.endpoint + path, content=item.body, headers=dict(request.headers.items()))

    def close(self) -> None:
        self.client.close()


def judge(item: FuzzInput, response: httpx.Response) -> tuple[str, str | None, Any]:
    """(how the answer is counted, the problem with it or None, the answer's document)."""
    status, cbor = response.status_code, item.protocol == "cbor"
    try:
        document = cbor2.loads(response.content) if cbor else json.loads(response.content)
    except (ValueError, cbor2.CBORDecodeError):
        problem = f"the answer is not {'CBOR' if cbor else 'JSON'}: {response.content[:200]!r}"
        return f"{status} unreadable", problem, None
    if status == 200:
        return "200", None, document
    code = document.get("__type") if isinstance(document, dict) else None
    message = document.get("message") if isinstance(document, dict) else None
    counted = f"{status} {code}"
    if status >= 500:
        return counted, f"a server error: {document!r}"[:1000], document
    if not isinstance(code, str) or not isinstance(message, str) or not message:
        return counted, f"the error answer is not {{__type, message}}: {document!r}"[:1000], document
    if response.headers.get("x-amzn-errortype") != code:
        return counted, f"x-amzn-errortype {response.headers.get('x-amzn-errortype')!r} is not __type {code!r}", document
    if "Traceback" in message or 'File "' in message:
        return counted, f"the message shows a traceback: {message[:500]}", document
    return counted, None, document


def _wait(call: Callable[[], Any], what: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "RequestInProgressException" or time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {error}") from error
        time.sleep(0.1)


def _client(service: str, endpoint: str, access_key: tuple[str, str], region: str) -> Any:
    return botocore.session.Session().create_client(
        service, region_name=region, endpoint_url=endpoint, aws_access_key_id=access_key[0],
        aws_secret_access_key=access_key[1], config=botocore.config.Config(retries={"max_attempts": 1}))


def prepare(endpoint: str, access_key: tuple[str, str], samples: Samples,
            region: str = "us-east-1") -> tuple[list[str], Corpus]:
    """An ACTIVE root CA, a certificate it issued and ACM certificates (requested, issued, imported), made
    through the API: their ARNs, and the documents of the calls that made them (and of a few that would
    use them) for the generator to mutate."""
    pca, acm = _client("acm-pca", endpoint, access_key, region), _client("acm", endpoint, access_key, region)
    configuration = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA",
                     "Subject": {"CommonName": "Fuzz Root", "Organization": "certsmith fuzz"}}
    ca = pca.create_certificate_authority(CertificateAuthorityType="ROOT",
                                          CertificateAuthorityConfiguration=configuration)["CertificateAuthorityArn"]
    csr = _wait(lambda: pca.get_certificate_authority_csr(CertificateAuthorityArn=ca)["Csr"], "the CA's CSR")
    root = pca.issue_certificate(CertificateAuthorityArn=ca, Csr=csr.encode(), SigningAlgorithm="SHA256WITHECDSA",
                                 TemplateArn=ROOT_TEMPLATE, Validity={"Type": "YEARS", "Value": 10})["CertificateArn"]
    certificate = _wait(lambda: pca.get_certificate(CertificateAuthorityArn=ca, CertificateArn=root)["Certificate"],
                        "the root certificate")
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=ca, Certificate=certificate.encode())
    issue = {"CertificateAuthorityArn": ca, "Csr": Blob(samples.csr_pem), "SigningAlgorithm": "SHA256WITHECDSA",
             "Validity": {"Type": "DAYS", "Value": 30}}
    issued = pca.issue_certificate(**{**issue, "Csr": samples.csr_pem})["CertificateArn"]
    pem = _wait(lambda: pca.get_certificate(CertificateAuthorityArn=ca, CertificateArn=issued)["Certificate"],
                "the issued certificate")
    serial = x509.load_pem_x509_certificate(pem.encode()).serial_number
    request = {"DomainName": "fuzz.example.test", "CertificateAuthorityArn": ca, "KeyAlgorithm": "EC_prime256v1",
               "SubjectAlternativeNames": ["fuzz.example.test", "www.fuzz.example.test"]}
    requested = acm.request_certificate(**request)["CertificateArn"]
    _wait(lambda: _issued(acm, requested), "the requested ACM certificate")
    imported = {"Certificate": Blob(samples.certificate_pem), "PrivateKey": Blob(samples.key_pem),
                "CertificateChain": Blob(samples.ca_pem)}
    imported_arn = acm.import_certificate(**{key: value.data for key, value in imported.items()})["CertificateArn"]
    seeds: Corpus = {
        "ACMPrivateCA.CreateCertificateAuthority": [{"CertificateAuthorityType": "ROOT",
                                                     "CertificateAuthorityConfiguration": configuration}],
        "ACMPrivateCA.IssueCertificate": [issue],
        "ACMPrivateCA.ImportCertificateAuthorityCertificate": [{"CertificateAuthorityArn": ca,
                                                                 "Certificate": Blob(certificate.encode())}],
        "ACMPrivateCA.RevokeCertificate": [{"CertificateAuthorityArn": ca, "CertificateSerial": _colons(serial),
                                            "RevocationReason": "KEY_COMPROMISE"}],
        "ACMPrivateCA.CreateCertificateAuthorityAuditReport": [{"CertificateAuthorityArn": ca, "S3BucketName": "fuzz",
                                                                "AuditReportResponseFormat": "JSON"}],
        "CertificateManager.RequestCertificate": [request],
        "CertificateManager.ImportCertificate": [imported],
        "CertificateManager.ExportCertificate": [{"CertificateArn": requested, "Passphrase": Blob(b"fuzz passphrase")}],
        "CertificateManager.RenewCertificate": [{"CertificateArn": requested}],
        "CertificateManager.RevokeCertificate": [{"CertificateArn": requested, "RevocationReason": "SUPERSEDED"}],
    }
    return [ca, root, issued, requested, imported_arn], seeds


def revive(endpoint: str, access_key: tuple[str, str], ca: str, region: str = "us-east-1") -> None:
    """Make the fuzzer's CA ACTIVE again after fuzzed inputs disabled or deleted it (they may, and do)."""
    pca = _client("acm-pca", endpoint, access_key, region)
    try:
        status = pca.describe_certificate_authority(CertificateAuthorityArn=ca)["CertificateAuthority"]["Status"]
        if status == "DELETED":
            pca.restore_certificate_authority(CertificateAuthorityArn=ca)
            status = "DISABLED"
        if status == "DISABLED":
            pca.update_certificate_authority(CertificateAuthorityArn=ca, Status="ACTIVE")
    except botocore.exceptions.ClientError:
        pass  # a fuzzed input changed it again meanwhile; the next revival tries again


def _issued(acm: Any, arn: str) -> None:
    status = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"]
    if status == "PENDING_VALIDATION":
        raise botocore.exceptions.ClientError({"Error": {"Code": "RequestInProgressException"}}, "DescribeCertificate")
    if status != "ISSUED":
        raise RuntimeError(f"the fuzzer's ACM certificate is {status}")


def _colons(serial: int) -> str:
    return ":".join(f"{byte:02x}" for byte in serial.to_bytes((serial.bit_length() + 7) // 8, "big"))


def run_fuzz(endpoint: str, access_key: tuple[str, str], *, requests: int | None = None, seconds: float | None = None,
             seed: int = 0, services: Sequence[str] | None = None, model_paths: Sequence[Path] = (),
             concurrency: int = 2, with_resources: bool = True, max_findings: int = 200,
             on_finding: Callable[[Finding], None] | None = None) -> FuzzReport:
    """Fuzz until ``requests`` inputs were sent or ``seconds`` passed (whichever comes first)."""
    if requests is None and seconds is None:
        raise ValueError("say how long to fuzz: requests=, seconds= or both")
    operations: list[Operation] = discover_operations(services or available_services(model_paths), model_paths)
    samples = Samples()
    arns, corpus = prepare(endpoint, access_key, samples) if with_resources else ([], {})
    ca = arns[0] if arns else None
    report, lock = FuzzReport(), threading.Lock()
    started = time.monotonic()
    deadline = started + seconds if seconds is not None else float("inf")

    def take() -> bool:
        with lock:
            if (requests is not None and report.requests >= requests) or time.monotonic() >= deadline \
                    or len(report.findings) >= max_findings:
                return False
            report.requests += 1
            return True

    def record(item: FuzzInput, counted: str, finding: Finding | None) -> None:
        with lock:
            report.answers[counted] += 1
            report.operations.add(item.operation.target)
            if counted == "200":
                report.successes[item.operation.target] += 1
            if finding is not None:
                report.findings.append(finding)
        if finding is not None and on_finding is not None:
            on_finding(finding)

    def worker(number: int) -> None:
        rng = random.Random(seed * 7919 + number)
        generator = InputGenerator(rng, samples, arns=arns, corpus=corpus)
        sent = 0
        sender = SignedSender(endpoint, access_key)
        try:
            while take():
                sent += 1
                if number == 0 and ca is not None and sent % 1000 == 0:
                    revive(endpoint, access_key, ca)
                operation = rng.choice(operations)
                for _ in range(3):  # operations the server does not implement get a tenth of the inputs
                    if operation.target not in unknown or rng.random() < 0.1:
                        break
                    operation = rng.choice(operations)
                item = generator.generate(operation, rng.choice(PROTOCOLS))
                try:
                    response = sender.send(item)
                except httpx.TransportError as error:
                    record(item, "no answer", Finding(item, None, f"{type(error).__name__}: {error}"))
                    continue
                counted, problem, document = judge(item, response)
                if counted.endswith("UnknownOperationException"):
                    unknown.add(operation.target)
                record(item, counted, None if problem is None else Finding(item, response.status_code, problem))
                if response.status_code == 200:
                    generator.remember(document)
                    generator.learn(item)
        except Exception as error:  # noqa: BLE001 - the fuzzer's own failure, raised again in the caller's thread
            failures.append(error)
        finally:
            sender.close()

    failures: list[Exception] = []
    unknown: set[str] = set()
    threads = [threading.Thread(target=worker, args=(number,), daemon=True) for number in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - started
    if failures:
        raise failures[0]
    return report
