"""How each provider fails: wrong credentials, a missing zone, a server that is down (and back), a write refused midway.

Each peer here is a module's own (not the session's), so stopping it disturbs no other test.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from certsmith.dns.providers import ProviderError, RecordSet, build_provider
from certsmith.testing.bind import Bind, free_dns_port, start_bind
from certsmith.testing.knot import Knot, start_knot
from certsmith.testing.moto import Moto, start_moto

from .conftest import ZONE, bind_options, knot_options, moto_options, need_peer_binaries, route53_client

WRONG_SECRET = base64.b64encode(b"not the key at all, 32 bytes...!").decode()
QUICKLY = 5.0  # seconds: "unreachable" must not wait for long retries


def _name(label: str = "f") -> str:
    return f"_acme-challenge.{label}-{uuid.uuid4().hex[:8]}.{ZONE}"


def _fails(action: Callable[[], Any], reason: str, *words: str) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        action()
    error = info.value
    assert error.reason == reason, str(error)
    for word in words:
        assert word in str(error), str(error)
    return error


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    need_peer_binaries("bind")
    peer = start_bind(tmp_path_factory.mktemp("bind-failures"), zones=(ZONE,))
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Knot]:
    need_peer_binaries("knot")
    peer = start_knot(tmp_path_factory.mktemp("knot-failures"), zones=(ZONE,), locked=("locked.test",))
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    need_peer_binaries("route53")
    peer = start_moto(tmp_path_factory.mktemp("moto-failures"))
    yield peer
    peer.stop()


def _hosted_zones(moto: Moto, *zones: str) -> dict[str, str]:
    client = route53_client(moto.endpoint)
    have = {item["Name"].rstrip("."): item["Id"] for item in client.list_hosted_zones()["HostedZones"]}
    for zone in zones:
        if zone not in have:
            have[zone] = client.create_hosted_zone(Name=zone + ".", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    return have


# --- RFC 2136: BIND and Knot -------------------------------------------------------------------------------------

RFC2136_PEERS = ("bind", "knot")


def _rfc2136_peer(kind: str, request: pytest.FixtureRequest) -> tuple[Bind | Knot, Callable[..., dict[str, Any]]]:
    if kind == "bind":
        return request.getfixturevalue("bind"), bind_options  # type: ignore[return-value]
    return request.getfixturevalue("knot"), knot_options  # type: ignore[return-value]


@pytest.mark.parametrize("kind", RFC2136_PEERS)
def test_rfc2136_wrong_tsig_secret(kind: str, request: pytest.FixtureRequest) -> None:
    peer, options = _rfc2136_peer(kind, request)
    name = _name("secret")
    for extra in ({}, {"zone": ZONE}):
        provider = build_provider("rfc2136", "corp-dns", options(peer, tsig_secret=WRONG_SECRET, **extra))
        error = _fails(lambda: provider.present([RecordSet(name, "TXT", ("v",))]), "credentials",  # noqa: B023
                       "DNS provider 'corp-dns'", name, "--tsig-secret", peer.tsig_name)
        assert WRONG_SECRET not in str(error) and peer.tsig_secret not in str(error)
        _fails(lambda: provider.records(ZONE), "credentials", "--tsig-secret")  # noqa: B023
    _fails(build_provider("rfc2136", "corp-dns", options(peer, tsig_secret=WRONG_SECRET, zone=ZONE)).check, "credentials")
    if kind == "bind":  # BIND checks the key of any signed query; Knot only of queries inside its zones
        _fails(build_provider("rfc2136", "corp-dns", options(peer, tsig_secret=WRONG_SECRET)).check, "credentials")
    good = build_provider("rfc2136", "corp-dns", options(peer))
    assert good.lookup(name, "TXT") is None  # nothing was written


@pytest.mark.parametrize("kind", RFC2136_PEERS)
def test_rfc2136_unknown_key_or_algorithm(kind: str, request: pytest.FixtureRequest) -> None:
    peer, options = _rfc2136_peer(kind, request)
    for extra in ({"tsig_name": "nobody-key"}, {"tsig_algorithm": "hmac-sha512"}):
        provider = build_provider("rfc2136", "corp-dns", options(peer, zone=ZONE, **extra))
        _fails(provider.check, "credentials", "--tsig-name", "--tsig-algorithm")
        _fails(lambda: provider.present([RecordSet(_name(), "TXT", ("v",))]), "credentials")  # noqa: B023


@pytest.mark.parametrize("kind", RFC2136_PEERS)
def test_rfc2136_zone_missing(kind: str, request: pytest.FixtureRequest) -> None:
    peer, options = _rfc2136_peer(kind, request)
    provider = build_provider("rfc2136", "corp-dns", options(peer, zone="missing.test"))
    _fails(provider.check, "zone", "'missing.test'", "--zone")
    _fails(provider.records, "zone", "missing.test")
    name = _name("outside")
    error = _fails(lambda: provider.present([RecordSet(name, "TXT", ("v",))]), "zone", name, "'missing.test'")
    assert error.name == name
    found = build_provider("rfc2136", "corp-dns", options(peer))  # the zone found from the name
    _fails(lambda: found.present([RecordSet("_acme-challenge.missing.test", "TXT", ("v",))]), "zone",
           "holds no zone for this name")
    _fails(found.records, "zone", "give the zone to list")


@pytest.mark.parametrize("kind", RFC2136_PEERS)
def test_rfc2136_server_down_then_back(kind: str, request: pytest.FixtureRequest) -> None:
    peer, options = _rfc2136_peer(kind, request)
    provider = build_provider("rfc2136", "corp-dns", options(peer, timeout=1.0))
    name = _name("down")
    peer.stop()
    try:
        for action in (provider.check, lambda: provider.present([RecordSet(name, "TXT", ("v",))]),
                       lambda: provider.lookup(name, "TXT"), lambda: provider.records(ZONE)):
            started = time.monotonic()
            _fails(action, "unreachable", peer.address, "--rfc2136")
            assert time.monotonic() - started < QUICKLY
    finally:
        peer.start()
    provider.present([RecordSet(name, "TXT", ("v",))])
    assert provider.lookup(name, "TXT") == RecordSet(name, "TXT", ("v",))
    provider.remove([RecordSet(name, "TXT", ())])


def test_rfc2136_nothing_listening() -> None:
    provider = build_provider("rfc2136", "corp-dns", {"server": f"127.0.0.1:{free_dns_port()}", "tsig_name": "k",
                                                      "tsig_secret": WRONG_SECRET, "timeout": 1})
    started = time.monotonic()
    _fails(provider.check, "unreachable", "cannot reach the DNS server")
    assert time.monotonic() - started < QUICKLY


def test_knot_refused_zone_undoes_the_earlier_zone(knot: Knot) -> None:
    provider = build_provider("rfc2136", "corp-knot", knot_options(knot))  # zones found from the names
    good, kept = _name("good"), _name("kept")
    provider.present([RecordSet(kept, "TXT", ("before",))])
    locked = "_acme-challenge.www.locked.test"
    error = _fails(lambda: provider.present([RecordSet(good, "CNAME", ("good.validation.test",)),
                                             RecordSet(kept, "TXT", ("after",)), RecordSet(locked, "TXT", ("v",))]),
                   "credentials", "'locked.test'", "update")
    assert error.name == locked
    assert provider.lookup(good, "CNAME") is None  # written in example.test first, then undone
    assert provider.lookup(kept, "TXT") == RecordSet(kept, "TXT", ("before",))
    assert provider.lookup(locked, "TXT") is None
    _fails(lambda: provider.records("locked.test"), "credentials", "'locked.test'", "transfer the zone")
    provider.remove([RecordSet(kept, "TXT", ())])


# --- Route 53 (moto) -----------------------------------------------------------------------------------------------

@pytest.fixture()
def iam_key(moto: Moto) -> Iterator[tuple[dict[str, str], str]]:
    """An IAM user's real access key and the test zone's ID, with moto checking signatures and permissions meanwhile."""
    zone_id = _hosted_zones(moto, ZONE)[ZONE]
    iam = boto3.client("iam", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="AKIDSETUP",
                       aws_secret_access_key="setup")
    user = f"dns-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="route53", PolicyDocument='{"Version": "2012-10-17", "Statement": '
                        '[{"Effect": "Allow", "Action": "route53:*", "Resource": "*"}]}')
    key = iam.create_access_key(UserName=user)["AccessKey"]
    moto.require_auth()
    try:
        yield {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}, zone_id
    finally:
        moto.allow_all()


def _upsert(moto: Moto, keys: dict[str, str], zone_id: str, name: str) -> None:
    route53_client(moto.endpoint, **keys).change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": name + ".", "Type": "TXT", "TTL": 60,
                                                   "ResourceRecords": [{"Value": '"v"'}]}}]})


def test_route53_wrong_credentials(moto: Moto, iam_key: tuple[dict[str, str], str]) -> None:
    keys, zone_id = iam_key
    _upsert(moto, keys, zone_id, _name("real"))  # the key is real: moto accepts a change it signs
    wrong_secret = {**keys, "secret_access_key": "not-the-secret"}
    unknown = {"access_key_id": "AKIDNOSUCHKEY0000", "secret_access_key": "whatever"}
    for wrong, code in ((wrong_secret, "SignatureDoesNotMatch"), (unknown, "InvalidClientTokenId")):
        with pytest.raises(ClientError) as refused:
            _upsert(moto, wrong, zone_id, _name("plain"))
        assert code in str(refused.value.response)
        provider = build_provider("route53", "corp-r53", moto_options(moto, **wrong))
        error = _fails(provider.check, "credentials", "DNS provider 'corp-r53'", code, "--aws-secret-access-key")
        assert wrong["secret_access_key"] not in str(error)
        name = _name("creds")
        _fails(lambda: provider.present([RecordSet(name, "TXT", ("v",))]), "credentials", name)  # noqa: B023
        pinned = build_provider("route53", "corp-r53", moto_options(moto, hosted_zone_id=zone_id, **wrong))
        _fails(lambda: pinned.remove([RecordSet(name, "TXT", ("v",))]), "credentials", code)  # noqa: B023


def test_route53_zone_missing(moto: Moto) -> None:
    _hosted_zones(moto, ZONE)
    provider = build_provider("route53", "corp-r53", moto_options(moto, hosted_zone_id="ZNOSUCHZONE0"))
    _fails(provider.check, "zone", "--hosted-zone-id")
    name = _name("nozone")
    _fails(lambda: provider.present([RecordSet(name, "TXT", ("v",))]), "zone", name)
    found = build_provider("route53", "corp-r53", moto_options(moto))
    _fails(lambda: found.present([RecordSet("_acme-challenge.nowhere.test", "TXT", ("v",))]), "zone",
           "no Route 53 hosted zone")
    _fails(lambda: found.records("nowhere.test"), "zone")
    other = _hosted_zones(moto, "other.test")["other.test"]
    pinned = build_provider("route53", "corp-r53", moto_options(moto, hosted_zone_id=other))
    _fails(lambda: pinned.present([RecordSet(name, "TXT", ("v",))]), "zone", "not in hosted zone")


def test_route53_endpoint_down_then_back(moto: Moto) -> None:
    provider = build_provider("route53", "corp-r53", moto_options(moto, timeout=1.0))
    name = _name("down")
    moto.stop()
    try:
        for action in (provider.check, lambda: provider.present([RecordSet(name, "TXT", ("v",))]),
                       lambda: provider.lookup(name, "TXT"), provider.records):
            started = time.monotonic()
            _fails(action, "unreachable", moto.endpoint, "--route53-endpoint")
            assert time.monotonic() - started < QUICKLY
    finally:
        moto.start()
    _hosted_zones(moto, ZONE)  # moto keeps nothing across a restart
    provider.present([RecordSet(name, "TXT", ("v",))])
    assert provider.lookup(name, "TXT") == RecordSet(name, "TXT", ("v",))


def test_route53_refused_zone_undoes_the_earlier_zone(moto: Moto) -> None:
    _hosted_zones(moto, ZONE, "other.test")
    provider = build_provider("route53", "corp-r53", moto_options(moto))
    good, kept = _name("good"), _name("kept")
    provider.present([RecordSet(kept, "TXT", ("before",))])
    bad = "_acme-challenge.bad name.other.test"  # Route 53 refuses a space in a name
    error = _fails(lambda: provider.present([RecordSet(good, "CNAME", ("good.validation.test",)),
                                             RecordSet(kept, "TXT", ("after",)), RecordSet(bad, "TXT", ("v",))]),
                   "refused", "Route 53 refused")
    assert error.name == bad
    assert provider.lookup(good, "CNAME") is None
    assert provider.lookup(kept, "TXT") == RecordSet(kept, "TXT", ("before",))


def test_route53_private_and_public_zone_of_the_same_name(moto: Moto) -> None:
    client = route53_client(moto.endpoint)
    public = client.create_hosted_zone(Name="split.test.", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    client.create_hosted_zone(Name="split.test.", CallerReference=uuid.uuid4().hex,
                              HostedZoneConfig={"PrivateZone": True},
                              VPC={"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"})
    provider = build_provider("route53", "corp-r53", moto_options(moto))
    provider.present([RecordSet("_acme-challenge.split.test", "TXT", ("public",))])
    listed = client.list_resource_record_sets(HostedZoneId=public)["ResourceRecordSets"]
    assert any(item["Name"] == "_acme-challenge.split.test." for item in listed)
    assert provider.lookup("_acme-challenge.split.test", "TXT") == RecordSet("_acme-challenge.split.test", "TXT", ("public",))
