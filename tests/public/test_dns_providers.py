"""DNS providers on certsmith's API and CLI, against the real BIND of the public world: records written through
them ("create records"), DNS-01 answered directly through them, and their failures."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from certsmith.testing.bind import free_dns_port

from ..contract.test_cli import cli
from .conftest import PublicWorld, pending_records, wait_status

PROVIDER = "corp-bind"


def _options(world: PublicWorld, **changes: str) -> dict[str, str]:
    return {"server": world.bind.address, "tsig_name": world.bind.tsig_name, "tsig_secret": world.bind.tsig_secret,
            "tsig_algorithm": world.bind.tsig_algorithm, **changes}


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture(scope="module")
def provider(public_world: PublicWorld) -> Iterator[str]:
    certsmith = public_world.server.client("certsmith")
    certsmith.create_dns_provider(Name=PROVIDER, Kind="rfc2136", Options=_options(public_world))
    yield PROVIDER


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.example.test"


def _cli(world: PublicWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(world.server, *args, ok=False)


def test_a_provider_is_shown_without_its_secret(public_world: PublicWorld, provider: str) -> None:
    certsmith = public_world.server.client("certsmith")
    shown = certsmith.describe_dns_provider(Name=provider)["DnsProvider"]
    assert shown["Kind"] == "rfc2136" and shown["SecretOptions"] == ["tsig_secret"]
    assert shown["Options"]["server"] == public_world.bind.address
    assert public_world.bind.tsig_secret not in repr(shown)
    assert provider in [p["Name"] for p in certsmith.list_dns_providers()["DnsProviders"]]
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_dns_provider(Name=provider, Kind="rfc2136", Options=_options(public_world))
    assert _error(excinfo)[0] == "ConflictException"


@pytest.mark.parametrize(("changes", "field"), [
    ({"tsig_secret": "not base64!"}, "tsig_secret"),
    ({"tsig_algorithm": "hmac-whirlpool"}, "tsig_algorithm"),
    ({"server": "dns.example.test:53x"}, "server"),
])
def test_malformed_settings_are_refused_when_the_provider_is_added(public_world: PublicWorld, changes: dict[str, str],
                                                                   field: str) -> None:
    certsmith = public_world.server.client("certsmith")
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_dns_provider(Name="bad", Kind="rfc2136", Options=_options(public_world, **changes))
    code, message = _error(excinfo)
    assert code == "ValidationException" and field in message
    if field == "tsig_secret":
        assert changes[field] not in message  # a secret, even a malformed one, is never repeated
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_dns_provider(Name="bad", Kind="carrier-pigeon", Options={})
    assert _error(excinfo)[0] == "ValidationException" and "rfc2136" in _error(excinfo)[1]


def test_a_wrong_key_or_a_server_down_is_said_when_the_provider_is_added(public_world: PublicWorld) -> None:
    certsmith = public_world.server.client("certsmith")
    wrong = "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXRoYXQtaXMtd3Jvbmc="
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_dns_provider(Name="wrong-key", Kind="rfc2136",
                                      Options=_options(public_world, tsig_secret=wrong))
    code, message = _error(excinfo)
    assert code == "DnsProviderException" and "wrong-key" in message and wrong not in message
    down = f"127.0.0.1:{free_dns_port()}"
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_dns_provider(Name="down", Kind="rfc2136", Options=_options(public_world, server=down,
                                                                                       timeout="1"))
    code, message = _error(excinfo)
    assert code == "DnsProviderException" and "down" in message
    names = [p["Name"] for p in certsmith.list_dns_providers()["DnsProviders"]]
    assert "wrong-key" not in names and "down" not in names


def test_create_records_then_issuance_through_pebble_and_a_second_run_changes_nothing(
        public_world: PublicWorld, provider: str) -> None:
    acm = public_world.server.client("acm")
    name = _name("records")
    arn = acm.request_certificate(DomainName=name, SubjectAlternativeNames=[f"*.{name}"],
                                  KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    first = _cli(public_world, "cert", "create-records", arn, "--provider", provider)
    assert first.returncode == 0, first.stderr
    record = pending_records(acm, arn)[0]
    assert first.stdout.count("wrote:") == 1 and record["Name"] in first.stdout and record["Value"] in first.stdout
    answers = public_world.bind.query(record["Name"].rstrip("."), "CNAME")
    assert [line.split()[-1] for line in answers] == [record["Value"]]
    detail = wait_status(acm, arn)
    assert detail["Status"] == "ISSUED", detail
    again = _cli(public_world, "cert", "create-records", arn, "--provider", provider, "--json")
    assert again.returncode == 0, again.stderr
    assert '"ALREADY_RIGHT"' in again.stdout and '"WRITTEN"' not in again.stdout


def test_nothing_half_written_stays_when_one_name_is_outside_the_providers_zones(
        public_world: PublicWorld, provider: str) -> None:
    acm, certsmith = public_world.server.client("acm"), public_world.server.client("certsmith")
    inside, outside = _name("half"), f"half-{uuid.uuid4().hex[:8]}.elsewhere.test"
    arn = acm.request_certificate(DomainName=inside, SubjectAlternativeNames=[outside])["CertificateArn"]
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_validation_records(CertificateArn=arn, ProviderName=provider)
    code, message = _error(excinfo)
    assert code == "DnsProviderException" and provider in message and outside in message
    assert public_world.bind.query(f"_acme-challenge.{inside}", "CNAME") == []
    acm.delete_certificate(CertificateArn=arn)


def test_create_records_refusals(public_world: PublicWorld, provider: str) -> None:
    acm, certsmith = public_world.server.client("acm"), public_world.server.client("certsmith")
    arn = acm.request_certificate(DomainName=_name("refusal"))["CertificateArn"]
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_validation_records(CertificateArn=arn, ProviderName="nobody")
    assert _error(excinfo)[0] == "ResourceNotFoundException" and "nobody" in _error(excinfo)[1]
    acm.delete_certificate(CertificateArn=arn)
    with pytest.raises(ClientError) as excinfo:
        certsmith.create_validation_records(CertificateArn=arn, ProviderName=provider)
    assert _error(excinfo)[0] == "ResourceNotFoundException"


def test_dns01_answered_directly_through_the_provider_by_issuer_and_by_request(
        public_world: PublicWorld, provider: str) -> None:
    acm, certsmith = public_world.server.client("acm"), public_world.server.client("certsmith")
    pebble = public_world.pebble
    certsmith.create_issuer(Name="pebble-direct", AcmeDirectoryUrl=pebble.directory_url, CaBundle=pebble.tls_cert_pem,
                            ContactEmail="admin@example.test", DnsProvider=provider)
    assert certsmith.describe_issuer(Name="pebble-direct")["Issuer"]["DnsProvider"] == provider
    by_issuer = _name("direct")
    arn = acm.request_certificate(DomainName=by_issuer, Tags=[{"Key": "certsmith:issuer", "Value": "pebble-direct"}])[
        "CertificateArn"]
    options = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    assert "ResourceRecord" not in options[0]  # nothing for the user to add
    detail = wait_status(acm, arn)
    assert detail["Status"] == "ISSUED", detail
    assert public_world.bind.query(f"_acme-challenge.{by_issuer}", "TXT") == []  # taken away after the order
    by_request = _name("tagged")
    arn = acm.request_certificate(DomainName=by_request, Tags=[{"Key": "certsmith:dns-provider", "Value": provider}])[
        "CertificateArn"]
    assert wait_status(acm, arn)["Status"] == "ISSUED"
    with pytest.raises(ClientError) as excinfo:
        certsmith.delete_dns_provider(Name=provider)
    assert _error(excinfo)[0] == "ResourceInUseException" and "pebble-direct" in _error(excinfo)[1]
    certsmith.update_issuer(Name="pebble-direct", DnsProvider="")
    assert "DnsProvider" not in certsmith.describe_issuer(Name="pebble-direct")["Issuer"]
    certsmith.delete_issuer(Name="pebble-direct")


def test_direct_validation_needs_a_known_provider(public_world: PublicWorld) -> None:
    acm = public_world.server.client("acm")
    with pytest.raises(ClientError) as excinfo:
        acm.request_certificate(DomainName=_name("unknown"), Tags=[{"Key": "certsmith:dns-provider", "Value": "nope"}])
    assert _error(excinfo)[0] == "ValidationException" and "nope" in _error(excinfo)[1]


def test_the_cli_adds_lists_and_removes_providers(public_world: PublicWorld) -> None:
    bind = public_world.bind
    added = _cli(public_world, "dns-provider", "add", "cli-bind", "--rfc2136", bind.address, "--tsig-name",
                 bind.tsig_name, "--tsig-secret", bind.tsig_secret, "--tsig-algorithm", bind.tsig_algorithm)
    assert added.returncode == 0, added.stderr
    assert "cli-bind" in added.stdout and bind.tsig_secret not in added.stdout
    listed = _cli(public_world, "dns-provider", "list")
    assert "cli-bind" in listed.stdout and bind.address in listed.stdout
    missing = _cli(public_world, "dns-provider", "add", "cli-x", "--rfc2136", bind.address)
    assert missing.returncode == 2 and "--tsig-name" in missing.stderr
    both = _cli(public_world, "dns-provider", "add", "cli-y", "--rfc2136", bind.address, "--route53")
    assert both.returncode == 2 and "exactly one" in both.stderr
    removed = _cli(public_world, "dns-provider", "remove", "cli-bind")
    assert removed.returncode == 0, removed.stderr
    gone = _cli(public_world, "dns-provider", "describe", "cli-bind")
    assert gone.returncode == 1 and "not found" in gone.stderr


def _sealed_column(world: PublicWorld) -> Any:
    import sqlalchemy as sa

    url = world.server.database_url or f"sqlite:///{world.server.data_dir / 'certsmith.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT options, sealed_secrets FROM dns_providers WHERE name = :n"),
                                      {"n": PROVIDER}).one()
    finally:
        engine.dispose()


def test_the_tsig_secret_is_sealed_at_rest(public_world: PublicWorld, provider: str) -> None:
    options, sealed = _sealed_column(public_world)
    secret = public_world.bind.tsig_secret
    assert secret not in str(options)
    assert sealed and secret.encode() not in bytes(sealed)
