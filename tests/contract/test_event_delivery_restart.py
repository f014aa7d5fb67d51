"""A real `certsmith serve` killed (SIGKILL) while it delivers events to a slow receiver, then started again on the
same data: every event arrives at least once, in order, and only what was in flight at the kill arrives twice."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from certsmith.testing.pki import root_ca

from ..conftest import Server, backend_url, start_server
from ..integration.test_event_delivery import SECRET, Receiver

AVAILABLE = "ACM Certificate Available"
COUNT = 30


def wait_for(what: str, check: Callable[[], bool], within: float, server: Server | None = None) -> None:
    deadline = time.monotonic() + within
    while not check():
        if server is not None and server.process.poll() is not None:
            pytest.fail(f"the server exited while waiting for {what}:\n{server.log_path.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        time.sleep(0.02)


def issued_event_ids(server: Server) -> list[str]:
    """The ids of the Available events, in the order they were written (ListEvents)."""
    client = server.client("certsmith")
    found: list[str] = []
    request: dict[str, Any] = {"DetailType": AVAILABLE, "Limit": 1000}
    while True:
        page = client.list_events(**request)
        found += [event["EventId"] for event in page["Events"]]
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def test_a_killed_server_delivers_everything_after_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("EVENT_DELIVERY_SECONDS", "0.1"), ("EVENT_RETRY_SECONDS", "0.2"), ("JOB_LEASE_SECONDS", "2")):
        monkeypatch.setenv(f"CERTSMITH_{name}", value)
    receiver = Receiver(delay=0.1)
    receiver.start()
    url = backend_url()
    server = start_server(tmp_path, url)
    restarted: Server | None = None
    try:
        ca = root_ca(server.client("acm-pca"), "Restart Root")
        events = server.client("certsmith")
        events.put_rule(Name="issued", EventPattern=json.dumps({"source": ["aws.acm"], "detail-type": [AVAILABLE]}))
        events.put_targets(Rule="issued", Targets=[{"Id": "hook", "Webhook": {"Url": receiver.url("/restart"),
                                                                                 "Secret": SECRET}}])
        acm = server.client("acm")
        for n in range(COUNT):
            acm.request_certificate(DomainName=f"n{n}.restart.test", CertificateAuthorityArn=ca, KeyAlgorithm="EC_prime256v1")
        wait_for("a third of the events", lambda: len(receiver.ids("/restart")) >= COUNT // 3, 30, server)
        before_kill = receiver.ids("/restart")
        server.process.kill()  # SIGKILL: no shutdown, leases and marks as they were
        server.process.wait()
        time.sleep(receiver.delay * 3)  # the request in flight finishes on the receiver's side
        at_kill = receiver.ids("/restart")
        assert len(at_kill) < COUNT, "everything was delivered before the kill: the receiver is not slow enough"
        shutil.copy(server.log_path, tmp_path / "first-server.log")

        restarted = start_server(tmp_path, url)  # the same data folder (and database)
        expected = issued_event_ids(restarted)
        assert len(expected) == COUNT
        wait_for("every event", lambda: set(receiver.ids("/restart")) >= set(expected), 60, restarted)
        got = receiver.got("/restart")
        assert all(r.signature_ok for r in got)
        first_seen = list(dict.fromkeys(r.event_id for r in got))
        assert first_seen == expected  # in order, nothing lost
        duplicates = {event_id for event_id, count in Counter(r.event_id for r in got).items() if count > 1}
        # Sent again may be only what was sent but not yet marked when the process died: the last one received
        # before the kill, and any the receiver was still answering.
        in_flight = set(at_kill[max(0, len(before_kill) - 1):])
        assert duplicates <= in_flight, f"sent twice: {duplicates - in_flight}"
        print(f"received {len(at_kill)} before the kill; sent twice: {len(duplicates)}")
        listed = restarted.client("certsmith")
        wait_for("every delivery marked", lambda: all(
            [d["State"] for d in e["Deliveries"]] == ["DELIVERED"]
            for e in listed.list_events(DetailType=AVAILABLE, Limit=1000)["Events"]), 10, restarted)
        assert restarted.errors() == []
    finally:
        if restarted is not None:
            restarted.stop()
        server.stop()
        receiver.stop()
