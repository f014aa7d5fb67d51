"""HttpRedirectCheck against a real nginx carrying the user's one redirect rule, names resolved through a real BIND."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from certsmith.dns.resolve import DnsLookupError, Resolvers
from certsmith.services.public.http_validation import (
    CHALLENGE_PATH,
    HttpRedirectCheck,
    RedirectFinding,
    public_ca_caveat,
    redirect_for,
)
from certsmith.testing.bind import Bind, start_bind
from certsmith.testing.nginx import Nginx, start_nginx
from certsmith.testing.server import free_port

from ..conftest import need_binary

PUBLIC_URL = "https://certsmith.example.net:8443"
WWW = "www.example.test"


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    need_binary("nsupdate")
    server = start_bind(tmp_path_factory.mktemp("bind"), binary=need_binary("named"))
    server.update("example.test", [f"update add {WWW} 60 A 127.0.0.1",
                                   "update add txt-only.example.test 60 TXT \"no address here\"",
                                   "update add dual.example.test 60 A 127.0.0.1",
                                   "update add dual.example.test 60 AAAA ::1"])
    server.wait_visible("dual.example.test", "AAAA", "::1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redirect() -> dict[str, str]:
    return redirect_for(PUBLIC_URL, "0123456789abcdef0123456789abcdef", WWW)


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory, redirect: dict[str, str]) -> Iterator[Nginx]:
    server = start_nginx(tmp_path_factory.mktemp("nginx"), free_port(),
                         {WWW: redirect["RedirectTo"], "dual.example.test": redirect["RedirectTo"]},
                         binary=need_binary("nginx"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def resolvers(bind: Bind) -> Resolvers:
    return Resolvers([("127.0.0.1", bind.port)])


@pytest.fixture()
def check(resolvers: Resolvers, nginx: Nginx) -> HttpRedirectCheck:
    return HttpRedirectCheck(resolvers, port=nginx.port, timeout=2.0)


def test_redirect_for() -> None:
    assert redirect_for("https://certsmith.example.net/", "abc", "WWW.Example.Test.") == {
        "RedirectFrom": "http://www.example.test/.well-known/acme-challenge/",
        "RedirectTo": "https://certsmith.example.net/.well-known/acme-challenge/abc/"}
    with pytest.raises(ValueError, match=re.escape("name: '*.example.test' is a wildcard")):
        redirect_for(PUBLIC_URL, "abc", "*.example.test")
    with pytest.raises(ValueError, match="label"):
        redirect_for(PUBLIC_URL, "a/b", WWW)


def test_what_a_public_ca_would_not_follow() -> None:
    assert public_ca_caveat("https://certsmith.example.net/.well-known/acme-challenge/abc/") is None
    assert public_ca_caveat("http://certsmith.example.net:80/.well-known/acme-challenge/abc/") is None
    assert "ports 80 and 443 only, not 8000" in (public_ca_caveat("http://certsmith.example.net:8000/x/") or "")
    assert "IP address (127.0.0.1)" in (public_ca_caveat("http://127.0.0.1/x/") or "")
    assert "IP address (::1)" in (public_ca_caveat("https://[::1]/x/") or "")
    assert "not an http or https URL" in (public_ca_caveat("ftp://certsmith.example.net/x/") or "")


def test_addresses_through_bind(resolvers: Resolvers, bind: Bind) -> None:
    assert resolvers.addresses(WWW) == ["127.0.0.1"]
    assert resolvers.addresses("dual.example.test") == ["127.0.0.1", "::1"]
    assert resolvers.addresses("txt-only.example.test") == []
    assert resolvers.addresses("nothing.invalid") == []
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a "resolver" that never answers
    silent.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(DnsLookupError, match=r"www\.example\.test at 127\.0\.0\.1:\d+ failed: timeout"):
            Resolvers([("127.0.0.1", silent.getsockname()[1])], timeout=0.3).addresses(WWW)
    finally:
        silent.close()


def test_the_redirect_in_place(check: HttpRedirectCheck, redirect: dict[str, str]) -> None:
    finding = check.check(WWW, redirect)
    assert finding.ok, finding
    assert finding.address == "127.0.0.1"
    assert finding.detail.startswith(f"redirects to {redirect['RedirectTo']}certsmith-probe-")


def test_an_address_that_takes_no_connection_is_passed_over(check: HttpRedirectCheck,
                                                            redirect: dict[str, str], nginx: Nginx) -> None:
    """nginx listens on 127.0.0.1 only: the name's ::1 refuses, as an unreachable IPv6 address does for a CA."""
    finding = check.check("dual.example.test", redirect)
    assert finding.ok and finding.address == "127.0.0.1", finding
    assert f"passed over: connection refused at [::1]:{nginx.port}" in finding.detail


