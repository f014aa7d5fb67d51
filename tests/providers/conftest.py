"""Live peers for the DNS provider tests: BIND and Knot (RFC 2136 + TSIG) and moto (Route 53), once per session."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import dns.message
import dns.query
import pytest

from certsmith.dns.providers import DnsProvider, build_provider
from certsmith.testing.bind import Bind, start_bind
from certsmith.testing.knot import Knot, start_knot
from certsmith.testing.moto import DUMMY_KEYS, Moto, start_moto

from ..conftest import need_binary

ZONE = "example.test"
PEERS = ("bind", "knot", "route53")


@dataclass
class Peer:
    """A provider of one kind talking to its live peer, and how to read the peer's zone version."""

    kind: str
    provider: DnsProvider
    options: dict[str, Any]
    serial: Callable[[], int | None]

    def unique(self, label: str = "") -> str:
        """A fresh ``_acme-challenge`` owner in the test zone, so that tests never share records."""
        return f"_acme-challenge.{label or 't'}-{uuid.uuid4().hex[:10]}.{ZONE}"


def soa_serial(port: int, zone: str = ZONE) -> int:
    """The zone's SOA serial, asked of the server itself."""
    response = dns.query.tcp(dns.message.make_query(zone + ".", "SOA"), "127.0.0.1", port=port, timeout=2)
    return int(response.answer[0][0].serial)


def route53_client(endpoint: str, **keys: str) -> Any:
    return boto3.client("route53", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=keys.get("access_key_id", DUMMY_KEYS["access_key_id"]),
                        aws_secret_access_key=keys.get("secret_access_key", DUMMY_KEYS["secret_access_key"]))


def bind_options(bind: Bind, **extra: Any) -> dict[str, Any]:
    return {"server": bind.address, "tsig_name": bind.tsig_name, "tsig_secret": bind.tsig_secret,
            "tsig_algorithm": bind.tsig_algorithm, **extra}


def knot_options(knot: Knot, **extra: Any) -> dict[str, Any]:
    return {"server": knot.address, "tsig_name": knot.tsig_name, "tsig_secret": knot.tsig_secret,
            "tsig_algorithm": knot.tsig_algorithm, **extra}


def moto_options(moto: Moto, **extra: Any) -> dict[str, Any]:
    return {"endpoint_url": moto.endpoint, **DUMMY_KEYS, **extra}


def need_peer_binaries(kind: str) -> None:
    names = {"bind": ("named", "tsig-keygen"), "knot": ("knotd", "keymgr"), "route53": ("moto_server",)}[kind]
    for name in names:
        need_binary(name)


@pytest.fixture(scope="session")
def bind_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    need_peer_binaries("bind")
    bind = start_bind(tmp_path_factory.mktemp("bind"), zones=(ZONE,))
    yield bind
    bind.stop()


@pytest.fixture(scope="session")
def knot_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Knot]:
    need_peer_binaries("knot")
    knot = start_knot(tmp_path_factory.mktemp("knot"), zones=(ZONE,))
    yield knot
    knot.stop()


@pytest.fixture(scope="session")
def moto_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    need_peer_binaries("route53")
    moto = start_moto(tmp_path_factory.mktemp("moto"))
    route53_client(moto.endpoint).create_hosted_zone(Name=ZONE + ".", CallerReference=uuid.uuid4().hex)
    yield moto
    moto.stop()


def make_peer(kind: str, request: pytest.FixtureRequest) -> Peer:
    """The provider of ``kind`` on its session peer: BIND finds the zone itself, Knot is given it, Route 53 finds it."""
    if kind == "bind":
        bind: Bind = request.getfixturevalue("bind_peer")
        options = bind_options(bind)
        return Peer(kind, build_provider("rfc2136", "corp-bind", options), options, lambda: soa_serial(bind.port))
    if kind == "knot":
        knot: Knot = request.getfixturevalue("knot_peer")
        options = knot_options(knot, zone=ZONE)
        return Peer(kind, build_provider("rfc2136", "corp-knot", options), options, lambda: soa_serial(knot.port))
    moto: Moto = request.getfixturevalue("moto_peer")
    options = moto_options(moto)
    return Peer(kind, build_provider("route53", "corp-r53", options), options, lambda: None)


@pytest.fixture(params=PEERS)
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(str(request.param), request)
