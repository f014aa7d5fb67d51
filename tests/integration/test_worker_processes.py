"""`certsmith serve --no-worker` with two `certsmith worker` processes on one database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography import x509

from certsmith.testing.pki import make_csr, root_ca

from ..conftest import backend_url, start_server


def test_two_worker_processes_share_the_queue(tmp_path: Path) -> None:
    url = backend_url()
    server = start_server(tmp_path, url, extra=["--no-worker"])
    command = [sys.executable, "-m", "certsmith", "worker", "--data-dir", str(server.data_dir)]
    if url:
        command += ["--database-url", url]
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in range(2)]
    workers = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    try:
        pca = server.client("acm-pca")
        ca = root_ca(pca, "Shared Queue Root")
        csr, _ = make_csr("queue.test")
        arns = [pca.issue_certificate(CertificateAuthorityArn=ca, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
                                      Validity={"Type": "DAYS", "Value": 2})["CertificateArn"] for _ in range(150)]
        root = x509.load_pem_x509_certificate(
            pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca)["Certificate"].encode())
        serials = set()
        for arn in arns:
            pca.get_waiter("certificate_issued").wait(CertificateAuthorityArn=ca, CertificateArn=arn,
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            cert = x509.load_pem_x509_certificate(
                pca.get_certificate(CertificateAuthorityArn=ca, CertificateArn=arn)["Certificate"].encode())
            cert.verify_directly_issued_by(root)
            assert arn.endswith(format(cert.serial_number, "x"))
            serials.add(cert.serial_number)
        assert len(serials) == 150
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            assert process.wait(timeout=15) == 0, "a worker did not stop cleanly on SIGTERM"
        for log in logs:
            log.close()
        server.stop()
    for index in range(2):
        text = (tmp_path / f"worker{index}.log").read_text()
        assert "Traceback" not in text and "started" in text and "stopped" in text
