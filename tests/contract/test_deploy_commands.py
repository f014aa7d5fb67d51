"""A real `certsmith serve` with deploy_commands off (the default): targets that would run programs as the server's
user are refused on the server and allowed through an agent; kinds with secrets stay off agents; an agent's report
with a serial longer than the columns is a ValidationException naming the field, never a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from certsmith.models import MODELS_PATH
from certsmith.testing.pki import WAIT, root_ca

from ..conftest import Server, backend_url, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("deploy-commands"), backend_url())
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log_path.read_text(), srv.log_path.read_text()


@pytest.fixture(scope="module")
def own(server: Server) -> Any:
    return server.client("certsmith")


@pytest.fixture(scope="module")
def certificate(server: Server) -> str:
    acm = server.client("acm")
    ca = root_ca(server.client("acm-pca"), "Commands Root")
    arn: str = acm.request_certificate(DomainName="commands.deploy.test", CertificateAuthorityArn=ca,
                                       KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn


def refusal(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


@pytest.mark.parametrize(("kind", "options", "field", "runs"), [
    ("files", {"reload_command": "/bin/touch /tmp/never"}, "reload_command", "runs /bin/touch"),
    ("nginx", {}, "nginx", "runs nginx"),
    ("apache", {}, "apachectl", "runs apachectl"),
])
def test_a_target_that_runs_a_program_is_refused_on_the_server(own: Any, certificate: str, tmp_path: Path, kind: str,
                                                               options: dict[str, str], field: str, runs: str) -> None:
    code, message = refusal(own.create_binding, CertificateArn=certificate, Kind=kind,
                            Options={"path": str(tmp_path), **options})
    assert code == "ValidationException" and message.startswith(f"Options.{field}: the {kind} target {runs}")
    assert "as the server's user" in message and "CERTSMITH_DEPLOY_COMMANDS=true" in message and "agent" in message
    assert own.list_bindings(CertificateArn=certificate)["Bindings"] == []


def test_an_agent_may_run_programs_but_not_take_secrets_and_reports_are_bounded(server: Server, own: Any,
                                                                                certificate: str, tmp_path: Path) -> None:
    plain = own.create_binding(CertificateArn=certificate, Kind="files", Options={"path": str(tmp_path)},
                               Deploy=False)["Binding"]  # no program: allowed on the server
    agent = own.create_agent(Name="edge-commands")
    code, message = refusal(own.create_binding, CertificateArn=certificate, Kind="nginx", Agent="edge-commands",
                            Rollback=True, Options={"path": "/etc/nginx/certs/site", "nginx": "/usr/sbin/nginx"})
    assert code == "ValidationException" and message.startswith("Rollback needs Verify")
    bound = own.create_binding(CertificateArn=certificate, Kind="nginx", Agent="edge-commands", Rollback=True,
                               Options={"path": "/etc/nginx/certs/site", "nginx": "/usr/sbin/nginx"},
                               Verify={"Host": "site.commands.test"})
    code, message = refusal(own.create_binding, CertificateArn=certificate, Kind="aws-acm", Agent="edge-commands",
                            Options={"region": "us-east-1", "access_key_id": "AKIAEXAMPLE",
                                     "secret_access_key": "SECRETVALUE123"})
    assert code == "ValidationException" and message.startswith("Agent: aws-acm is deployed by the server, not an agent")
    assert "SECRETVALUE" not in message
    session = boto3.session.Session()
    session._session.get_component("data_loader").search_paths.append(str(MODELS_PATH))
    client = session.client("certsmith", endpoint_url=server.endpoint, region_name="us-east-1",
                            aws_access_key_id=agent["Agent"]["AccessKeyId"],
                            aws_secret_access_key=agent["SecretAccessKey"])
    [work] = client.poll_agent_work(Passphrase=b"passphrase-1234", WaitSeconds=0)["Work"]
    assert work["BindingArn"] == bound["Binding"]["BindingArn"] and work["Rollback"] is True
    for field, values in (("VerifiedSerial", {"Serial": work["Serial"], "VerifiedSerial": "A" * 300}),
                          ("Serial", {"Serial": "0" * 300})):
        code, message = refusal(client.report_deployment, BindingArn=work["BindingArn"], Version=work["Version"],
                                Status="FAILED", Error="e", **values)
        assert code == "ValidationException" and f"'{field[0].lower()}{field[1:]}'" in message and "128" in message
    client.report_deployment(BindingArn=work["BindingArn"], Version=work["Version"], Serial=work["Serial"],
                             Status="SUCCEEDED", VerifiedSerial=work["Serial"])
    assert own.describe_deployment(DeploymentId=bound["DeploymentId"])["Deployment"]["Status"] == "SUCCEEDED"
    for arn in (plain["BindingArn"], bound["Binding"]["BindingArn"]):
        own.delete_binding(BindingArn=arn)
    own.delete_agent(Name="edge-commands")
