"""Event delivery against real HTTP receivers on loopback: signed and in order, a receiver that is down and comes
back, a refusal that becomes a dead letter and is replayed, and two workers sharing one database."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from certsmith.domain.events import AVAILABLE, Event
from certsmith.services.context import Caller
from certsmith.services.events.delivery import RetryPolicy
from certsmith.services.events.outbox import EventOutbox
from certsmith.services.events.rules import TargetSpec
from certsmith.services.wiring import Container, build
from certsmith.settings import Settings
from certsmith.store.tables import EventRuleRow, EventTargetRow

from ..conftest import backend_url, free_port

SECRET = "whsec-delivery-tests-0123456789"
SIGNATURE_TOLERANCE = 300


@dataclass
class Received:
    event_id: str
    envelope: dict[str, Any]
    signature_ok: bool | None


def signature_ok(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool | None:
    """The documented rule: X-Certsmith-Signature is sha256=HMAC-SHA256(secret, "<X-Certsmith-Timestamp>.<body>")."""
    header = headers.get("x-certsmith-signature")
    if header is None:
        return None
    stamp = headers.get("x-certsmith-timestamp", "")
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header) and abs(time.time() - int(stamp)) < SIGNATURE_TOLERANCE


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records the events POSTed to each path; it can be stopped (the port is then
    closed) and started again on the same port, told to refuse a path, or to answer slowly."""

    port: int = field(default_factory=free_port)
    received: dict[str, list[Received]] = field(default_factory=dict)
    refuse: dict[str, int] = field(default_factory=dict)  # path -> HTTP status to answer instead of 200
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                envelope = json.loads(body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.refuse.get(self.path, 200)
                if status == 200:
                    with receiver.lock:
                        receiver.received.setdefault(self.path, []).append(
                            Received(envelope["id"], envelope, signature_ok(headers, body)))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"no" if status != 200 else b"ok")
                except OSError:  # the sender is gone (a killed server): what it sent is recorded all the same
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self, path: str) -> list[str]:
        with self.lock:
            return [r.event_id for r in self.received.get(path, [])]

    def got(self, path: str) -> list[Received]:
        with self.lock:
            return list(self.received.get(path, []))


@dataclass
class World:
    container: Container
    caller: Caller
    receiver: Receiver
    tmp: Path


def _settings(tmp: Path, url: str | None, **extra: Any) -> Settings:
    return Settings(data_dir=tmp / "data", database_url=url, key_pool_size=0, event_retry_seconds=0.2,
                    event_delivery_seconds=0.05, **extra)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("delivery")
    url = backend_url()
    container = build(_settings(tmp, url, job_lease_seconds=30.0))
    key_id = (tmp / "data" / "credentials").read_text().split("aws_access_key_id = ")[1].split("\n")[0]
    account = container.accounts.credential(key_id)
    assert account is not None
    receiver = Receiver()
    receiver.start()
    yield World(container, Caller(account.account_id, "us-east-1", account.principal), receiver, tmp)
    receiver.stop()
    container.event_delivery.close()
    container.writes.close()
    container.database.dispose()


def write_events(world: World, prefix: str, count: int) -> list[str]:
    """``count`` ACM Available events about certificates named ``<prefix>-<n>``, in one transaction; their ids."""
    now = world.container.clock.now()
    base = f"arn:aws:acm:us-east-1:{world.caller.account_id}:certificate/{prefix}-"
    rows = [EventOutbox.values(Event(AVAILABLE, (f"{base}{n:04d}",), {"Action": "ISSUANCE", "N": n}, now),
                               world.caller.account_id, world.caller.region, now) for n in range(count)]
    with world.container.database.transaction() as session:
        world.container.outbox.add_many(session, rows)
    return [row["event_id"] for row in rows]