def test_no_address(check: HttpRedirectCheck, redirect: dict[str, str]) -> None:
    assert check.check("txt-only.example.test", redirect) == RedirectFinding(
        False, "no A/AAAA record for txt-only.example.test", None)
    assert check.check("nothing.invalid", redirect) == RedirectFinding(False, "no A/AAAA record for nothing.invalid", None)


def test_nothing_listening(resolvers: Resolvers, redirect: dict[str, str]) -> None:
    port = free_port()
    finding = HttpRedirectCheck(resolvers, port=port, timeout=2.0).check(WWW, redirect)
    assert finding == RedirectFinding(False, f"connection refused at 127.0.0.1:{port}", "127.0.0.1")


def test_a_server_that_never_answers(resolvers: Resolvers, redirect: dict[str, str]) -> None:
    with socket.socket() as mute:  # takes the connection (the kernel's backlog) and never reads it
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        port = mute.getsockname()[1]
        finding = HttpRedirectCheck(resolvers, port=port, timeout=0.3).check(WWW, redirect)
    assert finding == RedirectFinding(False, f"no answer within 0.3 s at 127.0.0.1:{port}", "127.0.0.1")


def test_no_rule_for_the_name(check: HttpRedirectCheck, redirect: dict[str, str]) -> None:
    """other.example.test resolves (BIND's wildcard) but nginx has no server block for it: its default 404."""
    finding = check.check("other.example.test", redirect)
    assert finding == RedirectFinding(False, "answered 404 without a redirect", "127.0.0.1")


def test_a_redirect_elsewhere(check: HttpRedirectCheck, redirect: dict[str, str], nginx: Nginx) -> None:
    wrong = "https://old-certsmith.example.net/.well-known/acme-challenge/0123/"
    nginx.set_redirects({WWW: wrong})
    try:
        finding = check.check(WWW, redirect)
        assert not finding.ok and finding.address == "127.0.0.1"
        found = re.fullmatch(r"redirects to (\S+); expected (\S+)", finding.detail)
        assert found and found.group(1).startswith(wrong + "certsmith-probe-"), finding
        assert found.group(2) == redirect["RedirectTo"] + found.group(1).removeprefix(wrong)
        nginx.set_redirects({WWW: redirect["RedirectTo"] + "#"})  # the segment lands in a fragment: lost
        finding = check.check(WWW, redirect)
        assert not finding.ok and finding.detail.endswith("(the rule must keep the last path segment)"), finding
    finally:
        nginx.set_redirects({WWW: redirect["RedirectTo"], "dual.example.test": redirect["RedirectTo"]})
    assert check.check(WWW, redirect).ok


def test_wildcards_and_bad_input(check: HttpRedirectCheck, redirect: dict[str, str]) -> None:
    finding = check.check("*.example.test", redirect)
    assert not finding.ok and "wildcard" in finding.detail and finding.address is None
    with pytest.raises(ValueError, match="redirect: RedirectTo is missing"):
        check.check(WWW, {"RedirectFrom": f"http://{WWW}{CHALLENGE_PATH}"})


def test_nginx_helper_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="redirects: 'bad name' is not a server name"):
        start_nginx(tmp_path, free_port(), {"bad name": "http://a.test/"})
    with pytest.raises(ValueError, match=re.escape("the target of a.test")):
        start_nginx(tmp_path, free_port(), {"a.test": "http://a.test/; return 200"})
