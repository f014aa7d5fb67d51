"""Which programs each kind of deployment target runs, read from its options alone (no program is run here)."""

from __future__ import annotations

from typing import Any

import pytest

from certsmith.deploy.targets import plugin

AWS = {"region": "us-east-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret"}


def programs(kind: str, **options: Any) -> tuple[str, ...]:
    chosen = plugin(kind)
    return chosen.programs(chosen.parse(options))


def test_files_runs_only_its_reload_command() -> None:
    assert programs("files", path="/srv/certs") == ()
    assert programs("files", path="/srv/certs", reload_command="systemctl reload postfix") == ("systemctl reload postfix",)


def test_nginx_runs_its_nginx_command() -> None:
    assert programs("nginx", path="/etc/nginx/certs") == ("nginx",)
    assert programs("nginx", path="/etc/nginx/certs", nginx="/usr/sbin/nginx -e stderr", config="/etc/nginx/nginx.conf") \
        == ("/usr/sbin/nginx -e stderr",)


def test_apache_runs_its_control_command() -> None:
    assert programs("apache", path="/etc/apache2/certs") == ("apachectl",)
    assert programs("apache", path="/etc/apache2/certs", apachectl="/usr/sbin/apache2ctl") == ("/usr/sbin/apache2ctl",)


def test_haproxy_runs_a_program_only_when_a_reload_command_is_set() -> None:
    assert programs("haproxy", path="/etc/haproxy/certs", socket="/run/haproxy/admin.sock") == ()
    assert programs("haproxy", path="/etc/haproxy/certs", master_socket="/run/haproxy/master.sock") == ()
    assert programs("haproxy", path="/etc/haproxy/certs", reload_command="systemctl reload haproxy") \
        == ("systemctl reload haproxy",)


@pytest.mark.parametrize(("kind", "options"), [
    ("aws-acm", {}),
    ("aws-elbv2", {"listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2"}),
    ("aws-cloudfront", {"distribution_id": "E2EXAMPLE"}),
])
def test_aws_kinds_run_no_program(kind: str, options: dict[str, str]) -> None:
    assert programs(kind, **AWS, **options) == ()
