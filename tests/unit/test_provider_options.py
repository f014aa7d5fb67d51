"""DNS provider options, the plugin registry, and the small pure parts of the providers."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from certsmith.dns.providers import DnsProvider, ProviderError, ProviderPlugin, RecordSet, build_provider, plugin, plugins
from certsmith.dns.providers.rfc2136 import Rfc2136Options, split_server
from certsmith.dns.providers.route53 import Route53Options, quote_txt, unquote_txt
from certsmith.domain.errors import ValidationError

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
TSIG = {"server": "127.0.0.1:5353", "tsig_name": "acme-key", "tsig_secret": SECRET}


def _refused(kind: str, raw: dict[str, Any], field: str, *words: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        plugin(kind).parse(raw)
    error = info.value
    assert error.field == field, error.message
    for word in words:
        assert word in error.message, error.message
    for secret_field in plugin(kind).secret_fields:
        value = raw.get(secret_field)
        if isinstance(value, str) and len(value) > 3:
            assert value not in error.message
    return error


# --- rfc2136 -------------------------------------------------------------------------------------------------------

def test_rfc2136_defaults_and_normal_forms() -> None:
    options = plugin("rfc2136").parse({**TSIG, "server": "10.0.0.53", "tsig_name": "Acme-Key.", "zone": "Example.Test."})
    assert options == Rfc2136Options("10.0.0.53:53", "acme-key", SECRET, "hmac-sha256", "example.test", 5.0)
    assert plugin("rfc2136").parse({**TSIG, "tsig_algorithm": "HMAC-SHA512.", "timeout": 2}).tsig_algorithm == "hmac-sha512"
    assert plugin("rfc2136").parse({**TSIG, "tsig_algorithm": "hmac-md5.sig-alg.reg.int"}).tsig_algorithm == "hmac-md5"
    assert plugin("rfc2136").parse({**TSIG, "zone": None, "timeout": 2}).timeout == 2.0
    assert plugin("rfc2136").parse({**TSIG, "zone": ""}).zone is None


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("::1", ("::1", 53)),
    ("[::1]:5353", ("::1", 5353)), ("[2001:db8::1]", ("2001:db8::1", 53)), (" 192.0.2.1:53 ", ("192.0.2.1", 53)),
])
def test_server_forms(text: str, expected: tuple[str, int]) -> None:
    assert split_server(text) == expected


def test_ipv6_server_is_written_with_brackets() -> None:
    assert plugin("rfc2136").parse({**TSIG, "server": "::1"}).server == "[::1]:53"


@pytest.mark.parametrize(("server", "words"), [
    ("ns1.example.test", ("IP address", "host names are not resolved")), ("ns1.example.test:53", ("IP address",)),
    ("127.0.0.1:0", ("1 to 65535",)), ("127.0.0.1:65536", ("1 to 65535",)), ("127.0.0.1:dns", ("1 to 65535",)),
    ("[::1]:x", ("IP address",)), ("300.1.1.1", ("IP address",)),
])
def test_bad_server(server: str, words: tuple[str, ...]) -> None:
    _refused("rfc2136", {**TSIG, "server": server}, "server", *words)


@pytest.mark.parametrize("secret", ["not base64!!", "c2VjcmV0=====", "c2VjcmV", "c2Vj cmV0", "c2VjcmV*"])
def test_tsig_secret_that_is_not_base64(secret: str) -> None:
    _refused("rfc2136", {**TSIG, "tsig_secret": secret}, "tsig_secret", "not base64")


@pytest.mark.parametrize("secret", ["c2VjcmV0", "c2VjcmV0MQ==", "c2VjcmV0MTI=", SECRET])
def test_tsig_secret_in_base64(secret: str) -> None:
    assert plugin("rfc2136").parse({**TSIG, "tsig_secret": f" {secret} "}).tsig_secret == secret


def test_unknown_tsig_algorithm() -> None:
    _refused("rfc2136", {**TSIG, "tsig_algorithm": "hmac-sha3"}, "tsig_algorithm", "'hmac-sha3'", "hmac-sha256",
             "hmac-md5")


def test_unknown_option() -> None:
    _refused("rfc2136", {**TSIG, "port": 53}, "port", "no option 'port'", "server", "tsig_secret")


@pytest.mark.parametrize("missing", ["server", "tsig_name", "tsig_secret"])
def test_missing_required_option(missing: str) -> None:
    raw = {key: value for key, value in TSIG.items() if key != missing}
    _refused("rfc2136", raw, missing, "required")
    _refused("rfc2136", {**raw, missing: "  "}, missing, "empty")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("timeout", "five", ("a number",)), ("timeout", True, ("a number",)), ("timeout", 0, ("more than 0",)),
    ("timeout", 301, ("at most 300",)), ("server", 53, ("a string",)), ("zone", ".", ("root",)),
    ("zone", "a..b", ("not a valid DNS name",)), ("tsig_name", ["k"], ("a string",)),
])
def test_wrong_type_or_value(field: str, value: Any, words: tuple[str, ...]) -> None:
    _refused("rfc2136", {**TSIG, field: value}, field, *words)


def test_a_secret_of_the_wrong_type_is_not_shown() -> None:
    error = _refused("rfc2136", {**TSIG, "tsig_secret": 1234567}, "tsig_secret", "a string")
    assert "1234567" not in error.message


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError):
        plugin("rfc2136").parse(["server"])  # type: ignore[arg-type]


# --- route53 -------------------------------------------------------------------------------------------------------

def test_route53_defaults() -> None:
    options = plugin("route53").parse({})
    assert options == Route53Options(None, None, None, None, "us-east-1", None, 120.0, 10.0)
    parsed = plugin("route53").parse({"hosted_zone_id": "/hostedzone/Z0123ABC", "access_key_id": "AKIDEXAMPLE",
                                      "secret_access_key": "s3cr3t-value", "session_token": "token-value",
                                      "region": "EU-West-1", "endpoint_url": "http://127.0.0.1:5000", "wait_timeout": 5})
    assert (parsed.hosted_zone_id, parsed.region, parsed.wait_timeout) == ("Z0123ABC", "eu-west-1", 5.0)
    assert set(plugin("route53").secret_fields) == {"secret_access_key", "session_token"}


@pytest.mark.parametrize(("raw", "field", "words"), [
    ({"access_key_id": "AKIDEXAMPLE"}, "secret_access_key", ("required with the other",)),
    ({"secret_access_key": "s3cr3t-value"}, "access_key_id", ("required with the other",)),
    ({"session_token": "token-value"}, "session_token", ("needs",)),
    ({"access_key_id": "AKID EXAMPLE", "secret_access_key": "s3cr3t-value"}, "access_key_id", ("spaces",)),
    ({"region": "mars"}, "region", ("not an AWS region",)),
    ({"endpoint_url": "localhost:5000"}, "endpoint_url", ("http(s) URL",)),
    ({"endpoint_url": "ftp://127.0.0.1"}, "endpoint_url", ("http(s) URL",)),
    ({"hosted_zone_id": "Z 12"}, "hosted_zone_id", ("not a hosted zone ID",)),
    ({"wait_timeout": 0}, "wait_timeout", ("more than 0",)), ({"wait_timeout": "soon"}, "wait_timeout", ("a number",)),
    ({"zone": "example.test"}, "zone", ("no option 'zone'", "hosted_zone_id")),
])
def test_route53_refusals(raw: dict[str, Any], field: str, words: tuple[str, ...]) -> None:
    _refused("route53", raw, field, *words)


@pytest.mark.parametrize("value", ["token", 'say "hi"', "back\\slash", "é✓", "x" * 600, "", "tab\there"])
def test_route53_txt_quoting_round_trips(value: str) -> None:
    quoted = quote_txt(value)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert all(len(part.encode()) <= 255 * 4 + 2 for part in quoted.split('" "'))
    assert unquote_txt(quoted) == value


def test_route53_txt_as_route53_writes_it() -> None:
    assert quote_txt('a"b') == '"a\\"b"'
    assert quote_txt("é") == '"\\303\\251"'
    assert quote_txt("x" * 256) == '"' + "x" * 255 + '" "x"'
    assert unquote_txt('"abc" "def"') == "abcdef"
    assert unquote_txt("plain") == "plain"


# --- registry, records, errors -------------------------------------------------------------------------------------

def test_registry_knows_the_builtins() -> None:
    found = plugins()
    assert {"rfc2136", "route53"} <= set(found)
    assert plugin(" RFC2136 ") is found["rfc2136"]
    assert all(isinstance(item, ProviderPlugin) for item in found.values())
    assert plugin("rfc2136").secret_fields == ("tsig_secret",)


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValidationError) as info:
        plugin("cloudflare")
    assert info.value.field == "Kind"
    assert "'cloudflare'" in info.value.message and "rfc2136" in info.value.message and "route53" in info.value.message
    with pytest.raises(ValidationError):
        build_provider("nope", "corp-dns", {})


def test_build_provider() -> None:
    provider = build_provider("rfc2136", "corp-dns", TSIG)
    assert isinstance(provider, DnsProvider) and provider.name == "corp-dns"
    r53 = build_provider("route53", "corp-r53", {"endpoint_url": "http://127.0.0.1:9", "access_key_id": "AKIDEXAMPLE",
                                                 "secret_access_key": "s3cr3t-value"})
    assert isinstance(r53, DnsProvider) and r53.name == "corp-r53"
    with pytest.raises(ValidationError) as info:
        build_provider("rfc2136", "corp-dns", {**TSIG, "tsig_secret": "%%%"})
    assert info.value.field == "tsig_secret"


def _distribution(root: Path, module: str, entry_points: str) -> None:
    """A real installed distribution (dist-info on sys.path) with entry points in the providers' group."""
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[certsmith.dns_providers]\n" + entry_points)


