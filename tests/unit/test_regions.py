"""Regions and partitions come from botocore's partition data; ARNs follow them."""

from __future__ import annotations

import pytest

from certsmith.domain.arns import AuthorityArn, CertificateArn
from certsmith.domain.errors import InvalidArnError
from certsmith.domain.regions import partition_for_region, partitions


@pytest.mark.parametrize(("region", "partition"), [
    ("us-east-1", "aws"), ("eu-west-1", "aws"), ("ap-southeast-1", "aws"), ("il-central-1", "aws"),
    ("cn-north-1", "aws-cn"), ("us-gov-east-1", "aws-us-gov"), ("eusc-de-east-1", "aws-eusc"),
    ("us-iso-east-1", "aws-iso"), ("us-isob-east-1", "aws-iso-b"), ("eu-isoe-west-1", "aws-iso-e"),
])
def test_partition_of_each_region(region: str, partition: str) -> None:
    assert partition_for_region(region) == partition
    arn = CertificateArn(region, "123456789012", "11111111-2222-4333-8444-555555555555")
    assert str(arn).startswith(f"arn:{partition}:acm:{region}:")
    assert CertificateArn.parse(str(arn)) == arn


@pytest.mark.parametrize("region", ["xx-nowhere-1", "mars-1", "", "US-EAST-1", "aws-global"])
def test_unknown_regions(region: str) -> None:
    assert partition_for_region(region) is None
    with pytest.raises(ValueError, match="is not a region name"):
        AuthorityArn(region, "123456789012", "11111111-2222-4333-8444-555555555555")
    with pytest.raises(InvalidArnError, match="is not a region name"):
        CertificateArn.parse(f"arn:aws:acm:{region}:123456789012:certificate/11111111-2222-4333-8444-555555555555")


def test_a_partition_that_does_not_match_the_region_is_refused() -> None:
    with pytest.raises(InvalidArnError, match="expected 'aws-us-gov'"):
        AuthorityArn.parse("arn:aws:acm-pca:us-gov-east-1:123456789012:"
                           "certificate-authority/11111111-2222-4333-8444-555555555555")


def test_every_partition_botocore_ships_is_known() -> None:
    names = partitions().names
    assert {"aws", "aws-cn", "aws-us-gov", "aws-eusc", "aws-iso"} <= set(names)
