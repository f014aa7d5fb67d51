"""The AWS deployment targets (aws-acm, aws-elbv2, aws-cloudfront) against a real moto server, one per module."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pytest

from certsmith.deploy.targets import DeployError, DeployTarget, Material, build_target, plugin
from certsmith.domain.errors import ValidationError
from certsmith.testing.moto import DUMMY_KEYS, Moto, start_moto
from certsmith.testing.server import free_port

from ..conftest import need_binary
from .conformance import TargetConformance, make_materials

MakeTarget = Callable[[Mapping[str, Any]], DeployTarget]
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    need_binary("moto_server")
    server = start_moto(tmp_path_factory.mktemp("moto"), env={"MOTO_ACM_VALIDATION_WAIT": "0"})
    yield server
    server.stop()


class Aws:
    """boto3 clients on the moto server, and the load balancer and placeholder certificate the tests attach to."""

    def __init__(self, moto: Moto) -> None:
        self.moto = moto
        kw: dict[str, Any] = {"endpoint_url": moto.endpoint, "region_name": REGION,
                              "aws_access_key_id": DUMMY_KEYS["access_key_id"],
                              "aws_secret_access_key": DUMMY_KEYS["secret_access_key"]}
        self.acm, self.ec2, self.elb, self.cf, self.iam = (boto3.client(name, **kw)
                                                           for name in ("acm", "ec2", "elbv2", "cloudfront", "iam"))
        placeholder = make_materials(1, names=("placeholder.example.test",))[0]
        self.placeholder = self.acm.import_certificate(Certificate=placeholder.certificate_pem.encode(),
                                                       PrivateKey=placeholder.private_key_pem.encode())["CertificateArn"]
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")
                   ["Subnet"]["SubnetId"] for i, zone in ((1, "a"), (2, "b"))]
        self.lb = self.elb.create_load_balancer(Name="web", Subnets=subnets, Type="application")["LoadBalancers"][0][
            "LoadBalancerArn"]
        self.tg = self.elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
            "TargetGroupArn"]
        self._port = 8000

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"region": REGION, "endpoint_url": self.moto.endpoint, **DUMMY_KEYS, **extra}

    def listener(self, protocol: str = "HTTPS") -> str:
        self._port += 1
        certificates = {"Certificates": [{"CertificateArn": self.placeholder}]} if protocol == "HTTPS" else {}
        return str(self.elb.create_listener(LoadBalancerArn=self.lb, Protocol=protocol, Port=self._port, **certificates,
                                            DefaultActions=[{"Type": "forward", "TargetGroupArn": self.tg}])
                   ["Listeners"][0]["ListenerArn"])

    def listener_certificates(self, listener: str) -> dict[str, bool]:
        return {item["CertificateArn"]: item["IsDefault"]
                for item in self.elb.describe_listener_certificates(ListenerArn=listener)["Certificates"]}

    def distribution(self) -> str:
        config = {"CallerReference": uuid.uuid4().hex, "Comment": "", "Enabled": True,
                  "Aliases": {"Quantity": 1, "Items": ["www.example.test"]},
                  "Origins": {"Quantity": 1, "Items": [{"Id": "o1", "DomainName": "origin.example.test",
                                                        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                               "OriginProtocolPolicy": "https-only"}}]},
                  "DefaultCacheBehavior": {"TargetOriginId": "o1", "ViewerProtocolPolicy": "redirect-to-https",
                                           "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
                  "ViewerCertificate": {"CloudFrontDefaultCertificate": True}}
        return str(self.cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"])

    def viewer(self, distribution: str) -> dict[str, Any]:
        return dict(self.cf.get_distribution_config(Id=distribution)["DistributionConfig"]["ViewerCertificate"])

    def serial(self, arn: str) -> str:
        from certsmith.deploy.targets.aws_common import serial_of_pem

        return serial_of_pem(self.acm.get_certificate(CertificateArn=arn)["Certificate"])

    def exists(self, arn: str) -> bool:
        return any(item["CertificateArn"] == arn for item in self.acm.list_certificates()["CertificateSummaryList"])


@pytest.fixture(scope="module")
def aws(moto: Moto) -> Aws:
    return Aws(moto)


@pytest.fixture(scope="module")
def versions() -> list[Material]:
    return make_materials()


@pytest.fixture
def materials(versions: list[Material]) -> list[Material]:
    return versions


@pytest.fixture(scope="module")
def default_listener(aws: Aws) -> str:
    return aws.listener()


@pytest.fixture(scope="module")
def sni_listener(aws: Aws) -> str:
    return aws.listener()


@pytest.fixture(scope="module")
def distribution(aws: Aws) -> str:
    return aws.distribution()


def unreachable(**extra: Any) -> dict[str, Any]:
    return {"region": REGION, "endpoint_url": f"http://127.0.0.1:{free_port()}", "timeout": 2, **DUMMY_KEYS, **extra}


# -- conformance --------------------------------------------------------------------------------------------------------


class AwsConformance(TargetConformance):
    """The suite, with the versions the module's other tests use too."""

    @pytest.fixture
    def materials(self, versions: list[Material]) -> list[Material]:
        return versions


