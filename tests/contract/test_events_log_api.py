"""ListEvents, ListDeadLetters and ReplayEvents through boto3, and `certsmith events list|tail|dead-letters|replay`,
against a real server delivering to real HTTP receivers on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from certsmith.testing.pki import root_ca

from ..conftest import Server, backend_url, start_server
from ..integration.test_event_delivery import SECRET, Receiver
from .test_cli import cli

AVAILABLE = "ACM Certificate Available"


@dataclass
class World:
    server: Server
    receiver: Receiver
    client: Any  # certsmith's own API
    arns: list[str]
    event_ids: list[str]


def wait_for(what: str, check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        time.sleep(0.05)


def error(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def available(client: Any, **filters: Any) -> list[dict[str, Any]]:
    return list(client.list_events(DetailType=AVAILABLE, Limit=1000, **filters)["Events"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    receiver = Receiver()
    receiver.start()
    receiver.refuse["/bad"] = 400
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CERTSMITH_EVENT_DELIVERY_SECONDS", "0.1")
        env.setenv("CERTSMITH_EVENT_RETRY_SECONDS", "0.2")
        server = start_server(tmp_path_factory.mktemp("events-log"), backend_url())
    try:
        client = server.client("certsmith")
        ca = root_ca(server.client("acm-pca"), "Event Log Root")
        for name, path in (("log-ok", "/ok"), ("log-bad", "/bad")):
            client.put_rule(Name=name, EventPattern=json.dumps({"source": ["aws.acm"], "detail-type": [AVAILABLE]}))
            client.put_targets(Rule=name, Targets=[{"Id": "hook", "Webhook": {"Url": receiver.url(path),
                                                                                "Secret": SECRET}}])
        acm = server.client("acm")
        arns = [acm.request_certificate(DomainName=f"log{n}.events.test", CertificateAuthorityArn=ca,
                                        KeyAlgorithm="EC_prime256v1")["CertificateArn"] for n in range(3)]

        def settled() -> bool:
            events = available(client)
            return len(events) == 3 and all(sorted(d["State"] for d in e["Deliveries"]) == ["DEAD", "DELIVERED"]
                                            for e in events)

        wait_for("the deliveries", settled)
        yield World(server, receiver, client, arns, [e["EventId"] for e in available(client)])
    finally:
        server.stop()
        receiver.stop()
    assert server.errors() == []


def test_list_events(world: World) -> None:
    client = world.client
    events = available(client)
    assert [e["Resources"] for e in events] == [[arn] for arn in world.arns]
    first = events[0]
    envelope = json.loads(first["Event"])
    assert (envelope["id"], envelope["detail-type"], envelope["source"], envelope["resources"]) == \
        (first["EventId"], AVAILABLE, "aws.acm", [world.arns[0]])
    assert envelope["detail"]["Action"] == "ISSUANCE" and first["Dispatched"] is True
    assert isinstance(first["Time"], datetime)
    assert sorted((d["Rule"], d["TargetId"], d["State"], d["Attempts"]) for d in first["Deliveries"]) == \
        [("log-bad", "hook", "DEAD", 1), ("log-ok", "hook", "DELIVERED", 1)]
    assert world.receiver.ids("/ok") == world.event_ids

    assert [e["EventId"] for e in available(client, Resource=world.arns[1])] == [world.event_ids[1]]
    assert [e["EventId"] for e in available(client, After=str(first["Id"]))] == world.event_ids[1:]
    assert available(client, After=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert [e["EventId"] for e in available(client, After=(datetime.now(UTC) - timedelta(hours=1)).isoformat())] == \
        world.event_ids
    pca = client.list_events(Source="aws.acm-pca")["Events"]
    assert pca and all(e["Source"] == "aws.acm-pca" and not e["Deliveries"] for e in pca)

    paged: list[str] = []
    request: dict[str, Any] = {"DetailType": AVAILABLE, "Limit": 1}
    while True:
        page = client.list_events(**request)
        paged += [e["EventId"] for e in page["Events"]]
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    assert paged == world.event_ids

    code, message = error(client.list_events, After="yesterday")
    assert code == "ValidationException" and "After" in message
    code, _ = error(client.list_events, NextToken="not-a-token")
    assert code == "InvalidNextTokenException"


def test_dead_letters_and_replay_errors(world: World) -> None:
    client = world.client
    letters = client.list_dead_letters(Rule="log-bad")["DeadLetters"]
    assert [(d["EventId"], d["Rule"], d["TargetId"], d["DetailType"], d["Attempts"]) for d in letters] == \
        [(e, "log-bad", "hook", AVAILABLE, 1) for e in world.event_ids]
    assert "400" in letters[0]["LastError"] and isinstance(letters[0]["CreatedAt"], datetime)
    first = client.list_dead_letters(TargetId="hook", MaxResults=2)
    rest = client.list_dead_letters(TargetId="hook", MaxResults=2, NextToken=first["NextToken"])
    assert [d["DeliveryId"] for d in first["DeadLetters"] + rest["DeadLetters"]] == [d["DeliveryId"] for d in letters]
    assert client.list_dead_letters(Rule="log-ok")["DeadLetters"] == []

    code, message = error(client.list_dead_letters, Rule="no-such-rule")
    assert code == "ResourceNotFoundException" and "Rule" in message
    code, message = error(client.replay_events)
    assert code == "ValidationException" and "DeliveryIds" in message
    code, message = error(client.replay_events, TargetId="hook")
    assert code == "ValidationException" and message.startswith("TargetId")
    code, message = error(client.replay_events, Rule="log-bad", EventIds=world.event_ids[:1], All=True)
    assert code == "ValidationException" and message.startswith("All")
    code, message = error(client.replay_events, DeliveryIds=[99999999])
    assert code == "ResourceNotFoundException" and "DeliveryIds" in message
    now = datetime.now(UTC)
    code, message = error(client.replay_events, Rule="log-bad", From=now, To=now - timedelta(hours=1))
    assert code == "ValidationException" and message.startswith("From")
    code, message = error(client.replay_events, Rule="log-bad", TargetId="nope", From=now - timedelta(hours=1))
    assert code == "ResourceNotFoundException" and "TargetId" in message
    code, message = error(client.replay_events, Rule="log-bad", EventIds=["0b1e4b58-7b6a-4a0e-9a71-5b6f3e2a1c11"])
    assert code == "ResourceNotFoundException" and "EventIds" in message


def test_cli(world: World) -> None:
    server = world.server
    listed = json.loads(cli(server, "events", "list", "--type", AVAILABLE, "--json").stdout)
    assert [e["Event"]["id"] for e in listed] == world.event_ids
    assert {d["State"] for d in listed[0]["Deliveries"]} == {"DEAD", "DELIVERED"}
    letters = cli(server, "events", "dead-letters", "--rule", "log-bad").stdout
    assert letters.count("log-bad") == 3 and "400 Bad Request" in letters

    del world.receiver.refuse["/bad"]
    replayed = cli(server, "events", "replay", "--dead", "--rule", "log-bad", "--target", "hook")
    assert "3 deliveries queued again" in replayed.stdout
    wait_for("the replayed dead letters", lambda: len(world.receiver.ids("/bad")) >= 3)
    assert world.receiver.ids("/bad") == world.event_ids

    again = json.loads(cli(server, "events", "replay", "--rule", "log-ok", "--since", "1h", "--json").stdout)
    assert again["Replayed"] == 3
    wait_for("the replayed past events", lambda: len(world.receiver.ids("/ok")) >= 6)
    assert world.receiver.ids("/ok") == world.event_ids * 2

    tailed = cli(server, "events", "tail", "--since", "1h", "--type", AVAILABLE, "--count", "2", "--json",
                 "--interval", "0.1").stdout.splitlines()
    assert [json.loads(line)["Event"]["id"] for line in tailed] == world.event_ids[:2]
