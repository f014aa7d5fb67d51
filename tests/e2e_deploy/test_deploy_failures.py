"""Deployments that go wrong, end to end through a real `certsmith serve` and a real nginx (one per test):

- nginx stopped during a renewal: the deployment waits to try again, the files stay on the old version; with
  nginx started again the same deployment succeeds by itself;
- nginx's configuration test fails: the old files stay and are served, the item is FAILED with nginx's reason and a
  Deployment Failed event says so;
- Verify names a site that serves another certificate and the binding has Rollback: the item ends ROLLED_BACK and
  the folder is back on the previous version, which nginx serves.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.tls_servers import TlsNginx, start_tls_nginx

from ..conftest import need_binary
from .world import (
    deployment_failed_events,
    file_serial,
    issue,
    new_deployment,
    renew,
    until,
    wait_binding,
    wait_deployment,
    write_current,
)

HOST = "127.0.0.1"
SITE, ELSEWHERE = "site.deploy-failures.test", "elsewhere.deploy-failures.test"

StartNginx = Callable[..., TlsNginx]


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[StartNginx]:
    """Start (or start again, on the same port and files) an nginx serving SITE and ELSEWHERE; stopped at the end."""
    binary = need_binary("nginx")
    started: list[TlsNginx] = []

    def start(port: int | None = None) -> TlsNginx:
        server = start_tls_nginx(tmp_path / "nginx", [SITE, ELSEWHERE], port=port, binary=binary)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def bind(certsmith: Any, arn: str, nginx: TlsNginx, *, verify_name: str = SITE, **extra: Any) -> dict[str, Any]:
    return dict(certsmith.create_binding(CertificateArn=arn, Kind="nginx", Options=nginx.target_options(SITE),
                                         Verify={"Host": HOST, "Port": nginx.port, "ServerName": verify_name}, **extra))


def deployed_first(acm: Any, certsmith: Any, ca: str, nginx: TlsNginx, domain: str) -> tuple[str, str, str]:
    """A certificate for ``domain`` bound to SITE and deployed: (certificate ARN, binding ARN, serial)."""
    arn = issue(acm, ca, domain)
    created = bind(certsmith, arn, nginx)
    first = wait_deployment(certsmith, created["DeploymentId"])
    assert first["Status"] == "SUCCEEDED", first
    serial: str = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    nginx.wait_serial(SITE, serial)
    return arn, created["Binding"]["BindingArn"], serial


def item_of(certsmith: Any, deployment_id: str) -> dict[str, Any]:
    [item] = certsmith.describe_deployment(DeploymentId=deployment_id)["Deployment"]["Items"]
    return dict(item)


def test_nginx_down_then_back(acm: Any, certsmith: Any, ca: str, start_nginx: StartNginx) -> None:
    nginx = start_nginx()
    arn, binding_arn, old = deployed_first(acm, certsmith, ca, nginx, "down.deploy-failures.test")
    nginx.stop()

    new = renew(acm, certsmith, arn)
    renewal = new_deployment(certsmith, arn, "RENEWAL", set())
    # nginx being down is a target away, not a broken one: the item waits to be tried again, the deployment stays open
    item = until("the renewal's first try failed and waits to be tried again",
                 lambda: (i := item_of(certsmith, renewal))["Status"] == "PENDING" and i.get("Error") and i)
    assert "nginx is not running" in item["Error"], item
    assert certsmith.describe_deployment(DeploymentId=renewal)["Deployment"]["Status"] == "IN_PROGRESS"
    assert same_serial(file_serial(nginx.folder(SITE)), old)  # the activation failed: the old files were put back

    nginx = start_nginx(nginx.port)  # the same files and port
    assert same_serial(nginx.served_serial(SITE), old)
    finished = wait_deployment(certsmith, renewal)  # the same deployment, tried again by itself
    assert finished["Trigger"] == "RENEWAL" and finished["Items"][0]["Attempts"] >= 2, finished
    assert finished["Status"] == "SUCCEEDED", finished
    assert same_serial(finished["Items"][0]["VerifiedSerial"], new)
    binding = wait_binding(certsmith, binding_arn, new)
    assert binding["DeployedVersion"] == 2 and not binding.get("LastError"), binding
    assert same_serial(nginx.settled_serial(SITE), new)


def test_failed_configuration_test_keeps_the_old_version_served(acm: Any, certsmith: Any, ca: str,
                                                                start_nginx: StartNginx) -> None:
    nginx = start_nginx()
    arn, binding_arn, old = deployed_first(acm, certsmith, ca, nginx, "config.deploy-failures.test")
    nginx.write_config(extra="    certsmith_no_such_directive on;")
    try:
        new = renew(acm, certsmith, arn)
        failed = wait_deployment(certsmith, new_deployment(certsmith, arn, "RENEWAL", set()))
        assert failed["Status"] == "FAILED", failed
        [item] = failed["Items"]
        assert item["Status"] == "FAILED" and item.get("PreviousVersion") == 1, item
        assert "configuration test" in item["Error"] and "certsmith_no_such_directive" in item["Error"], item
        assert "PRIVATE KEY" not in item["Error"]
        assert same_serial(file_serial(nginx.folder(SITE)), old)
        assert same_serial(nginx.served_serial(SITE), old)
        binding = certsmith.describe_binding(BindingArn=binding_arn)["Binding"]
        assert binding["Status"] == "FAILED" and binding["DeployedVersion"] == 1, binding
        assert "configuration test" in binding["LastError"], binding
        events = deployment_failed_events(certsmith, arn)
        assert any("certsmith_no_such_directive" in event["detail"]["Error"] and binding_arn in event["resources"]
                   for event in events), events
    finally:
        nginx.write_config()
    done = wait_deployment(certsmith, certsmith.run_deployment(CertificateArn=arn)["DeploymentId"])
    assert done["Status"] == "SUCCEEDED", done
    assert same_serial(nginx.settled_serial(SITE), new)


def test_verify_mismatch_rolls_back_to_the_previous_version(acm: Any, certsmith: Any, ca: str,
                                                            start_nginx: StartNginx) -> None:
    nginx = start_nginx()
    arn = issue(acm, ca, "rollback.deploy-failures.test")
    # version 1 in place by hand, as on a server set up before certsmith; then a binding whose Verify names the
    # other site, which serves a certificate of its own
    old = write_current(acm, arn, nginx.folder(SITE))
    subprocess.run(nginx.command("-s", "reload"), check=True, capture_output=True, timeout=30)
    nginx.wait_serial(SITE, old)
    elsewhere = nginx.served_serial(ELSEWHERE)
    assert elsewhere and not same_serial(elsewhere, old)
    binding_arn = bind(certsmith, arn, nginx, verify_name=ELSEWHERE, Rollback=True, Deploy=False)["Binding"]["BindingArn"]

    new = renew(acm, certsmith, arn)
    failed = wait_deployment(certsmith, new_deployment(certsmith, arn, "RENEWAL", set()))
    assert failed["Status"] == "FAILED", failed
    [item] = failed["Items"]
    assert item["Status"] == "ROLLED_BACK", item
    assert same_serial(item.get("VerifiedSerial"), elsewhere), item
    assert "rolled back" in item["Error"], item
    assert same_serial(file_serial(nginx.folder(SITE)), old)  # the folder is back on version 1
    assert same_serial(nginx.settled_serial(SITE), old) and not same_serial(nginx.served_serial(SITE), new)
    binding = certsmith.describe_binding(BindingArn=binding_arn)["Binding"]
    assert binding["Status"] == "FAILED" and binding.get("DeployedVersion") in (None, 1), binding
    assert any(binding_arn in event["resources"] for event in deployment_failed_events(certsmith, arn))
