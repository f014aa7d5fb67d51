"""The rollout every server kind must survive: a binding with Verify, its first deployment, then a renewal rolled
out while a client handshakes in a loop; not one handshake may fail, and the new serial must be served."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.handshakes import HandshakeLoop

from .world import issue, new_deployment, renew, wait_binding, wait_deployment

HOST = "127.0.0.1"


@dataclass
class Rolled:
    """What a rollout left: the binding, both serials, the renewal's deployment and the handshake loop."""

    arn: str
    binding: dict[str, Any]
    first_serial: str
    new_serial: str
    deployment: dict[str, Any]
    loop: HandshakeLoop


def succeeded_events(certsmith: Any, arn: str) -> list[dict[str, Any]]:
    listed = certsmith.list_events(Source="certsmith", DetailType="Certsmith Deployment Succeeded", Resource=arn,
                                   Limit=1000)["Events"]
    return [json.loads(entry["Event"]) for entry in listed]


def roll_out(acm: Any, certsmith: Any, ca: str, ca_pem: str, *, kind: str, options: Mapping[str, str], port: int,
             name: str, served: Callable[[], str | None], threads: int = 2) -> Rolled:
    """Bind a new certificate for ``name`` to the target, check its first deployment, then renew it under a
    handshake loop; returns once the renewal's deployment has finished and the loop is stopped."""
    arn = issue(acm, ca, name)
    first_serial = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Serial"]
    created = certsmith.create_binding(CertificateArn=arn, Kind=kind, Options=dict(options), Name=f"{kind} {name}",
                                       Verify={"Host": HOST, "Port": port, "ServerName": name})
    binding_arn = created["Binding"]["BindingArn"]
    first = wait_deployment(certsmith, created["DeploymentId"])
    assert first["Status"] == "SUCCEEDED", first
    [item] = first["Items"]
    assert item["Status"] == "SUCCEEDED" and same_serial(item["VerifiedSerial"], first_serial), item
    assert same_serial(served(), first_serial)
    in_use = acm.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"]
    assert binding_arn in in_use, in_use

    loop = HandshakeLoop(HOST, port, name, threads=threads, trust_pem=ca_pem, check_name=True, timeout=10,
                         max_seconds=120)
    with loop:
        assert loop.saw(first_serial), loop.summary()
        new_serial = renew(acm, certsmith, arn)
        deployment = wait_deployment(certsmith, new_deployment(certsmith, arn, "RENEWAL", {first["DeploymentId"]}))
        loop.wait_for_serial(new_serial, within=30)
        handshakes = loop.handshakes
        # a few more handshakes after the switch, so a client still given the old certificate would be seen
        until_more = handshakes + 20 * threads
        while loop.handshakes < until_more and loop.running:
            loop.wait_for_serial(new_serial, within=1)
    binding = wait_binding(certsmith, binding_arn, new_serial)
    return Rolled(arn, binding, first_serial, new_serial, deployment, loop)


def check_rolled(rolled: Rolled, certsmith: Any, served: Callable[[], str | None]) -> None:
    """The renewal was deployed, verified and served, and the loop saw no failure and both serials."""
    deployment, loop = rolled.deployment, rolled.loop
    assert deployment["Status"] == "SUCCEEDED" and deployment["Trigger"] == "RENEWAL", deployment
    assert same_serial(deployment["Serial"], rolled.new_serial) and deployment["Version"] == 2
    [item] = deployment["Items"]
    assert item["Status"] == "SUCCEEDED" and same_serial(item["VerifiedSerial"], rolled.new_serial), item
    assert item.get("PreviousVersion") == 1, item
    assert rolled.binding["DeployedVersion"] == 2 and not rolled.binding.get("LastError"), rolled.binding
    assert same_serial(served(), rolled.new_serial)
    assert loop.failed == 0, loop.summary()
    assert loop.handshakes > 20, loop.summary()
    assert {serial.lower() for serial in loop.serials} == {rolled.first_serial.lower(), rolled.new_serial.lower()}, \
        loop.summary()
    assert same_serial(loop.seen[0].serial, rolled.first_serial), loop.summary()
    events = succeeded_events(certsmith, rolled.arn)
    assert any(same_serial(event["detail"].get("Serial"), rolled.new_serial) for event in events), events
