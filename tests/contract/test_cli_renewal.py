"""``certsmith renewal ...`` against a real server: status, a run, policies, and usage errors in plain words.

The policies changed here are the account's and a tag's, so the commands run against a server of this module's
own (its worker sweeps every second), not the shared one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certsmith.domain.maintenance import MaintenanceWindow
from certsmith.domain.renewal import RenewalPolicy, RenewBefore, plan_renewal
from certsmith.testing.pki import WAIT, root_ca

from ..conftest import Server, backend_url, start_server
from .test_cli import cli

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
WINDOW = "0 2 * * 6;4h;Europe/Berlin"
PLANNED = ("prod.cli-renewal.test", "other.cli-renewal.test")


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("renewal-cli"), backend_url(), settings={"renewal_sweep_seconds": 1})
    yield srv
    srv.stop()
    assert not srv.errors(), srv.errors()


@pytest.fixture(scope="module")
def certificates(own_server: Server) -> dict[str, dict[str, Any]]:
    """A private certificate tagged env=prod, an untagged one, and an imported one, by domain."""
    acm = own_server.client("acm")
    ca = root_ca(own_server.client("acm-pca"), "Renewal CLI Root")
    arns = [acm.request_certificate(DomainName="prod.cli-renewal.test", CertificateAuthorityArn=ca,
                                    KeyAlgorithm="EC_prime256v1", Tags=[{"Key": "env", "Value": "prod"}])["CertificateArn"],
            acm.request_certificate(DomainName="other.cli-renewal.test", CertificateAuthorityArn=ca,
                                    KeyAlgorithm="EC_prime256v1")["CertificateArn"]]
    for arn in arns:
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    arns.append(acm.import_certificate(Certificate=(VECTORS / "rsa" / "leaf.pem").read_bytes(),
                                       PrivateKey=(VECTORS / "rsa" / "leaf.key").read_bytes(),
                                       CertificateChain=(VECTORS / "rsa" / "chain.pem").read_bytes())["CertificateArn"])
    details = [acm.describe_certificate(CertificateArn=arn)["Certificate"] for arn in arns]
    return {d["DomainName"]: d for d in details}


def status_json(server: Server) -> dict[str, dict[str, Any]]:
    return {e["DomainName"]: e for e in json.loads(cli(server, "renewal", "status", "--json").stdout)}


def test_status_shows_when_and_why_each_certificate_renews(own_server: Server,
                                                          certificates: dict[str, dict[str, Any]]) -> None:
    entries = status_json(own_server)
    prod = certificates["prod.cli-renewal.test"]
    entry = entries["prod.cli-renewal.test"]
    expected = plan_renewal(prod["NotBefore"], prod["NotAfter"], RenewalPolicy(), f"{prod['CertificateArn']}#1").at
    assert datetime.fromisoformat(entry["PlannedAt"]) == expected
    assert entry["RenewalEligibility"] == "ELIGIBLE" and entry["PolicySource"] == "default"
    assert entries["rsa.vectors.test"]["RenewalEligibility"] == "INELIGIBLE"
    assert "PlannedAt" not in entries["rsa.vectors.test"]

    table = cli(own_server, "renewal", "status")
    lines = table.stdout.splitlines()
    assert all(word in lines[1] for word in ("Domain", "Type", "Expires", "Renews at", "Last result", "Why")), lines[:3]
    prod_line = next(line for line in lines if "prod.cli-renewal.test" in line)
    assert f"{expected:%Y-%m-%d %H:%M}" in prod_line and f"{prod['NotAfter']:%Y-%m-%d}" in prod_line
    assert "60 days before expiry" in prod_line
    imported_line = next(line for line in lines if "rsa.vectors.test" in line)
    assert "not renewed: imported certificates are never renewed" in imported_line
    # Planned certificates first, soonest first; the ones never renewed last.
    order = [name for line in lines for name in entries if name in line]
    planned = sorted((n for n in entries if "PlannedAt" in entries[n]), key=lambda n: entries[n]["PlannedAt"])
    assert order[:len(planned)] == planned and order[-1] == "rsa.vectors.test"


def test_a_dry_run_finds_nothing_due(own_server: Server, certificates: dict[str, dict[str, Any]]) -> None:
    dry = cli(own_server, "renewal", "run", "--dry-run")
    assert dry.stdout == "" and "nothing is due now" in dry.stderr
    as_json = json.loads(cli(own_server, "renewal", "run", "--dry-run", "--json").stdout)
    assert as_json == {"Due": [], "Count": 0}


def test_policy_set_list_show_remove(own_server: Server, certificates: dict[str, dict[str, Any]]) -> None:
    empty = cli(own_server, "renewal", "policy", "list")
    assert empty.stdout == "" and "no renewal policy: the default applies" in empty.stderr
    shown = cli(own_server, "renewal", "policy", "set", "--tag", "env=prod", "--renew-before", "20d",
                "--window", WINDOW).stdout
    assert "tag:env=prod" in shown and "20d" in shown and "0 2 * * 6 for 4h (Europe/Berlin)" in shown
    policy = json.loads(cli(own_server, "renewal", "policy", "show", "--tag", "env=prod", "--json").stdout)
    assert policy["Scope"] == "tag:env=prod" and policy["RenewBefore"] == "20d"
    assert policy["MaintenanceWindows"] == [{"Cron": "0 2 * * 6", "Duration": "4h", "Timezone": "Europe/Berlin"}]
    account = json.loads(cli(own_server, "renewal", "policy", "set", "--renew-before", "25%", "--reuse-key",
                             "--all", "--json").stdout)
    assert (account["Scope"], account["RenewBefore"], account["ReuseKey"], account["StrictEligibility"]) == (
        "account", "25%", True, False)
    listed = cli(own_server, "renewal", "policy", "list").stdout
    assert listed.index("account") < listed.index("tag:env=prod")
    assert "reused at renewal" in listed and "every certificate certsmith issued" in listed
    assert [p["Scope"] for p in json.loads(cli(own_server, "renewal", "policy", "list", "--json").stdout)] == [
        "account", "tag:env=prod"]

    # After the next sweep the tagged certificate follows its tag's policy (20 days before expiry, moved into the
    # Saturday window, Berlin time), the other one the account's.
    own = own_server.client("certsmith")
    deadline = time.monotonic() + 30
    while [e.get("PolicySource") for e in sorted(own.list_renewals()["Renewals"], key=lambda e: e["DomainName"])
           if e["DomainName"] in PLANNED] != ["account", "tag:env=prod"]:
        assert time.monotonic() < deadline, own.list_renewals()["Renewals"]
        time.sleep(0.3)
    entries = status_json(own_server)
    prod = certificates["prod.cli-renewal.test"]
    window = MaintenanceWindow.parse("0 2 * * 6", "4h", "Europe/Berlin")
    policy = RenewalPolicy(renew_before=RenewBefore.parse("20d"), windows=(window,), source="tag:env=prod")
    expected = plan_renewal(prod["NotBefore"], prod["NotAfter"], policy, f"{prod['CertificateArn']}#1").at
    entry = entries["prod.cli-renewal.test"]
    planned_at = datetime.fromisoformat(entry["PlannedAt"])
    assert planned_at == expected and window.contains(planned_at)
    assert prod["NotAfter"] - timedelta(days=22) < planned_at <= prod["NotAfter"] - timedelta(days=13)
    assert entry["Reason"].startswith("renew-before 20d (tag:env=prod)") and "maintenance window" in entry["Reason"]
    table = cli(own_server, "renewal", "status").stdout
    assert "renew-before 20d (tag:env=prod)" in next(line for line in table.splitlines() if "prod.cli-renewal" in line)

    removed = cli(own_server, "renewal", "policy", "remove", "--tag", "env=prod")
    assert "removed the renewal policy of tag:env=prod" in removed.stdout
    cli(own_server, "renewal", "policy", "remove")
    gone = cli(own_server, "renewal", "policy", "show", "--tag", "env=prod", ok=False)
    assert gone.returncode == 1 and "ResourceNotFoundException" in gone.stderr and "tag:env=prod" in gone.stderr
    assert "Traceback" not in gone.stderr
    assert json.loads(cli(own_server, "renewal", "policy", "list", "--json").stdout) == []


@pytest.mark.parametrize(("args", "words"), [
    (["--window", "0 2 * * 6"], "--window '0 2 * * 6': give 'CRON;DURATION[;TIMEZONE]'"),
    (["--window", "0 2 * * 6;4h;Europe/Berlin;extra"], "give 'CRON;DURATION[;TIMEZONE]'"),
    (["--window", "0 2 * * 6;;UTC"], "give 'CRON;DURATION[;TIMEZONE]'"),
    (["--tag", "env"], "--tag 'env': give KEY=VALUE"),
    (["--tag", "=prod"], "--tag '=prod': give KEY=VALUE"),
    (["--tag", "env=prod", "--strict"], "--strict/--all is a setting of the account"),
])
def test_usage_errors_exit_2_in_plain_words(own_server: Server, args: list[str], words: str) -> None:
    result = cli(own_server, "renewal", "policy", "set", *args, ok=False)
    assert result.returncode == 2, result
    assert words in result.stderr and "Traceback" not in result.stderr and result.stdout == ""
    assert own_server.client("certsmith").list_renewal_policies()["RenewalPolicies"] == []


def test_a_malformed_tag_for_show_and_remove_exits_2(own_server: Server) -> None:
    for command in ("show", "remove"):
        result = cli(own_server, "renewal", "policy", command, "--tag", "novalue", ok=False)
        assert result.returncode == 2 and "--tag 'novalue': give KEY=VALUE" in result.stderr


def test_the_server_refuses_a_bad_cron_naming_the_field(own_server: Server) -> None:
    result = cli(own_server, "renewal", "policy", "set", "--window", "61 2 * * 6;4h", ok=False)
    assert result.returncode == 1 and "MaintenanceWindows[0].Cron" in result.stderr
    assert "not a valid cron expression" in result.stderr and "Traceback" not in result.stderr
