"""The deployment service driven directly (FixedClock, a worker run by hand), with an in-process target kind whose
server can be down, refuse its configuration or fail its reload: retries of unreachable targets, one activation
per server and its undo, sealed secret options, events, superseded deployments, leases on bindings, runs resumed
after a crash."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import select

from certsmith.deploy.targets import registry
from certsmith.deploy.targets.base import Activation, DeployError, Held, Installed, Material, TargetPlugin
from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import ConflictError, ValidationError
from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.context import Caller
from certsmith.services.deploy import runner as runner_module
from certsmith.services.deploy.bindings import BindingSpec
from certsmith.services.deploy.naming import place_of
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.tables import DeployBindingRow, EventOutboxRow

from ..conftest import backend_url
from .ca_world import START, drain, make_root

KIND = "test-server"


# -- a target kind served from memory: servers by name, each with its folder of certificates ----------------------
@dataclass
class FakeServer:
    down: bool = False
    refuse: bool = False  # install refuses the configuration
    reload_fails: bool = False
    failing_reloads: int = 0  # the next reloads that fail (then they work again)
    files: dict[str, str] = field(default_factory=dict)  # binding name -> serial
    live: dict[str, str] = field(default_factory=dict)  # what the server serves since its last reload
    reloads: int = 0
    tokens: list[str] = field(default_factory=list)


SERVERS: dict[str, FakeServer] = {}


@dataclass(frozen=True)
class FakeOptions:
    server: str
    site: str
    token: str | None = None  # secret
    reload: str | None = None  # a program the target runs (the deploy_commands setting must allow it on the server)


class FakeTarget:
    kind = KIND

    def __init__(self, options: FakeOptions, state: Mapping[str, Any]) -> None:
        self.options, self.state = options, state

    @property
    def server(self) -> FakeServer:
        return SERVERS[self.options.server]

    def describe(self) -> str:
        return f"{KIND} {self.options.server}/{self.options.site}"

    def check(self) -> None:
        if self.options.server not in SERVERS:
            raise DeployError(self.describe(), "no such server", reason="missing")

    def install(self, material: Material) -> Installed:
        server = self.server
        if server.down:
            raise DeployError(self.describe(), "the server does not answer", reason="unreachable")
        if server.refuse:
            raise DeployError(self.describe(), "the server refuses the configuration", reason="refused")
        server.tokens.append(self.options.token or "")
        before = server.files.get(self.options.site)
        server.files[self.options.site] = material.serial

        def undo() -> None:
            if before is None:
                server.files.pop(self.options.site, None)
            else:
                server.files[self.options.site] = before

        return Installed(undo, {"installs": int(self.state.get("installs", 0)) + 1})

    def activation(self) -> Activation | None:
        server = self.server

        def reload() -> None:
            if server.reload_fails or server.failing_reloads > 0:
                server.failing_reloads -= 1
                raise DeployError(f"{KIND} {self.options.server}", "the reload failed", reason="reload")
            server.reloads += 1
            server.live = dict(server.files)

        return Activation(f"{KIND}:{self.options.server}", reload, f"reload {self.options.server}")

    def held(self) -> Held:
        return Held(self.server.live.get(self.options.site))

    def remove(self) -> None:
        self.server.files.pop(self.options.site, None)


PLUGIN = TargetPlugin(KIND, "an in-memory server for tests", FakeOptions, ("token",), FakeTarget,
                      programs=lambda options: (options.reload,) if options.reload else ())


@pytest.fixture()
def deploy_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Container, Caller, FixedClock]]:
    monkeypatch.setitem(registry.BUILTIN, KIND, __name__)
    SERVERS.clear()
    clock = FixedClock(START)
    settings = Settings(data_dir=tmp_path / "data", database_url=backend_url(), deploy_attempts=3,
                        deploy_retry_seconds=30.0, deploy_verify_attempts=1)
    container = build(settings, clock)
    account = container.accounts.credential(
        (tmp_path / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0])
    assert account is not None
    yield container, Caller(account.account_id, "us-east-1", account.principal), clock
    container.writes.close()
    container.database.dispose()


def issued(container: Container, caller: Caller, name: str) -> str:
    ca = make_root(container, caller, years=5)
    arn = container.certificates.request(caller, RequestedCertificate(name, [], ca, "EC_prime256v1", None, {}, []))
    drain(container)
    return arn


def bind(container: Container, caller: Caller, arn: str, server: str, site: str, **extra: Any) -> tuple[str, str]:
    options = {"server": server, "site": site, **extra.pop("options", {})}
    record, deployment_id = container.bindings.create(caller, BindingSpec(arn, KIND, options, **extra))
    assert deployment_id is not None or extra.get("deploy") is False
    return record.arn, deployment_id or ""


def events(container: Container, detail_type: str) -> list[EventOutboxRow]:
    with container.database.read() as session:
        return list(session.scalars(select(EventOutboxRow).where(EventOutboxRow.detail_type == detail_type)))


def test_an_unreachable_target_is_tried_again_until_it_answers(deploy_world: Any) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer(down=True)
    arn = issued(container, caller, "retry.deploy.test")
    binding, deployment_id = bind(container, caller, arn, "web", "a")
    drain(container)
    deployment = container.deployments.describe(caller, deployment_id)
    [item] = deployment.items or ()
    assert deployment.status == "IN_PROGRESS" and item.status == "PENDING" and item.attempts == 1
    assert item.error is not None and "does not answer" in item.error and "tried again later" in item.error
    SERVERS["web"].down = False
    clock.advance(timedelta(seconds=29))
    drain(container)
    assert container.deployments.describe(caller, deployment_id).status == "IN_PROGRESS"
    clock.advance(timedelta(seconds=2))
    drain(container)
    deployment = container.deployments.describe(caller, deployment_id)
    [item] = deployment.items or ()
    assert deployment.status == "SUCCEEDED" and item.status == "SUCCEEDED" and item.attempts == 2 and item.error is None
    assert SERVERS["web"].live == {"a": container.certificates.describe(caller, arn).serial}
    record = container.bindings.describe(caller, binding)
    assert record.status == "DEPLOYED" and record.deployed_version == 1 and record.last_error is None
    [event] = events(container, "Certsmith Deployment Succeeded")
    assert arn in event.resources and binding in event.resources


def test_a_target_down_for_good_fails_after_the_attempts(deploy_world: Any) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer(down=True)
    arn = issued(container, caller, "down.deploy.test")
    binding, deployment_id = bind(container, caller, arn, "web", "a")
    for _ in range(4):
        drain(container)
        clock.advance(timedelta(minutes=5))
    deployment = container.deployments.describe(caller, deployment_id)
    [item] = deployment.items or ()
    assert deployment.status == "FAILED" and item.status == "FAILED" and item.attempts == 3
    assert container.bindings.describe(caller, binding).status == "FAILED"
    [event] = events(container, "Certsmith Deployment Failed")
    assert "does not answer" in event.detail["Error"]


def test_bindings_of_one_server_share_one_reload_and_a_failed_reload_undoes_them_all(deploy_world: Any) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "shared.deploy.test")
    first, _ = bind(container, caller, arn, "web", "a", deploy=False)
    bind(container, caller, arn, "web", "b", deploy=False)
    deployment_id = container.deployments.run(caller, arn, None, None)
    drain(container)
    assert container.deployments.describe(caller, deployment_id).status == "SUCCEEDED"
    assert SERVERS["web"].reloads == 1 and set(SERVERS["web"].live) == {"a", "b"}
    # A renewal whose reload fails: both sites get their old files back and the server reloads them.
    old = dict(SERVERS["web"].files)
    SERVERS["web"].reload_fails = True
    clock.advance(timedelta(minutes=1))
    container.lifecycle.renew(caller, arn)
    drain(container)
    renewal = container.deployments.page(caller, arn, None, None)[0][0]
    assert renewal.trigger == "RENEWAL" and renewal.version == 2
    renewal = container.deployments.describe(caller, renewal.deployment_id)
    assert renewal.status == "FAILED" and {i.status for i in renewal.items or ()} == {"FAILED"}
    assert all("the reload failed" in (i.error or "") for i in renewal.items or ())
    assert SERVERS["web"].files == old
    record = container.bindings.describe(caller, first)
    assert record.deployed_version == 1 and record.status == "FAILED"


def test_a_refused_install_fails_at_once_and_the_others_deploy(deploy_world: Any) -> None:
    container, caller, _ = deploy_world
    SERVERS["good"], SERVERS["bad"] = FakeServer(), FakeServer()
    arn = issued(container, caller, "mixed.deploy.test")
    bind(container, caller, arn, "good", "a", deploy=False)
    bind(container, caller, arn, "bad", "a", deploy=False)
    SERVERS["bad"].refuse = True
    deployment_id = container.deployments.run(caller, arn, None, None)
    drain(container)
    deployment = container.deployments.describe(caller, deployment_id)
    statuses = {i.target: (i.status, i.attempts) for i in deployment.items or ()}
    assert statuses == {f"{KIND} good/a": ("SUCCEEDED", 1), f"{KIND} bad/a": ("FAILED", 1)}
    assert deployment.status == "FAILED" and SERVERS["bad"].reloads == 0 and SERVERS["good"].reloads == 1


def test_secret_options_are_sealed_and_given_to_the_target(deploy_world: Any) -> None:
    container, caller, _ = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "secret.deploy.test")
    binding, _ = bind(container, caller, arn, "web", "a", options={"token": "s3cr3t-t0ken"})
    drain(container)
    assert SERVERS["web"].tokens == ["s3cr3t-t0ken"]
    record = container.bindings.describe(caller, binding)
    assert record.secrets_set == ["token"] and "token" not in record.options
    with container.database.read() as session:
        row = session.scalar(select(DeployBindingRow).where(DeployBindingRow.arn == binding))
        assert row is not None and row.sealed_secrets is not None and b"s3cr3t" not in row.sealed_secrets
        assert "s3cr3t" not in str(row.options)
    with pytest.raises(ValidationError, match="no such server"):
        bind(container, caller, arn, "nowhere", "a")



def test_a_target_that_runs_programs_needs_deploy_commands_on_the_server(deploy_world: Any) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "commands.deploy.test")
    with pytest.raises(ValidationError) as refused:
        bind(container, caller, arn, "web", "a", options={"reload": "/usr/sbin/reload-web"})
    assert refused.value.field == "Options.reload"
    assert "runs /usr/sbin/reload-web as the server's user" in refused.value.message
    assert "CERTSMITH_DEPLOY_COMMANDS=true" in refused.value.message and "agent" in refused.value.message
    # (an agent binding runs it on the agent's host: allowed, see test_deploy_agents)
    # A binding made while the setting was on, deployed after a restart with it off: the item fails, nothing runs.
    allowed = build(replace(container.settings, deploy_commands=True), clock)
    try:
        binding, _ = bind(allowed, caller, arn, "web", "c", options={"reload": "/usr/sbin/reload-web"}, deploy=False)
    finally:
        allowed.writes.close()
        allowed.database.dispose()
    deployment_id = container.deployments.run(caller, arn, [binding], None)
    drain(container)
    deployment = container.deployments.describe(caller, deployment_id)
    [item] = deployment.items or ()
    assert deployment.status == "FAILED" and item.status == "FAILED" and "deploy_commands" in (item.error or "")
    assert SERVERS["web"].files == {} and SERVERS["web"].reloads == 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_stale_deployment_is_superseded_and_never_overwrites_a_newer_version(deploy_world: Any) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer(down=True)
    arn = issued(container, caller, "stale.deploy.test")
    binding, _ = bind(container, caller, arn, "web", "a", deploy=False)
    manual = container.deployments.run(caller, arn, None, None)  # version 1, its target down: tried again later
    drain(container)
    clock.advance(timedelta(seconds=31))
    drain(container)  # its second attempt: next one 60 s on
    clock.advance(timedelta(seconds=9))
    container.lifecycle.renew(caller, arn)
    drain(container)
    [item] = container.deployments.describe(caller, manual).items or ()
    assert item.status == "SUPERSEDED" and container.deployments.describe(caller, manual).status == "SUPERSEDED"
    renewal = container.deployments.page(caller, arn, None, None)[0][0]
    assert renewal.trigger == "RENEWAL" and renewal.deployment_id in (item.error or "")
    SERVERS["web"].down = False
    for _ in range(3):  # the renewal's retry and the old run's wake-up both come due
        clock.advance(timedelta(seconds=31))
        drain(container)
    v2 = container.certificates.describe(caller, arn).serial
    assert SERVERS["web"].live["a"] == v2 and SERVERS["web"].tokens == [""]
    assert container.deployments.describe(caller, renewal.deployment_id).status == "SUCCEEDED"
    record = container.bindings.describe(caller, binding)
    assert record.deployed_version == 2 and record.status == "DEPLOYED"


def test_one_binding_is_deployed_by_one_run_at_a_time_even_when_a_job_lease_runs_out(
        deploy_world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "lease.deploy.test")
    gate, entered = threading.Event(), threading.Event()
    real = FakeTarget.install

    def slow(self: FakeTarget, material: Material) -> Installed:
        entered.set()
        assert gate.wait(30)
        return real(self, material)

    monkeypatch.setattr(FakeTarget, "install", slow)
    _, deployment_id = bind(container, caller, arn, "web", "a")
    first = threading.Thread(target=container.worker().run_once)
    first.start()
    assert entered.wait(30)
    entered.clear()
    clock.advance(timedelta(minutes=6))  # the job's lease (5 minutes) ran out while the run still works
    second = threading.Thread(target=container.worker().run_once)
    second.start()
    second.join(30)
    assert not second.is_alive() and not entered.is_set()  # it took the job over but left the leased binding alone
    gate.set()
    first.join(30)
    clock.advance(timedelta(seconds=5))
    drain(container)
    assert len(SERVERS["web"].tokens) == 1
    assert container.deployments.describe(caller, deployment_id).status == "SUCCEEDED"
    with container.database.read() as session:
        row = session.scalar(select(DeployBindingRow))
        assert row is not None and row.lease_owner is None and row.lease_until is None


def test_a_run_resumed_after_a_crash_puts_back_the_kept_previous_version(
        deploy_world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "resume.deploy.test")
    binding, _ = bind(container, caller, arn, "web", "a")
    drain(container)
    v1 = container.certificates.describe(caller, arn).serial
    assert SERVERS["web"].live == {"a": v1}
    real_finish = runner_module.DeploymentRunner._finish
    crashes = [RuntimeError("the worker died before recording")]

    def crash_once(self: Any, *args: Any) -> Any:
        if crashes:
            raise crashes.pop()
        return real_finish(self, *args)

    monkeypatch.setattr(runner_module.DeploymentRunner, "_finish", crash_once)
    clock.advance(timedelta(minutes=1))
    container.lifecycle.renew(caller, arn)
    drain(container)  # version 2 installed and live, then the run dies: its item stays IN_PROGRESS
    renewal = container.deployments.page(caller, arn, None, None)[0][0]
    v2 = renewal.serial
    [item] = container.deployments.describe(caller, renewal.deployment_id).items or ()
    assert item.status == "IN_PROGRESS" and SERVERS["web"].live == {"a": v2}
    SERVERS["web"].failing_reloads = 1  # the resumed run's reload fails: the old version must go back
    clock.advance(timedelta(minutes=10))
    drain(container)
    deployment = container.deployments.describe(caller, renewal.deployment_id)
    [item] = deployment.items or ()
    assert item.status == "FAILED" and "the previous version was put back" in (item.error or "")
    assert SERVERS["web"].files == {"a": v1} and SERVERS["web"].live == {"a": v1}
    assert container.bindings.describe(caller, binding).deployed_version == 1


def test_a_first_deployment_resumed_after_a_crash_says_nothing_could_be_put_back(
        deploy_world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    container, caller, clock = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "resume-first.deploy.test")
    real_finish = runner_module.DeploymentRunner._finish
    crashes = [RuntimeError("the worker died before recording")]

    def crash_once(self: Any, *args: Any) -> Any:
        if crashes:
            raise crashes.pop()
        return real_finish(self, *args)

    monkeypatch.setattr(runner_module.DeploymentRunner, "_finish", crash_once)
    _, deployment_id = bind(container, caller, arn, "web", "a", rollback=True,
                            verify={"Host": "127.0.0.1", "Port": closed_port()})
    drain(container)
    clock.advance(timedelta(minutes=10))
    drain(container)
    [item] = container.deployments.describe(caller, deployment_id).items or ()
    assert item.status == "FAILED", item  # never ROLLED_BACK: there was no earlier version to put back
    assert "could not be put back" in (item.error or "") and "could not be reached" in (item.error or "")


def test_a_failed_verification_without_rollback_records_that_the_target_holds_the_new_version(
        deploy_world: Any) -> None:
    container, caller, _ = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "verify.deploy.test")
    port = closed_port()
    binding, deployment_id = bind(container, caller, arn, "web", "a", verify={"Host": "127.0.0.1", "Port": port})
    drain(container)
    [item] = container.deployments.describe(caller, deployment_id).items or ()
    assert item.status == "FAILED"
    assert item.error is not None and item.error.startswith(
        f"127.0.0.1:{port} (server name verify.deploy.test) could not be reached: connection refused"), item.error
    record = container.bindings.describe(caller, binding)
    serial = container.certificates.describe(caller, arn).serial
    assert record.status == "FAILED" and record.deployed_version == 1 and record.deployed_serial == serial
    assert record.last_error is not None and "does not serve it" in record.last_error
    assert SERVERS["web"].live == {"a": serial}


def test_a_folder_another_binding_writes_is_refused_naming_that_binding(deploy_world: Any, tmp_path: Path) -> None:
    container, caller, _ = deploy_world
    arn = issued(container, caller, "folder.deploy.test")
    other = issued(container, caller, "other-folder.deploy.test")
    folder = tmp_path / "site"
    folder.mkdir()
    (tmp_path / "x").mkdir()
    first, _ = container.bindings.create(caller, BindingSpec(arn, "files", {"path": str(folder)}, deploy=False))
    for path, certificate in ((f"{folder}/", arn), (f"{folder}/./", other), (f"{tmp_path}/x/../site", other)):
        with pytest.raises(ConflictError) as refused:
            container.bindings.create(caller, BindingSpec(certificate, "files", {"path": path}, deploy=False))
        assert refused.value.field == "Options.path"
        assert refused.value.message == (f"Options.path: binding {first.binding_id} (files {folder}) already deploys to "
                                         f"{folder}; a folder holds one certificate"), refused.value.message
    # on the server's own disk a symbolic link names the folder it points to
    (tmp_path / "link").symlink_to(folder)
    with pytest.raises(ConflictError) as linked:
        container.bindings.create(caller, BindingSpec(other, "files", {"path": str(tmp_path / "link")}, deploy=False))
    assert linked.value.field == "Options.path" and first.binding_id in linked.value.message
    # another folder is another place; once the binding is gone its folder is free
    (tmp_path / "site2").mkdir()
    container.bindings.create(caller, BindingSpec(other, "files", {"path": str(tmp_path / "site2")}, deploy=False))
    container.bindings.delete(caller, first.arn)
    container.bindings.create(caller, BindingSpec(other, "files", {"path": str(folder)}, deploy=False))


def test_where_a_binding_deploys() -> None:
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/1"
    listener = "arn:aws:elbv2:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
    assert place_of("files", {"path": "/srv/tls/"}, cert) == place_of("nginx", {"path": "/srv//tls/."}, "other")
    assert place_of("files", {"path": "/srv/tls"}, cert) != place_of("files", {"path": "/srv/tls2"}, cert)
    default = place_of("aws-elbv2", {"listener_arn": listener}, cert)
    assert default is not None and default == place_of("aws-elbv2", {"listener_arn": listener, "sni": False}, "other")
    assert "one default certificate" in default.words and default.field == "Options.listener_arn"
    sni = place_of("aws-elbv2", {"listener_arn": listener, "sni": True}, cert)
    assert sni is not None and sni != default and sni == place_of("aws-elbv2", {"listener_arn": listener, "sni": "true"},
                                                                  cert)
    assert sni != place_of("aws-elbv2", {"listener_arn": listener, "sni": True}, "other")
    assert place_of("aws-cloudfront", {"distribution_id": "E1"}, cert) == \
        place_of("aws-cloudfront", {"distribution_id": "E1"}, "other")
    assert place_of("aws-acm", {"region": "us-east-1"}, cert) is None  # a new ACM certificate each time
    acm = place_of("aws-acm", {"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"}, cert)
    assert acm is not None and acm == place_of("aws-acm", {"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"},
                                               "other")
    assert place_of(KIND, {"server": "web", "site": "a"}, cert) is None


def test_verify_at_an_ip_address_sends_the_certificates_name(deploy_world: Any) -> None:
    container, caller, _ = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "sni.deploy.test")
    for host, shown in (("127.0.0.1", "127.0.0.1"), ("[::1]", "::1")):
        record, _ = container.bindings.create(caller, BindingSpec(arn, KIND, {"server": "web", "site": host},
                                                                  verify={"Host": host}, deploy=False))
        assert record.verify == {"Host": shown, "Port": 443, "ServerName": "sni.deploy.test"}
    named, _ = container.bindings.create(caller, BindingSpec(arn, KIND, {"server": "web", "site": "n"}, deploy=False,
                                                             verify={"Host": "web.example.test", "Port": 8443}))
    assert named.verify == {"Host": "web.example.test", "Port": 8443, "ServerName": "web.example.test"}
    wildcard = issued(container, caller, "*.wild.deploy.test")
    with pytest.raises(ValidationError) as refused:
        container.bindings.create(caller, BindingSpec(wildcard, KIND, {"server": "web", "site": "w"},
                                                      verify={"Host": "10.0.0.7"}, deploy=False))
    assert refused.value.field == "Verify.ServerName"
    assert refused.value.message.startswith("give Verify.ServerName: the certificate is a wildcard (*.wild.deploy.test)")
    record, _ = container.bindings.create(caller, BindingSpec(wildcard, KIND, {"server": "web", "site": "w"}, deploy=False,
                                                              verify={"Host": "10.0.0.7", "ServerName": "a.wild.deploy.test"}))
    assert record.verify == {"Host": "10.0.0.7", "Port": 443, "ServerName": "a.wild.deploy.test"}


def test_a_binding_name_is_used_once_in_an_account(deploy_world: Any) -> None:
    container, caller, _ = deploy_world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "named.deploy.test")
    first, _ = container.bindings.create(caller, BindingSpec(arn, KIND, {"server": "web", "site": "a"}, name="web",
                                                             deploy=False))
    with pytest.raises(ConflictError) as refused:
        container.bindings.create(caller, BindingSpec(arn, KIND, {"server": "web", "site": "b"}, name=" web ",
                                                      deploy=False))
    assert refused.value.field == "Name"
    assert refused.value.message == (f"Name: binding {first.binding_id} ({KIND} web/a) is already named 'web'; a name is "
                                     "given to one binding")
    container.bindings.create(caller, BindingSpec(arn, KIND, {"server": "web", "site": "b"}, name="web-2", deploy=False))
    container.bindings.delete(caller, first.arn)
    container.bindings.create(caller, BindingSpec(arn, KIND, {"server": "web", "site": "c"}, name="web", deploy=False))


def test_a_served_certificate_is_named_by_its_common_name_or_first_san() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from certsmith.services.deploy.verify import leaf_name

    key = ec.generate_private_key(ec.SECP256R1())

    def leaf(subject: list[x509.NameAttribute], sans: list[x509.GeneralName]) -> x509.Certificate:
        builder = x509.CertificateBuilder().subject_name(x509.Name(subject)).issuer_name(x509.Name(subject)) \
            .public_key(key.public_key()).serial_number(7).not_valid_before(START).not_valid_after(START + timedelta(1))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(key, hashes.SHA256())

    assert leaf_name(leaf([x509.NameAttribute(x509.NameOID.COMMON_NAME, "other.example.test")], [])) == \
        " (CN=other.example.test)"
    assert leaf_name(leaf([], [x509.DNSName("san.example.test"), x509.DNSName("b.example.test")])) == \
        " (DNS:san.example.test)"
    assert leaf_name(leaf([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "O")], [])) == ""