def test_third_party_plugins_and_broken_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    module = f"cs_demo_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from dataclasses import dataclass\n"
        "from certsmith.dns.providers import ProviderPlugin\n"
        "@dataclass(frozen=True)\nclass Options:\n    token: str\n"
        "class Demo:\n    def __init__(self, name, options):\n        self.name = name\n"
        "PLUGIN = ProviderPlugin('demo', 'a demo', Options, ('token',), Demo)\n"
        "TAKEN = ProviderPlugin('rfc2136', 'steals a kind', Options, (), Demo)\n"
        "NOT_A_PLUGIN = object()\n")
    _distribution(tmp_path, module, f"demo = {module}:PLUGIN\nbroken = {module}_missing:PLUGIN\n"
                                    f"odd = {module}:NOT_A_PLUGIN\ntaken = {module}:TAKEN\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="certsmith.dns.providers.registry"):
        found = plugins()
    assert found["demo"].description == "a demo"
    assert found["rfc2136"].options_type is Rfc2136Options  # a third party cannot take a built-in kind
    assert {"rfc2136", "route53", "demo"} == set(found)
    logged = caplog.text
    assert "'broken'" in logged and "ModuleNotFoundError" in logged
    assert "'odd'" in logged and "not a ProviderPlugin" in logged
    assert "'taken'" in logged and "taken" in logged
    assert build_provider("demo", "mine", {"token": "t0k3n-value"}).name == "mine"
    with pytest.raises(ValidationError) as info:
        plugin("demo").parse({})
    assert info.value.field == "token"


def test_record_sets_are_normalised() -> None:
    record = RecordSet("_ACME-Challenge.WWW.Example.Test.", "cname", ["Target.Example.Test."])  # type: ignore[arg-type]
    assert record == RecordSet("_acme-challenge.www.example.test", "CNAME", ("target.example.test",), 60)
    assert RecordSet("a.test", "TXT", "one").values == ("one",)  # type: ignore[arg-type]
    assert RecordSet("a.test", "TXT", ("Case", "Kept")).values == ("Case", "Kept")
    assert RecordSet("a.test", "TXT", ("x", "y")).same(RecordSet("a.test", "TXT", ("y", "x")))
    assert not RecordSet("a.test", "TXT", ("x",)).same(RecordSet("a.test", "TXT", ("x",), ttl=61))
    with pytest.raises(ValueError, match="one value"):
        RecordSet("a.test", "CNAME", ("x.test", "y.test"))
    with pytest.raises(ValueError, match="TTL"):
        RecordSet("a.test", "TXT", ("x",), ttl=-1)
    with pytest.raises(ValueError, match="name"):
        RecordSet(".", "TXT", ("x",))


def test_provider_error_names_provider_and_record() -> None:
    error = ProviderError("corp-dns", "_acme-challenge.x.test", "the server refused the TSIG key 'k'", reason="credentials")
    assert str(error) == "DNS provider 'corp-dns': _acme-challenge.x.test: the server refused the TSIG key 'k'"
    assert (error.provider, error.name, error.reason) == ("corp-dns", "_acme-challenge.x.test", "credentials")
    assert str(ProviderError("corp-dns", None, "down", reason="unreachable")) == "DNS provider 'corp-dns': down"
    with pytest.raises(ValueError):
        ProviderError("corp-dns", None, "x", reason="bad-reason")


@pytest.mark.parametrize(("kind", "raw"), [
    ("rfc2136", {**TSIG, "zone": "example.test", "timeout": 2}),
    ("route53", {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "s3cr3t-value", "session_token": "token-value",
                 "endpoint_url": "http://127.0.0.1:5000"}),
    ("route53", {}),
])
def test_public_and_secret_options_round_trip(kind: str, raw: dict[str, Any]) -> None:
    found = plugin(kind)
    options = found.parse(raw)
    public, secret = found.public_options(options), found.secret_options(options)
    assert set(secret) <= set(found.secret_fields) and not set(public) & set(found.secret_fields)
    assert {key: raw[key] for key in found.secret_fields if key in raw} == secret
    assert found.parse({**public, **secret}) == options
    assert all(isinstance(value, str | int | float | bool) for value in public.values())