class TestAcmConformance(AwsConformance):
    @pytest.fixture
    def make_target(self, aws: Aws) -> MakeTarget:
        return lambda state: build_target("aws-acm", aws.options(), state)

    @pytest.fixture
    def broken_target(self) -> DeployTarget:
        return build_target("aws-acm", unreachable())

    def test_a_new_version_replaces_the_old_and_undo_puts_it_back(  # type: ignore[override]
            self, make_target: MakeTarget, materials: list[Material], aws: Aws) -> None:
        """ACM never gives a key back: the undo of a re-import leaves the new version (a rollback redeploys the old one);
        the undo of a first import deletes it."""
        first = make_target({}).install(materials[0])
        arn = first.state["ImportedArn"]
        second = make_target(dict(first.state)).install(materials[1])
        assert second.state["ImportedArn"] == arn and make_target(second.state).held().serial == materials[1].serial
        second.undo()
        assert aws.serial(arn) == materials[1].serial
        first.undo()
        assert not aws.exists(arn) and make_target(first.state).held().serial is None


class TestElbv2DefaultConformance(AwsConformance):
    @pytest.fixture
    def make_target(self, aws: Aws, default_listener: str) -> MakeTarget:
        return lambda state: build_target("aws-elbv2", aws.options(listener_arn=default_listener), state)

    @pytest.fixture
    def broken_target(self, default_listener: str) -> DeployTarget:
        return build_target("aws-elbv2", unreachable(listener_arn=default_listener))


class TestElbv2SniConformance(AwsConformance):
    @pytest.fixture
    def make_target(self, aws: Aws, sni_listener: str) -> MakeTarget:
        return lambda state: build_target("aws-elbv2", aws.options(listener_arn=sni_listener, sni="true"), state)

    @pytest.fixture
    def broken_target(self, sni_listener: str) -> DeployTarget:
        return build_target("aws-elbv2", unreachable(listener_arn=sni_listener, sni="true"))


class TestCloudFrontConformance(AwsConformance):
    @pytest.fixture
    def make_target(self, aws: Aws, distribution: str) -> MakeTarget:
        return lambda state: build_target("aws-cloudfront", aws.options(distribution_id=distribution), state)

    @pytest.fixture
    def broken_target(self, distribution: str) -> DeployTarget:
        return build_target("aws-cloudfront", unreachable(distribution_id=distribution))


# -- aws-acm ------------------------------------------------------------------------------------------------------------