def add_rule(world: World, name: str, prefix: str, url: str, **config: Any) -> None:
    """A rule matching the events about ``<prefix>-*``, with one signed webhook to ``url`` (target Id ``hook``)."""
    base = f"arn:aws:acm:us-east-1:{world.caller.account_id}:certificate/{prefix}-"
    pattern = {"source": ["aws.acm"], "detail-type": [AVAILABLE], "resources": [{"prefix": base}]}
    rules = world.container.event_rules
    rules.put_rule(world.caller, name, json.dumps(pattern))
    rules.put_targets(world.caller, name, [TargetSpec("hook", "webhook", {"url": url, **config},
                                                      SECRET)])


def pump(world: World, done: Callable[[], bool], within: float = 20.0) -> None:
    """Dispatch and deliver, as a worker's periodic tasks do, until ``done()`` (or fail after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, "the deliveries were not made in time"
        world.container.event_dispatcher.sweep()
        world.container.event_delivery.sweep()
        time.sleep(0.01)


def deliveries(world: World, event_ids: list[str]) -> dict[str, list[Any]]:
    """Delivery states by event id, from ListEvents' service."""
    entries, token = world.container.event_log.events(world.caller, limit=1000)
    found = {e.envelope["id"]: e.deliveries for e in entries}
    while token:
        entries, token = world.container.event_log.events(world.caller, limit=1000, token=token)
        found |= {e.envelope["id"]: e.deliveries for e in entries}
    return {event_id: found[event_id] for event_id in event_ids}


def test_signed_and_in_order(world: World) -> None:
    before = write_events(world, "order", 3)  # written before any rule: dispatched to nothing, as EventBridge
    world.container.event_dispatcher.sweep()
    add_rule(world, "order", "order", world.receiver.url("/order"))
    ids = write_events(world, "order", 30)
    pump(world, lambda: len(world.receiver.ids("/order")) >= 30)
    # a send is marked after its response, on the delivery's own thread: wait for the marks, then check them
    pump(world, lambda: all(d.state != "PENDING" for found in deliveries(world, ids).values() for d in found))
    got = world.receiver.got("/order")
    assert [r.event_id for r in got] == ids
    assert all(r.signature_ok for r in got)
    assert got[0].envelope["detail-type"] == AVAILABLE and got[0].envelope["account"] == world.caller.account_id
    states = deliveries(world, before + ids)
    assert all(not states[e] for e in before)
    assert all([(d.rule, d.target_id, d.state, d.attempts) for d in states[e]] == [("order", "hook", "DELIVERED", 1)]
               for e in ids)


def test_a_receiver_that_is_down_gets_everything_in_order_when_it_is_back(world: World) -> None:
    down = Receiver()  # its port is closed until it starts
    add_rule(world, "down", "down", down.url("/down"))
    ids = write_events(world, "down", 12)

    def head_failed_twice() -> bool:
        head = deliveries(world, ids[:1])[ids[0]]
        return bool(head) and head[0].attempts >= 2

    pump(world, head_failed_twice)
    states = deliveries(world, ids)
    head = states[ids[0]][0]
    assert head.state == "PENDING" and "cannot connect" in (head.last_error or "")
    assert head.next_attempt_at is not None
    assert all(states[e][0].attempts == 0 for e in ids[1:])  # the rest waits behind the head: order holds
    down.start()
    try:
        pump(world, lambda: len(down.ids("/down")) >= 12)
        assert down.ids("/down") == ids
        assert all(r.signature_ok for r in down.got("/down"))
    finally:
        down.stop()
    assert all(states[0].state == "DELIVERED" for states in deliveries(world, ids).values())


