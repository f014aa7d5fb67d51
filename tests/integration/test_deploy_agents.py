"""Agent bindings driven through the services: reports settle their items and supersede older ones, work carries
Rollback and no secret, kinds with secrets stay on the server, InUseBy and DeleteCertificate under concurrency."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from certsmith.deploy.targets import registry
from certsmith.deploy.targets.base import TargetPlugin
from certsmith.domain.errors import ConflictError, ResourceInUseError, ValidationError
from certsmith.services.context import Caller
from certsmith.services.deploy import results
from certsmith.services.deploy.agents import AgentReport, agent_arn
from certsmith.services.deploy.bindings import BindingSpec
from certsmith.services.wiring import Container
from certsmith.store.tables import DeployAgentRow, DeploymentItemRow

from .ca_world import drain
from .test_deploy_service import KIND, SERVERS, FakeOptions, FakeServer, FakeTarget, bind, deploy_world, issued

__all__ = ["PLUGIN", "deploy_world"]

PLAIN = "test-plain-server"  # the in-memory server kind without secret options: an agent may deploy it
PLUGIN = TargetPlugin(PLAIN, "an in-memory server without secrets", FakeOptions, (), FakeTarget,
                      programs=lambda options: (options.reload,) if options.reload else ())
PASSPHRASE = b"passphrase-1234"


@pytest.fixture()
def world(deploy_world: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Container, Caller, Any, Caller]]:
    monkeypatch.setitem(registry.BUILTIN, PLAIN, __name__)
    container, caller, clock = deploy_world
    with container.database.transaction() as session:
        session.add(DeployAgentRow(id=str(uuid.uuid4()), account_id=caller.account_id, region=caller.region,
                                   name="edge-1", access_key_id=f"AKIA{uuid.uuid4().hex[:16].upper()}",
                                   created_at=clock.now(), last_seen_at=None))
    agent = Caller(caller.account_id, caller.region, agent_arn(caller.region, caller.account_id, "edge-1"))
    yield container, caller, clock, agent


def bind_plain(container: Container, caller: Caller, arn: str, site: str, **extra: Any) -> tuple[str, str | None]:
    options = {"server": "web", "site": site, **extra.pop("options", {})}
    record, deployment_id = container.bindings.create(caller, BindingSpec(arn, PLAIN, options, **extra))
    return record.arn, deployment_id


def test_an_agent_binding_waits_for_its_report(world: Any) -> None:
    container, caller, _, agent = world
    arn = issued(container, caller, "agent.deploy.test")
    with pytest.raises(ValidationError, match="no agent named"):
        bind_plain(container, caller, arn, "a", agent="edge-2")
    # the agent runs the target's programs on its own host: allowed without deploy_commands
    with pytest.raises(ValidationError) as refused:  # nothing would ever tell it to roll back
        bind_plain(container, caller, arn, "a", agent="edge-1", rollback=True)
    assert refused.value.field == "Rollback" and refused.value.message == (
        "Rollback needs Verify: the version is put back when the endpoint does not serve it")
    binding, deployment_id = bind_plain(container, caller, arn, "a", agent="edge-1", rollback=True,
                                        options={"reload": "/usr/sbin/reload-web"},
                                        verify={"Host": "web.agent.deploy.test"})
    assert deployment_id is not None
    drain(container)
    [item] = container.deployments.describe(caller, deployment_id).items or ()
    assert item.status == "WAITING_FOR_AGENT"
    assert container.certificates.describe(caller, arn).in_use_by == []
    with pytest.raises(ResourceInUseError):  # a binding holds the certificate even before the agent deployed it
        container.certificates.delete(caller, arn)
    with pytest.raises(ResourceInUseError, match=binding):  # and it cannot be revoked under the agent either
        container.lifecycle.revoke(caller, arn, "SUPERSEDED")
    [work] = container.agents.work(agent, {}, PASSPHRASE)
    assert work.rollback is True and work.deployment_id == deployment_id
    assert work.options == {"server": "web", "site": "a", "reload": "/usr/sbin/reload-web"}
    container.agents.report(agent, AgentReport(binding, 1, work.serial, "SUCCEEDED", verified_serial=work.serial))
    deployment = container.deployments.describe(caller, deployment_id)
    [item] = deployment.items or ()
    assert deployment.status == "SUCCEEDED" and item.status == "SUCCEEDED" and item.verified_serial == work.serial
    assert container.certificates.describe(caller, arn).in_use_by == [binding]
    record = container.bindings.describe(caller, binding)
    assert record.status == "DEPLOYED" and record.deployed_version == 1
    container.agents.report(agent, AgentReport(binding, 1, work.serial, "SUCCEEDED"))  # a repeated report: no harm
    assert container.agents.work(agent, {binding: 1}, PASSPHRASE) == []
    container.bindings.delete(caller, binding)
    assert container.certificates.describe(caller, arn).in_use_by == []
    container.certificates.delete(caller, arn)


def test_no_agent_deployment_stays_in_progress_once_a_newer_one_is_written_or_reported(world: Any) -> None:
    container, caller, _, agent = world
    arn = issued(container, caller, "agentstuck.deploy.test")
    binding, first = bind_plain(container, caller, arn, "a", agent="edge-1")
    second = container.deployments.run(caller, arn, None, None)
    assert first is not None
    assert container.deployments.describe(caller, first).status == "SUPERSEDED"
    [work] = container.agents.work(agent, {}, PASSPHRASE)
    assert work.deployment_id == second
    container.agents.report(agent, AgentReport(binding, 1, work.serial, "SUCCEEDED"))
    assert container.deployments.describe(caller, second).status == "SUCCEEDED"
    # an older item left open (by a deployment written before this rule) is settled by the next report too
    third = container.deployments.run(caller, arn, None, None)
    with container.database.transaction() as session:
        [old] = session.scalars(select(DeploymentItemRow).where(DeploymentItemRow.deployment_id == second))
        old.status = "WAITING_FOR_AGENT"
    container.agents.report(agent, AgentReport(binding, 1, work.serial, "SUCCEEDED"))
    assert container.deployments.describe(caller, third).status == "SUCCEEDED"
    [item] = container.deployments.describe(caller, second).items or ()
    assert item.status == "SUPERSEDED" and third in (item.error or "")
    assert {d.status for d in container.deployments.page(caller, arn, None, None)[0]} <= {"SUCCEEDED", "SUPERSEDED"}


def test_kinds_with_secret_options_are_not_deployed_by_agents(world: Any) -> None:
    container, caller, _, _ = world
    arn = issued(container, caller, "agentsecret.deploy.test")
    with pytest.raises(ValidationError) as refused:
        bind(container, caller, arn, "web", "a", agent="edge-1")
    assert refused.value.field == "Agent"
    assert f"{KIND} is deployed by the server, not an agent" in refused.value.message


def test_a_report_with_a_serial_too_long_is_refused_naming_the_field(world: Any) -> None:
    container, caller, _, agent = world
    arn = issued(container, caller, "agentlong.deploy.test")
    binding, _ = bind_plain(container, caller, arn, "a", agent="edge-1")
    serial = container.certificates.describe(caller, arn).serial
    assert serial is not None
    with pytest.raises(ValidationError) as refused:
        container.agents.report(agent, AgentReport(binding, 1, serial, "FAILED", "e", verified_serial="A" * 300))
    assert refused.value.field == "VerifiedSerial"
    with pytest.raises(ValidationError) as refused:
        container.agents.report(agent, AgentReport(binding, 1, "0" * 300, "SUCCEEDED"))
    assert refused.value.field == "Serial"


def test_bindings_made_at_once_all_land_in_in_use_by(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    container, caller, _, _ = world
    SERVERS["web"] = FakeServer()
    arn = issued(container, caller, "race.deploy.test")
    real = results.RenewalRecorder.plan

    def slow(session: Any, certificate: Any, now: Any) -> Any:  # widen the window between reading and writing InUseBy
        time.sleep(0.3)
        return real(session, certificate, now)

    monkeypatch.setattr(results.RenewalRecorder, "plan", staticmethod(slow))
    made: list[str] = []
    threads = [threading.Thread(target=lambda s=site: made.append(bind(container, caller, arn, "web", s,
                                                                       deploy=False)[0])) for site in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(made) == 3 and sorted(container.certificates.describe(caller, arn).in_use_by) == sorted(made)
    with pytest.raises(ResourceInUseError):
        container.certificates.delete(caller, arn)


def test_one_folder_per_host_the_server_or_one_agent(world: Any, tmp_path: Any) -> None:
    container, caller, clock, _ = world
    with container.database.transaction() as session:
        session.add(DeployAgentRow(id=str(uuid.uuid4()), account_id=caller.account_id, region=caller.region,
                                   name="edge-2", access_key_id=f"AKIA{uuid.uuid4().hex[:16].upper()}",
                                   created_at=clock.now(), last_seen_at=None))
    arn = issued(container, caller, "agentfolder.deploy.test")
    other = issued(container, caller, "agentfolder2.deploy.test")
    first, _ = container.bindings.create(caller, BindingSpec(arn, "files", {"path": "/etc/tls/web"}, agent="edge-1"))
    with pytest.raises(ConflictError) as refused:
        container.bindings.create(caller, BindingSpec(other, "files", {"path": "/etc/tls/web/"}, agent="edge-1"))
    assert refused.value.field == "Options.path" and f"binding {first.binding_id} (files /etc/tls/web)" in str(refused.value)
    container.bindings.create(caller, BindingSpec(other, "files", {"path": "/etc/tls/web"}, agent="edge-2"))
    (tmp_path / "web").mkdir()  # the server's own folder of that name is not the agents'
    container.bindings.create(caller, BindingSpec(other, "files", {"path": str(tmp_path / "web")}))


def test_bindings_to_one_folder_made_at_once_one_is_refused(world: Any, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Any) -> None:
    container, caller, _, _ = world
    arns = [issued(container, caller, f"race{n}.folder.deploy.test") for n in range(3)]
    real = results.RenewalRecorder.plan

    def slow(session: Any, certificate: Any, now: Any) -> Any:  # widen the window between checking and writing
        time.sleep(0.3)
        return real(session, certificate, now)

    monkeypatch.setattr(results.RenewalRecorder, "plan", staticmethod(slow))
    made: list[str] = []
    refused: list[Exception] = []

    def create(arn: str) -> None:
        try:
            made.append(container.bindings.create(caller, BindingSpec(arn, "files", {"path": str(tmp_path)},
                                                                      deploy=False))[0].arn)
        except ConflictError as error:
            refused.append(error)

    threads = [threading.Thread(target=create, args=(arn,)) for arn in arns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(made) == 1 and len(refused) == 2, (made, refused)


def test_deleting_a_bound_certificate_names_its_bindings_and_how_to_end_them(world: Any) -> None:
    container, caller, _, _ = world
    arn = issued(container, caller, "bound.deploy.test")
    first, _ = bind_plain(container, caller, arn, "a", agent="edge-1", name="edge-site", deploy=False)
    second, _ = bind_plain(container, caller, arn, "b", agent="edge-1", deploy=False)
    with pytest.raises(ResourceInUseError) as refused:
        container.certificates.delete(caller, arn)
    users = (f"binding {first} (edge-site)", f"binding {second}")  # made at one instant: in either order
    assert refused.value.message in (
        f"certificate {arn} is in use by {a}, {b}; remove the bindings first: certsmith deploy remove <id> for each, "
        "or DeleteBinding" for a, b in (users, users[::-1]))
    container.bindings.delete(caller, second)
    with pytest.raises(ResourceInUseError, match=f"remove the binding first: certsmith deploy remove "
                                                 f"{first.rsplit('/', 1)[1]}, or DeleteBinding$"):
        container.certificates.delete(caller, arn)
    container.bindings.delete(caller, first)
    container.certificates.delete(caller, arn)
