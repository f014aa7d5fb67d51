"""What goes wrong with public certificates, and what certsmith says: missing or wrong CNAMEs, CAA, a CA that
refuses, a CA that goes away during an order."""

from __future__ import annotations

import time

from certsmith.testing.pebble import start_pebble

from .conftest import PublicWorld, pending_records, wait_status


def test_a_missing_cname_keeps_the_certificate_pending_and_the_doctor_names_it(public_world: PublicWorld) -> None:
    acm, own = public_world.server.client("acm"), public_world.server.client("certsmith")
    arn = acm.request_certificate(DomainName="missing.example.test")["CertificateArn"]
    detail = wait_status(acm, arn, seconds=3)
    assert detail["Status"] == "PENDING_VALIDATION"
    assert detail["DomainValidationOptions"][0]["ValidationStatus"] == "PENDING_VALIDATION"
    report = own.diagnose_validation(CertificateArn=arn)
    (name,) = report["Names"]
    assert name["RecordName"] == "_acme-challenge.missing.example.test."
    assert name["ExpectedValue"] == detail["DomainValidationOptions"][0]["ResourceRecord"]["Value"]
    assert name["Answers"][0]["Resolver"] == public_world.bind.address
    assert name["Answers"][0].get("Error") in ("NXDOMAIN", "no answer")
    assert name["Verdict"].startswith("missing")
    assert "_acme-challenge.missing.example.test. CNAME" in name["Verdict"]
    assert report["Delegation"]["Reachable"] is True  # BIND reaches certsmith's DNS server for the zone
    assert "waiting for the validation CNAME of missing.example.test" in report["LastMessage"]


def test_a_cname_pointing_elsewhere_is_not_taken_and_the_doctor_shows_where_it_points(public_world: PublicWorld) -> None:
    acm, own = public_world.server.client("acm"), public_world.server.client("certsmith")
    arn = acm.request_certificate(DomainName="elsewhere.example.test")["CertificateArn"]
    (record,) = pending_records(acm, arn)
    public_world.bind.set_cname(record["Name"].rstrip("."), "someone-else.acme.test")
    public_world.bind.wait_visible(record["Name"].rstrip("."), "CNAME", "someone-else.acme.test.")
    assert wait_status(acm, arn, seconds=3)["Status"] == "PENDING_VALIDATION"
    (name,) = own.diagnose_validation(CertificateArn=arn)["Names"]
    assert name["Answers"][0]["Values"][0] == "someone-else.acme.test"
    assert "points to someone-else.acme.test" in name["Verdict"]
    # Corrected, it validates without anything else to do.
    public_world.bind.set_cname(record["Name"].rstrip("."), record["Value"].rstrip("."))
    assert wait_status(acm, arn)["Status"] == "ISSUED"


def test_caa_that_does_not_allow_the_issuer_fails_the_certificate_with_caa_error(public_world: PublicWorld) -> None:
    acm, own = public_world.server.client("acm"), public_world.server.client("certsmith")
    public_world.bind.set_caa("caa.example.test", [(0, "issue", "letsencrypt.org")])
    public_world.bind.set_caa("caa-ok.example.test", [(0, "issue", "pebble.letsencrypt.org")])
    refused = acm.request_certificate(DomainName="caa.example.test")["CertificateArn"]
    allowed = acm.request_certificate(DomainName="caa-ok.example.test")["CertificateArn"]
    public_world.add_records(refused)
    public_world.add_records(allowed)
    detail = wait_status(acm, refused)
    assert (detail["Status"], detail.get("FailureReason")) == ("FAILED", "CAA_ERROR")
    problem = own.diagnose_validation(CertificateArn=refused)["LastAcmeProblem"]
    assert "letsencrypt.org" in problem["Detail"] and "pebble.letsencrypt.org" in problem["Detail"]
    assert wait_status(acm, allowed)["Status"] == "ISSUED"


def test_a_ca_that_refuses_fails_the_certificate_and_its_problem_is_kept(public_world: PublicWorld) -> None:
    home = public_world.home / "refusing"
    pebble = start_pebble(home, public_world.bind.address, config={"domainBlocklist": ["blocked.example.test"]})
    try:
        own, acm = public_world.server.client("certsmith"), public_world.server.client("acm")
        own.create_issuer(Name="refusing", AcmeDirectoryUrl=pebble.directory_url, CaBundle=pebble.tls_cert_pem)
        arn = acm.request_certificate(DomainName="blocked.example.test",
                                      Tags=[{"Key": "certsmith:issuer", "Value": "refusing"}])["CertificateArn"]
        public_world.add_records(arn)
        detail = wait_status(acm, arn)
        assert detail["Status"] == "FAILED"
        assert detail["FailureReason"] in ("DOMAIN_VALIDATION_DENIED", "OTHER")
        problem = own.diagnose_validation(CertificateArn=arn)["LastAcmeProblem"]
        assert problem["Type"].startswith("urn:ietf:params:acme:error:")
        assert "blocked.example.test" in problem["Detail"]
    finally:
        pebble.stop()


def test_a_ca_that_goes_away_during_an_order_delays_it_and_the_certificate_is_issued_when_it_returns(
        public_world: PublicWorld) -> None:
    home = public_world.home / "flaky"
    pebble = start_pebble(home, public_world.bind.address)
    try:
        own, acm = public_world.server.client("certsmith"), public_world.server.client("acm")
        own.create_issuer(Name="flaky", AcmeDirectoryUrl=pebble.directory_url, CaBundle=pebble.tls_cert_pem)
        pebble.stop()
        arns = [acm.request_certificate(DomainName=f"flaky{i}.example.test",
                                        Tags=[{"Key": "certsmith:issuer", "Value": "flaky"}])["CertificateArn"]
                for i in range(3)]
        for arn in arns:
            public_world.add_records(arn)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every name validated; the orders wait for the CA
            messages = [own.diagnose_validation(CertificateArn=arn).get("LastMessage", "") for arn in arns]
            if all("unavailable" in m for m in messages):
                break
            time.sleep(0.2)
        assert all("unavailable" in m for m in messages), messages
        assert {wait_status(acm, arn, seconds=0)["Status"] for arn in arns} == {"PENDING_VALIDATION"}
        pebble.start()  # a new Pebble: new roots, and it has forgotten the account (certsmith registers again)
        details = [wait_status(acm, arn, seconds=120) for arn in arns]
        assert [d["Status"] for d in details] == ["ISSUED"] * 3, [d.get("FailureReason") for d in details]
    finally:
        pebble.stop()