def test_a_refusal_is_a_dead_letter_and_replayed(world: World) -> None:
    log = world.container.event_log
    world.receiver.refuse["/refuse"] = 400
    add_rule(world, "refuse", "refuse", world.receiver.url("/refuse"))
    ids = write_events(world, "refuse", 3)
    pump(world, lambda: all(s and s[0].state == "DEAD" for s in deliveries(world, ids).values()))
    letters, token = log.dead_letters(world.caller, rule="refuse")
    assert token is None
    assert [(d.event_id, d.rule, d.target_id, d.attempts, d.detail_type) for d in letters] == \
        [(e, "refuse", "hook", 1, AVAILABLE) for e in ids]
    assert "400" in (letters[0].last_error or "")
    del world.receiver.refuse["/refuse"]

    replayed = log.replay_dead(world.caller, rule="refuse", target_id="hook")
    assert replayed == [d.delivery_id for d in letters]
    pump(world, lambda: len(world.receiver.ids("/refuse")) >= 3)
    assert world.receiver.ids("/refuse") == ids
    assert log.dead_letters(world.caller, rule="refuse")[0] == []

    # One delivery again, by its id; then the past events again, to the rule (new deliveries, in order).
    assert log.replay_dead(world.caller, delivery_ids=[replayed[1]]) == [replayed[1]]
    pump(world, lambda: len(world.receiver.ids("/refuse")) >= 4)
    assert world.receiver.ids("/refuse")[3] == ids[1]
    start = world.container.clock.now() - timedelta(minutes=5)
    again = log.replay_past(world.caller, "refuse", start=start)
    assert len(again) == 3 and again == sorted(again)
    pump(world, lambda: len(world.receiver.ids("/refuse")) >= 7)
    assert world.receiver.ids("/refuse")[4:] == ids


def test_retries_end_in_a_dead_letter_after_the_targets_max_attempts(world: World) -> None:
    policy = RetryPolicy()
    assert [policy.delay(n) for n in (1, 2, 3)] == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]
    assert policy.delay(30) == timedelta(minutes=15) and policy.delay(1, retry_after=90) == timedelta(seconds=90)
    world.receiver.refuse["/busy"] = 503
    add_rule(world, "busy", "busy", world.receiver.url("/busy"), max_attempts=3)
    ids = write_events(world, "busy", 2)
    pump(world, lambda: all(s and s[0].state == "DEAD" for s in deliveries(world, ids).values()))
    letters = world.container.event_log.dead_letters(world.caller, rule="busy")[0]
    assert [(d.event_id, d.attempts) for d in letters] == [(e, 3) for e in ids]
    assert "503" in (letters[0].last_error or "")


def test_two_workers_deliver_five_hundred_events_in_order(world: World) -> None:
    """Two containers on one database (two processes' worth), each running its worker loop; the one holding the
    target's lease stops half-way and the other goes on from where it stopped."""
    add_rule(world, "pair", "pair", world.receiver.url("/pair"))
    url = world.container.settings.database_url
    containers = [build(_settings(world.tmp, url, job_lease_seconds=30.0), prepare=False) for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=c.worker().run_forever, args=(stop,), daemon=True) for c in containers]
    try:
        for thread in threads:
            thread.start()
        ids = write_events(world, "pair", 500)
        for container in containers:
            container.signal.notify()
        deadline = time.monotonic() + 30
        while len(world.receiver.ids("/pair")) < 150:
            assert time.monotonic() < deadline, "the workers did not start delivering"
            time.sleep(0.01)
        with world.container.database.read() as session:
            holder = session.scalars(select(EventTargetRow.lease_owner).join(
                EventRuleRow, EventRuleRow.id == EventTargetRow.rule_id).where(EventRuleRow.name == "pair")).first()
        owners = {c.event_delivery.owner: c for c in containers}
        assert holder in owners, "no worker held the target's lease while delivering"
        owners[holder].event_delivery.close()
        while len(world.receiver.ids("/pair")) < 500:
            assert time.monotonic() < deadline, f"only {len(world.receiver.ids('/pair'))} of 500 events arrived"
            time.sleep(0.02)
    finally:
        stop.set()
        for container in containers:
            container.signal.notify()
            container.event_delivery.close()
        for thread in threads:
            thread.join(10)
        for container in containers:
            container.writes.close()
            container.database.dispose()
    assert world.receiver.ids("/pair") == ids
