"""What the end-to-end deployment tests share: a private certificate through the API, its files, and waiting on
deployments and events with a deadline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsmith.deploy.targets.base import same_serial, serial_text
from certsmith.testing.pki import WAIT
from certsmith.testing.waiting import until

__all__ = ["FAST", "PASSPHRASE", "bindings_of", "deployment_failed_events", "deployments_of", "file_serial", "issue",
           "new_deployment", "renew", "until", "wait_binding", "wait_deployment", "write_current"]

T = TypeVar("T")

PASSPHRASE = b"end-to-end deployment"
FILES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")
# Verification handshakes a fifth of a second apart, a target that is down tried again after a second.
FAST = {"deploy_verify_delay_seconds": 0.2, "deploy_verify_attempts": 25, "deploy_retry_seconds": 1,
        "deploy_attempts": 3, "deploy_commands": "true"}
FINISHED = ("SUCCEEDED", "FAILED", "SUPERSEDED")



def issue(acm: Any, ca: str, domain: str, names: tuple[str, ...] = ()) -> str:
    """A private certificate for ``domain`` (and ``names``) from ``ca``, once ISSUED."""
    extra: dict[str, Any] = {"SubjectAlternativeNames": [domain, *names]} if names else {}
    arn: str = acm.request_certificate(DomainName=domain, CertificateAuthorityArn=ca, KeyAlgorithm="EC_prime256v1",
                                       **extra)["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn


def write_current(acm: Any, arn: str, folder: Path) -> str:
    """The certificate's current version as certbot's four files in ``folder`` (a server's starting point);
    returns its serial (colon hex)."""
    exported = acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)
    key = serialization.load_pem_private_key(exported["PrivateKey"].encode(), PASSPHRASE)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert = exported["Certificate"].strip() + "\n"
    chain = exported.get("CertificateChain", "").strip()
    chain = chain + "\n" if chain else ""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in zip(FILES, (cert, chain, cert + chain, key_pem), strict=True):
        path = folder / name
        path.write_text(text)
        if name == "privkey.pem":
            os.chmod(path, 0o600)
    return serial_text(x509.load_pem_x509_certificate(cert.encode()).serial_number)


def file_serial(folder: Path) -> str:
    """The serial of ``folder``/cert.pem (colon hex)."""
    return serial_text(x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes()).serial_number)


def renew(acm: Any, certsmith: Any, arn: str) -> str:
    """RenewCertificate; returns the new version's serial once the certificate carries it."""
    before = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    acm.renew_certificate(CertificateArn=arn)

    def renewed() -> str | None:
        serial: str = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
        return None if same_serial(serial, before) else serial
    return until(f"a new serial for {arn}", renewed)


def deployments_of(certsmith: Any, arn: str) -> list[dict[str, Any]]:
    return list(certsmith.list_deployments(CertificateArn=arn, MaxResults=100)["Deployments"])


def new_deployment(certsmith: Any, arn: str, trigger: str, known: set[str], within: float = 60.0) -> str:
    """The id of a deployment of ``arn`` with ``trigger`` that is not among ``known``, once it exists."""
    def found() -> str | None:
        return next((d["DeploymentId"] for d in deployments_of(certsmith, arn)
                     if d["Trigger"] == trigger and d["DeploymentId"] not in known), None)
    return until(f"a {trigger} deployment of {arn}", found, within)


def wait_deployment(certsmith: Any, deployment_id: str, within: float = 90.0) -> dict[str, Any]:
    """The deployment once it has finished (SUCCEEDED or FAILED)."""
    def finished() -> dict[str, Any] | None:
        deployment: dict[str, Any] = certsmith.describe_deployment(DeploymentId=deployment_id)["Deployment"]
        return deployment if deployment["Status"] in FINISHED else None
    return until(f"deployment {deployment_id} finished", finished, within)


def wait_binding(certsmith: Any, binding_arn: str, serial: str, within: float = 90.0) -> dict[str, Any]:
    """The binding once it is DEPLOYED with ``serial``."""
    def deployed() -> dict[str, Any] | None:
        binding: dict[str, Any] = certsmith.describe_binding(BindingArn=binding_arn)["Binding"]
        ok = binding["Status"] == "DEPLOYED" and same_serial(binding.get("DeployedSerial"), serial)
        return binding if ok else None
    return until(f"{binding_arn} deployed with serial {serial}", deployed, within)


def bindings_of(certsmith: Any, arn: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"CertificateArn": arn, "MaxResults": 100}
    while True:
        page = certsmith.list_bindings(**request)
        found += page["Bindings"]
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def deployment_failed_events(certsmith: Any, arn: str) -> list[dict[str, Any]]:
    """The Deployment Failed events about ``arn`` (their details), oldest first."""
    listed = certsmith.list_events(Source="certsmith", DetailType="Certsmith Deployment Failed", Resource=arn,
                                   Limit=1000)["Events"]
    return [json.loads(entry["Event"]) for entry in listed]
