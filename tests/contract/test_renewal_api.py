"""certsmith's renewal API against the real server: policies, every certificate's plan, a run now, versions.

The shared server answers what changes nothing account-wide; policies of the account, and what the renewal
sweep does with them, are checked on a server of this module's own that sweeps every second.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certsmith.domain.renewal import RenewalPolicy, RenewBefore, plan_renewal
from certsmith.models import MODELS_PATH
from certsmith.testing.pki import WAIT, root_ca
from certsmith.testing.waiting import until

from ..conftest import Server, backend_url, need_binary, start_server

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
PASSPHRASE = b"renewal api passphrase"
DEFAULT_REASON = "60 days before expiry (lifetime over 180 days)"


# -- helpers -----------------------------------------------------------------------------------------------------------
def error(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def issued(acm: Any, ca: str, domain: str, **extra: Any) -> dict[str, Any]:
    """A private certificate (EC P-256, as the EC root's) once ISSUED: its DescribeCertificate."""
    arn = acm.request_certificate(DomainName=domain, CertificateAuthorityArn=ca, KeyAlgorithm="EC_prime256v1",
                                  **extra)["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    detail: dict[str, Any] = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    return detail


def renewals(own: Any) -> dict[str, dict[str, Any]]:
    """Every entry of ListRenewals, page after page, by ARN."""
    entries: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        page = own.list_renewals(MaxResults=100, **({"NextToken": token} if token else {}))
        entries.update((e["CertificateArn"], e) for e in page["Renewals"])
        token = page.get("NextToken")
        if not token:
            return entries


def entry_of(own: Any, arn: str) -> dict[str, Any]:
    return renewals(own)[arn]



def planned(detail: dict[str, Any], renew_before: str | None = None, source: str = "default") -> datetime:
    """When certsmith's own rule plans the renewal of version 1 of a certificate."""
    policy = RenewalPolicy(renew_before=RenewBefore.parse(renew_before), source=source) if renew_before \
        else RenewalPolicy()
    return plan_renewal(detail["NotBefore"], detail["NotAfter"], policy, f"{detail['CertificateArn']}#1").at


# -- fixtures ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


@pytest.fixture(scope="module")
def own(server: Server) -> Any:
    return server.client("certsmith")


@pytest.fixture(scope="module")
def ca(pca: Any) -> str:
    return root_ca(pca, "Renewal API Root")


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own whose worker sweeps for due renewals every second."""
    srv = start_server(tmp_path_factory.mktemp("renewal-fast"), backend_url(), settings={"renewal_sweep_seconds": 1})
    yield srv
    srv.stop()
    assert not srv.errors(), srv.errors()


@pytest.fixture(scope="module")
def fast_ca(fast: Server) -> str:
    return root_ca(fast.client("acm-pca"), "Renewal Sweep Root")


# -- the shared server ---------------------------------------------------------------------------------------------------
def test_a_fresh_private_certificate_is_planned_60_days_before_expiry_less_the_spread(acm: Any, own: Any,
                                                                                      ca: str) -> None:
    detail = issued(acm, ca, "plan.renewal.test")
    entry = entry_of(own, detail["CertificateArn"])
    assert (entry["Type"], entry["Status"], entry["Version"]) == ("PRIVATE", "ISSUED", 1)
    assert entry["NotAfter"] == detail["NotAfter"] and entry["DomainName"] == "plan.renewal.test"
    assert entry["RenewalEligibility"] == "ELIGIBLE" and entry["PolicySource"] == "default"
    latest = detail["NotAfter"] - timedelta(days=60)
    assert latest - timedelta(days=6) < entry["PlannedAt"] <= latest  # the spread: up to a tenth of the margin
    assert entry["PlannedAt"] == planned(detail) and entry["NextCheckAt"] == entry["PlannedAt"]
    assert entry["Reason"].startswith(DEFAULT_REASON), entry["Reason"]
    assert "LastResult" not in entry and "RenewalStatus" not in entry


def test_an_imported_certificate_is_ineligible_and_says_why(acm: Any, own: Any) -> None:
    arn = acm.import_certificate(Certificate=(VECTORS / "ec" / "leaf.pem").read_bytes(),
                                 PrivateKey=(VECTORS / "ec" / "leaf.key").read_bytes(),
                                 CertificateChain=(VECTORS / "ec" / "chain.pem").read_bytes())["CertificateArn"]
    entry = entry_of(own, arn)
    assert entry["Type"] == "IMPORTED" and entry["RenewalEligibility"] == "INELIGIBLE"
    assert "imported certificates are never renewed" in entry["Reason"] and "re-import" in entry["Reason"]
    assert "PlannedAt" not in entry and "NextCheckAt" not in entry


def test_list_renewals_pages_and_refuses_a_token_of_its_own_making(acm: Any, own: Any, ca: str) -> None:
    for index in range(3):
        issued(acm, ca, f"page{index}.renewal.test")
    seen: list[str] = []
    page = own.list_renewals(MaxResults=2)
    while True:
        assert len(page["Renewals"]) <= 2
        seen += [e["CertificateArn"] for e in page["Renewals"]]
        if not page.get("NextToken"):
            break
        page = own.list_renewals(MaxResults=2, NextToken=page["NextToken"])
    assert len(seen) == len(set(seen)) == len(renewals(own)) >= 3
    code, message = error(own.list_renewals, NextToken="!!not a token!!")
    assert code == "InvalidNextTokenException" and "NextToken" in message


def test_a_dry_run_lists_nothing_due_for_fresh_certificates(acm: Any, own: Any, ca: str) -> None:
    fresh = {issued(acm, ca, f"dry{index}.renewal.test")["CertificateArn"] for index in range(2)}
    dry = own.run_renewals(DryRun=True)
    assert not fresh & {d["CertificateArn"] for d in dry["Due"]}
    assert dry["Count"] == len(dry["Due"])
    entries = renewals(own)
    for arn in fresh:  # a dry run changes nothing
        assert entries[arn]["NextCheckAt"] == entries[arn]["PlannedAt"]


def test_renew_certificate_adds_a_version_with_a_new_serial_and_key(acm: Any, own: Any, ca: str) -> None:
    detail = issued(acm, ca, "versions.renewal.test")
    arn = detail["CertificateArn"]
    acm.export_certificate(CertificateArn=arn, Passphrase=PASSPHRASE)
    acm.renew_certificate(CertificateArn=arn)
    versions = until("a second version", lambda: (v := own.list_certificate_versions(CertificateArn=arn)["Versions"])
                     and len(v) == 2 and v)
    first, second = versions
    assert [(v["Version"], v["Action"], v["Current"]) for v in versions] == [(1, "ISSUANCE", False),
                                                                             (2, "RENEWAL", True)]
    assert first["Serial"] == detail["Serial"] and second["Serial"] != first["Serial"]
    assert first["KeyId"] != second["KeyId"] and len(second["KeyId"]) == 64
    now = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert now["Serial"] == second["Serial"] and now["RenewalSummary"]["RenewalStatus"] == "SUCCESS"
    assert second["NotAfter"] >= first["NotAfter"] and second["Issuer"] == first["Issuer"]
    leaf = x509.load_pem_x509_certificate(acm.get_certificate(CertificateArn=arn)["Certificate"].encode())
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert second["KeyId"] == hashlib.sha256(spki).hexdigest()
    entry = entry_of(own, arn)
    assert entry["Version"] == 2 and entry["LastResult"] == "SUCCESS" and entry["RenewalStatus"] == "SUCCESS"
    assert entry["PlannedAt"] > datetime.now(entry["PlannedAt"].tzinfo) + timedelta(days=300)


def test_versions_of_an_unknown_certificate(own: Any, acm: Any, ca: str) -> None:
    arn = issued(acm, ca, "unknown.renewal.test")["CertificateArn"]
    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    code, message = error(own.list_certificate_versions, CertificateArn=missing)
    assert code == "ResourceNotFoundException" and missing in message


BAD_POLICIES: list[tuple[dict[str, Any], str, str]] = [
    ({"Scope": "everything"}, "Scope", "'account' or 'tag:Key=Value'"),
    ({"Scope": "tag:no-equals-sign"}, "Scope", "'account' or 'tag:Key=Value'"),
    ({"Scope": "tag:=value"}, "Scope", "'account' or 'tag:Key=Value'"),
    ({"Scope": "tag:env=bad", "RenewBefore": "-5d"}, "RenewBefore", "negative"),
    ({"Scope": "tag:env=bad", "RenewBefore": "thirty days"}, "RenewBefore", "not a duration"),
    ({"Scope": "tag:env=bad", "RenewBefore": "30"}, "RenewBefore", "without a unit"),
    ({"Scope": "tag:env=bad", "RenewBefore": "150%"}, "RenewBefore", "between 1% and 99%"),
    ({"Scope": "tag:env=bad", "MaintenanceWindows": [{"Cron": "61 2 * * 6", "Duration": "4h"}]},
     "MaintenanceWindows[0].Cron", "not a valid cron expression"),
    ({"Scope": "tag:env=bad", "MaintenanceWindows": [{"Cron": "0 2 * *", "Duration": "4h"}]},
     "MaintenanceWindows[0].Cron", "has 4 fields"),
    ({"Scope": "tag:env=bad", "MaintenanceWindows": [{"Cron": "0 2 30 2 *", "Duration": "4h"}]},
     "MaintenanceWindows[0].Cron", "never opens"),
    ({"Scope": "tag:env=bad", "MaintenanceWindows": [{"Cron": "0 2 * * 6", "Duration": "4h"},
                                                     {"Cron": "0 2 * * 0", "Duration": "0h"}]},
     "MaintenanceWindows[1].Duration", "zero"),
    ({"Scope": "tag:env=bad", "MaintenanceWindows": [{"Cron": "0 2 * * 6", "Duration": "4h",
                                                      "Timezone": "Mars/Olympus_Mons"}]},
     "MaintenanceWindows[0].Timezone", "not a known IANA time zone"),
    ({"Scope": "tag:env=bad", "StrictEligibility": True}, "StrictEligibility", "a setting of the account"),
]


@pytest.mark.parametrize(("request_", "field", "problem"), BAD_POLICIES, ids=[f for _, f, _ in BAD_POLICIES])
def test_a_bad_policy_is_refused_naming_the_field(own: Any, request_: dict[str, Any], field: str, problem: str) -> None:
    code, message = error(own.put_renewal_policy, **request_)
    assert code == "ValidationException" and field in message and problem in message, message
    assert request_["Scope"] not in [p["Scope"] for p in own.list_renewal_policies()["RenewalPolicies"]]


def test_an_unknown_scope_is_not_found(own: Any) -> None:
    for call in (own.describe_renewal_policy, own.delete_renewal_policy):
        code, message = error(call, Scope="tag:nobody=set-this")
        assert code == "ResourceNotFoundException" and "tag:nobody=set-this" in message
    code, message = error(own.describe_renewal_policy, Scope="nonsense")
    assert code == "ValidationException" and "Scope" in message


def test_the_aws_cli_lists_renewals_with_the_shipped_model(server: Server, acm: Any, ca: str) -> None:
    aws = need_binary("aws")
    arn = issued(acm, ca, "awscli.renewal.test")["CertificateArn"]
    env = {**server.env(), "AWS_DATA_PATH": str(MODELS_PATH)}

    def run(*args: str) -> Any:
        result = subprocess.run([aws, "certsmith", *args, "--endpoint-url", server.endpoint, "--output", "json"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    entries = {e["CertificateArn"]: e for e in run("list-renewals", "--max-results", "1000")["Renewals"]}
    assert entries[arn]["RenewalEligibility"] == "ELIGIBLE" and entries[arn]["PolicySource"] == "default"
    assert entries[arn]["Reason"].startswith(DEFAULT_REASON)
    assert arn not in [d["CertificateArn"] for d in run("run-renewals", "--dry-run")["Due"]]
    versions = run("list-certificate-versions", "--certificate-arn", arn)["Versions"]
    assert [(v["Version"], v["Action"], v["Current"]) for v in versions] == [(1, "ISSUANCE", True)]


# -- a server that sweeps every second -----------------------------------------------------------------------------------
def test_policies_of_the_account_and_of_a_tag(fast: Server) -> None:
    own = fast.client("certsmith")
    assert own.list_renewal_policies()["RenewalPolicies"] == []
    window = {"Cron": "0 2 * * 6", "Duration": "6h", "Timezone": "Europe/Berlin"}
    put = own.put_renewal_policy(Scope="account", RenewBefore="33%", MaintenanceWindows=[window], ReuseKey=True,
                                 StrictEligibility=False)["RenewalPolicy"]
    assert {k: put[k] for k in ("Scope", "RenewBefore", "MaintenanceWindows", "ReuseKey", "StrictEligibility")} == {
        "Scope": "account", "RenewBefore": "33%", "MaintenanceWindows": [window], "ReuseKey": True,
        "StrictEligibility": False}
    assert put["CreatedAt"] == put["UpdatedAt"]
    assert own.describe_renewal_policy(Scope="account")["RenewalPolicy"] == put
    tag = own.put_renewal_policy(Scope="tag:env=prod", RenewBefore="30d")["RenewalPolicy"]
    assert tag["RenewBefore"] == "30d" and tag["MaintenanceWindows"] == [] and "StrictEligibility" not in tag
    assert [p["Scope"] for p in own.list_renewal_policies()["RenewalPolicies"]] == ["account", "tag:env=prod"]
    # Put replaces: what the second call leaves out is gone.
    again = own.put_renewal_policy(Scope="account", RenewBefore="20d")["RenewalPolicy"]
    assert again["RenewBefore"] == "20d" and again["MaintenanceWindows"] == [] and "ReuseKey" not in again
    assert again["CreatedAt"] == put["CreatedAt"] and again["UpdatedAt"] >= put["UpdatedAt"]
    for scope in ("account", "tag:env=prod"):
        own.delete_renewal_policy(Scope=scope)
        assert error(own.describe_renewal_policy, Scope=scope)[0] == "ResourceNotFoundException"
        assert error(own.delete_renewal_policy, Scope=scope)[0] == "ResourceNotFoundException"
    assert own.list_renewal_policies()["RenewalPolicies"] == []


def test_a_tag_policy_moves_the_plan_of_tagged_certificates_at_the_next_sweep(fast: Server, fast_ca: str) -> None:
    acm, own = fast.client("acm"), fast.client("certsmith")
    tagged = issued(acm, fast_ca, "tagged.renewal.test", Tags=[{"Key": "env", "Value": "prod"}])
    plain = issued(acm, fast_ca, "plain.renewal.test", Tags=[{"Key": "env", "Value": "dev"}])
    for detail in (tagged, plain):
        assert entry_of(own, detail["CertificateArn"])["PlannedAt"] == planned(detail)
    own.put_renewal_policy(Scope="tag:env=prod", RenewBefore="30d")
    try:
        entry = until("the tag's plan", lambda: (e := entry_of(own, tagged["CertificateArn"]))
                      and e.get("PolicySource") == "tag:env=prod" and e)
        latest = tagged["NotAfter"] - timedelta(days=30)
        assert latest - timedelta(days=3) < entry["PlannedAt"] <= latest
        assert entry["PlannedAt"] == planned(tagged, "30d", "tag:env=prod") == entry["NextCheckAt"]
        assert entry["Reason"].startswith("renew-before 30d (tag:env=prod)"), entry["Reason"]
        other = entry_of(own, plain["CertificateArn"])
        assert other["PolicySource"] == "default" and other["PlannedAt"] == planned(plain)
    finally:
        own.delete_renewal_policy(Scope="tag:env=prod")
    back = until("the default plan again", lambda: (e := entry_of(own, tagged["CertificateArn"]))
                 and e.get("PolicySource") == "default" and e)
    assert back["PlannedAt"] == planned(tagged) and back["Reason"].startswith(DEFAULT_REASON)


def test_a_run_renews_nothing_that_is_not_due(fast: Server, fast_ca: str) -> None:
    acm, own = fast.client("acm"), fast.client("certsmith")
    arn = issued(acm, fast_ca, "run.renewal.test")["CertificateArn"]
    dry = own.run_renewals(DryRun=True)
    assert dry["Count"] == 0 and dry["Due"] == []
    ran = own.run_renewals()
    assert ran["Count"] == 0 and ran["Due"] == []
    assert [v["Version"] for v in own.list_certificate_versions(CertificateArn=arn)["Versions"]] == [1]


def test_strict_eligibility_turned_off_brings_unexported_certificates_back(fast: Server, fast_ca: str) -> None:
    acm, own = fast.client("acm"), fast.client("certsmith")
    kept = issued(acm, fast_ca, "kept.renewal.test")
    own.put_renewal_policy(Scope="account", StrictEligibility=True)
    try:
        entry = until("ACM's rule applied", lambda: (e := entry_of(own, kept["CertificateArn"]))
                      and e["RenewalEligibility"] == "INELIGIBLE" and e)
        assert "StrictEligibility" in entry["Reason"] and "PlannedAt" not in entry
        fresh = issued(acm, fast_ca, "strict.renewal.test")
        assert fresh["RenewalEligibility"] == "INELIGIBLE"
        acm.export_certificate(CertificateArn=fresh["CertificateArn"], Passphrase=PASSPHRASE)
        exported = until("an exported certificate planned", lambda: (e := entry_of(own, fresh["CertificateArn"]))
                         and e["RenewalEligibility"] == "ELIGIBLE" and e)
        assert exported["PlannedAt"] == planned(fresh)
    finally:
        own.delete_renewal_policy(Scope="account")
    back = until("the default rule again for a certificate never exported",
                 lambda: (e := entry_of(own, kept["CertificateArn"])) and e["RenewalEligibility"] == "ELIGIBLE" and e,
                 within=10)
    assert back["PlannedAt"] == planned(kept)
    assert acm.describe_certificate(CertificateArn=kept["CertificateArn"])["Certificate"]["RenewalEligibility"] == \
        "ELIGIBLE"