def test_acm_a_new_version_is_reimported_under_the_same_arn(aws: Aws, materials: list[Material]) -> None:
    first = build_target("aws-acm", aws.options()).install(materials[0])
    arn = first.state["ImportedArn"]
    assert aws.serial(arn) == materials[0].serial
    chain = aws.acm.get_certificate(CertificateArn=arn)["CertificateChain"]
    assert materials[0].chain_pem.strip() in chain
    again = build_target("aws-acm", aws.options(), first.state).install(materials[1])
    assert dict(again.state) == {"ImportedArn": arn}
    assert aws.serial(arn) == materials[1].serial


def test_acm_starts_from_a_given_arn_and_refuses_one_that_does_not_exist(aws: Aws, materials: list[Material]) -> None:
    arn = aws.acm.import_certificate(Certificate=materials[0].certificate_pem.encode(),
                                     PrivateKey=materials[0].private_key_pem.encode())["CertificateArn"]
    target = build_target("aws-acm", aws.options(certificate_arn=arn))
    target.check()
    assert target.held().serial == materials[0].serial
    installed = target.install(materials[1])
    assert installed.state["ImportedArn"] == arn and aws.serial(arn) == materials[1].serial
    aws.acm.delete_certificate(CertificateArn=arn)
    gone = build_target("aws-acm", aws.options(certificate_arn=arn))
    for step in (gone.check, lambda: gone.install(materials[2])):
        with pytest.raises(DeployError) as caught:
            step()
        assert caught.value.reason == "missing" and arn in str(caught.value)


def test_acm_an_imported_certificate_that_is_gone_is_imported_anew(aws: Aws, materials: list[Material]) -> None:
    first = build_target("aws-acm", aws.options()).install(materials[0])
    aws.acm.delete_certificate(CertificateArn=first.state["ImportedArn"])
    again = build_target("aws-acm", aws.options(), first.state).install(materials[1])
    assert again.state["ImportedArn"] != first.state["ImportedArn"]
    assert aws.serial(again.state["ImportedArn"]) == materials[1].serial


# -- aws-elbv2 ----------------------------------------------------------------------------------------------------------


def test_elbv2_default_certificate_switches_between_two_imports_and_remove_puts_the_original_back(
        aws: Aws, materials: list[Material]) -> None:
    listener = aws.listener()
    make = lambda state: build_target("aws-elbv2", aws.options(listener_arn=listener), state)  # noqa: E731
    first = make({}).install(materials[0])
    (one,) = first.state["ImportedArns"]
    assert aws.listener_certificates(listener) == {one: True}
    assert aws.elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["Certificates"] == [{"CertificateArn": one}]
    assert first.state["Replaced"] == aws.placeholder and aws.serial(one) == materials[0].serial

    second = make(first.state).install(materials[1])
    two, previous = second.state["ImportedArns"]
    assert previous == one and two != one and second.state["Replaced"] == aws.placeholder
    assert aws.listener_certificates(listener) == {two: True}
    assert aws.serial(two) == materials[1].serial and aws.serial(one) == materials[0].serial
    second.undo()
    assert aws.listener_certificates(listener) == {one: True}

    third = make(second.state).install(materials[2])  # the listener is on slot one again: slot two is the spare
    assert third.state["ImportedArns"] == [two, one] and aws.listener_certificates(listener) == {two: True}
    assert aws.serial(two) == materials[2].serial

    make(third.state).remove()
    assert aws.listener_certificates(listener) == {aws.placeholder: True}
    assert not aws.exists(one) and not aws.exists(two)


def test_elbv2_sni_certificate_is_added_and_the_previous_one_removed(aws: Aws, materials: list[Material]) -> None:
    listener = aws.listener()
    make = lambda state: build_target("aws-elbv2", aws.options(listener_arn=listener, sni=True), state)  # noqa: E731
    first = make({}).install(materials[0])
    (one,) = first.state["ImportedArns"]
    assert aws.listener_certificates(listener) == {aws.placeholder: True, one: False}
    second = make(first.state).install(materials[1])
    two = second.state["ImportedArns"][0]
    assert aws.listener_certificates(listener) == {aws.placeholder: True, two: False}
    assert make(second.state).held().serial == materials[1].serial
    second.undo()
    assert aws.listener_certificates(listener) == {aws.placeholder: True, one: False}
    make(second.state).remove()
    assert aws.listener_certificates(listener) == {aws.placeholder: True}


def test_elbv2_refuses_a_listener_without_certificates_and_one_that_does_not_exist(
        aws: Aws, materials: list[Material]) -> None:
    plain = build_target("aws-elbv2", aws.options(listener_arn=aws.listener("HTTP")))
    with pytest.raises(DeployError) as caught:
        plain.install(materials[0])
    assert caught.value.reason == "config" and "HTTP" in caught.value.problem
    listener = aws.listener()
    aws.elb.delete_listener(ListenerArn=listener)
    with pytest.raises(DeployError) as caught:
        build_target("aws-elbv2", aws.options(listener_arn=listener)).check()
    assert caught.value.reason == "missing" and "ListenerNotFound" in caught.value.problem


def test_elbv2_listener_must_be_in_the_region() -> None:
    arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
    with pytest.raises(ValidationError) as caught:
        plugin("aws-elbv2").parse({"region": "us-east-1", "listener_arn": arn})
    assert caught.value.field == "listener_arn" and "eu-west-1" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        plugin("aws-elbv2").parse({"region": "us-east-1", "listener_arn": "listener-1"})
    assert caught.value.field == "listener_arn"


# -- aws-cloudfront -----------------------------------------------------------------------------------------------------


def test_cloudfront_distribution_gets_the_imported_certificate_and_remove_puts_the_default_back(
        aws: Aws, materials: list[Material]) -> None:
    distribution = aws.distribution()
    make = lambda state: build_target("aws-cloudfront", aws.options(distribution_id=distribution), state)  # noqa: E731
    first = make({}).install(materials[0])
    (one,) = first.state["ImportedArns"]
    viewer = aws.viewer(distribution)
    assert viewer["ACMCertificateArn"] == one and viewer["SSLSupportMethod"] == "sni-only"
    assert viewer["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert first.state["Replaced"]["CloudFrontDefaultCertificate"] is True
    json.dumps(dict(first.state))  # the runner keeps the state as JSON

    aws.cf.update_distribution(Id=distribution, IfMatch="*", DistributionConfig={
        **aws.cf.get_distribution_config(Id=distribution)["DistributionConfig"],
        "ViewerCertificate": {**viewer, "MinimumProtocolVersion": "TLSv1.2_2019"}})
    second = make(first.state).install(materials[1])
    two = second.state["ImportedArns"][0]
    viewer = aws.viewer(distribution)
    assert two != one and viewer["ACMCertificateArn"] == two and viewer["MinimumProtocolVersion"] == "TLSv1.2_2019"
    assert make(second.state).held().serial == materials[1].serial
    second.undo()
    assert aws.viewer(distribution)["ACMCertificateArn"] == one

    make(second.state).remove()
    assert not aws.viewer(distribution).get("ACMCertificateArn") and not aws.exists(one) and not aws.exists(two)


def test_cloudfront_takes_certificates_from_us_east_1_only() -> None:
    with pytest.raises(ValidationError) as caught:
        plugin("aws-cloudfront").parse({"distribution_id": "E2QWRUHAPOMQZL", "region": "eu-west-1"})
    assert caught.value.field == "region"
    assert str(caught.value) == "CloudFront uses certificates in ACM's us-east-1 only; region is eu-west-1"
    assert plugin("aws-cloudfront").parse({"distribution_id": "e2qwruhapomqzl"}).region == "us-east-1"


def test_cloudfront_distribution_that_does_not_exist(aws: Aws) -> None:
    with pytest.raises(DeployError) as caught:
        build_target("aws-cloudfront", aws.options(distribution_id="ENOSUCHDIST")).check()
    assert caught.value.reason == "missing" and "NoSuchDistribution" in caught.value.problem


# -- every kind ---------------------------------------------------------------------------------------------------------

KINDS = {"aws-acm": {}, "aws-elbv2": {"listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/"
                                      "web/50dc6c495c0c9188/f2f7dc8efc522ab2"},
         "aws-cloudfront": {"distribution_id": "E2QWRUHAPOMQZL"}}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_unreachable_endpoint_is_unreachable(kind: str, materials: list[Material]) -> None:
    state = {"ImportedArn": "arn:aws:acm:us-east-1:123456789012:certificate/0d0e0f00-0000-4000-8000-000000000002"}
    target = build_target(kind, unreachable(**KINDS[kind]), state if kind == "aws-acm" else {})
    for step in (target.check, lambda: target.install(materials[0]), target.held):
        with pytest.raises(DeployError) as caught:
            step()
        assert caught.value.reason == "unreachable" and "127.0.0.1" in caught.value.problem
        assert materials[0].private_key_pem.splitlines()[1] not in str(caught.value)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_secrets_are_secret_options(kind: str) -> None:
    raw = {**unreachable(**KINDS[kind]), "session_token": "token-value"}
    parsed = plugin(kind).parse(raw)
    assert plugin(kind).secret_options(parsed) == {"secret_access_key": DUMMY_KEYS["secret_access_key"],
                                                   "session_token": "token-value"}
    public = plugin(kind).public_options(parsed)
    assert "secret_access_key" not in public and "session_token" not in public
    assert DUMMY_KEYS["secret_access_key"] not in repr(parsed)
    with pytest.raises(ValidationError) as caught:
        plugin(kind).parse({**KINDS[kind], "region": "us-east-1", "access_key_id": "AKID"})
    assert caught.value.field == "secret_access_key"


@pytest.fixture
def limited_key(aws: Aws) -> Iterator[tuple[dict[str, str], str]]:
    """An IAM key that may use ACM and read listeners but not change them, and a listener; moto checks every request."""
    listener = aws.listener()
    user = f"deployer-{uuid.uuid4().hex[:8]}"
    aws.iam.create_user(UserName=user)
    aws.iam.put_user_policy(UserName=user, PolicyName="deploy", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["acm:*", "elasticloadbalancing:Describe*"],
                                                "Resource": "*"}]}))
    key = aws.iam.create_access_key(UserName=user)["AccessKey"]
    aws.moto.require_auth()
    try:
        yield {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}, listener
    finally:
        aws.moto.allow_all()


def test_credentials_refused_and_a_denied_attach_leaves_nothing_behind(
        aws: Aws, materials: list[Material], limited_key: tuple[dict[str, str], str]) -> None:
    keys, listener = limited_key
    wrong = build_target("aws-acm", {**aws.options(), **keys, "secret_access_key": "not-the-secret"})
    with pytest.raises(DeployError) as caught:
        wrong.check()
    assert caught.value.reason == "credentials" and "not-the-secret" not in str(caught.value)
    assert "SignatureDoesNotMatch" in caught.value.problem

    keyed = {**aws.options(), **keys}
    build_target("aws-acm", keyed).check()
    acm = boto3.client("acm", endpoint_url=aws.moto.endpoint, region_name=REGION,
                       aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"])
    before = {item["CertificateArn"] for item in acm.list_certificates()["CertificateSummaryList"]}
    target = build_target("aws-elbv2", {**keyed, "listener_arn": listener})
    with pytest.raises(DeployError) as caught:
        target.install(materials[0])
    assert caught.value.reason == "credentials" and "elasticloadbalancing:ModifyListener" in caught.value.problem
    after = {item["CertificateArn"] for item in acm.list_certificates()["CertificateSummaryList"]}
    assert after == before, "the import made for a failed attach is deleted again"
