"""The text certsmith writes itself for /metrics reads back through Prometheus' own parser, value for value."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from certsmith.metrics.certificates import DAYS_TO_EXPIRY, NOT_AFTER, lines
from certsmith.metrics.collector import histogram
from certsmith.metrics.endpoints import ENDPOINT_LABELS
from certsmith.metrics.exposition import family_header, gauge_family, label_value, labels, number
from certsmith.metrics.risk import AT_RISK, at_risk_lines
from certsmith.metrics.scrape import bearer_allows

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0b8f4b63-1c1e-4c1e-9d2b-6d2f0b3f6a11"
CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/5e0f1a7c-7d7a-4f2e-8a8e-2c1b0d9e8f70"
AWKWARD = ['plain', 'a "quoted" name', "back\\slash", "two\nlines", 'all \\ " \n of them', "", "ünïcode ☃"]


def parsed(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {family.name: [(sample.labels, sample.value) for sample in family.samples]
            for family in text_string_to_metric_families(text)}


@pytest.mark.parametrize("value", AWKWARD)
def test_a_label_value_reads_back_unchanged(value: str) -> None:
    text = gauge_family("certsmith_test", "help", ["name"], [((value,), 1.0)])
    assert parsed(text) == {"certsmith_test": [({"name": value}, 1.0)]}


def test_escaping_follows_the_text_format() -> None:
    assert label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert label_value("arn:aws:acm:x") == "arn:aws:acm:x"
    assert labels([("a", "1"), ("b", '"')]) == '{a="1",b="\\""}' and labels([]) == ""
    assert family_header("x", "line\nand \\", "gauge") == "# HELP x line\\nand \\\\\n# TYPE x gauge\n"


@pytest.mark.parametrize(("value", "text"), [(3, "3"), (0.25, "0.25"), (1700000000, "1700000000"), (-1.5, "-1.5"),
                                             (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")])
def test_numbers(value: float, text: str) -> None:
    assert number(value) == text


def test_per_certificate_lines_are_two_families_with_every_label() -> None:
    stamp = 1_900_000_000.0
    rows = [(ARN, "www.example.test", "PRIVATE", "ISSUED", CA, 1_900_000_000 + 86400 * 30, None),
            (ARN + "2", 'odd "name"\\', "IMPORTED", "EXPIRED", "imported", 1_900_000_000 - 43200, None)]
    families = parsed(lines(rows, stamp))
    assert list(families) == [NOT_AFTER, DAYS_TO_EXPIRY]
    first = {"arn": ARN, "domain": "www.example.test", "type": "PRIVATE", "status": "ISSUED", "issuer": CA}
    second = {"arn": ARN + "2", "domain": 'odd "name"\\', "type": "IMPORTED", "status": "EXPIRED", "issuer": "imported"}
    assert families[NOT_AFTER] == [(first, 1_900_000_000 + 86400 * 30), (second, 1_900_000_000 - 43200)]
    assert families[DAYS_TO_EXPIRY] == [(first, 30.0), (second, -0.5)]


def test_no_certificates_still_name_both_families() -> None:
    text = lines([], 0.0)
    assert [f.name for f in text_string_to_metric_families(text)] == [NOT_AFTER, DAYS_TO_EXPIRY]


def test_only_certificates_at_risk_have_a_renewal_at_risk_sample() -> None:
    rows = [(ARN, "healthy.example.test", "PRIVATE", "ISSUED", CA, 1_900_000_000, None),
            (ARN + "2", 'odd "name"\\', "IMPORTED", "ISSUED", "imported", 1_900_000_000, "imported"),
            (ARN + "3", "late.example.test", "AMAZON_ISSUED", "ISSUED", "pebble", 1_900_000_000, "overdue")]
    assert parsed(at_risk_lines(rows)) == {AT_RISK: [
        ({"arn": ARN + "2", "domain": 'odd "name"\\', "type": "IMPORTED", "reason": "imported"}, 1.0),
        ({"arn": ARN + "3", "domain": "late.example.test", "type": "AMAZON_ISSUED", "reason": "overdue"}, 1.0)]}
    assert parsed(at_risk_lines([])) == {AT_RISK: []}  # the family is named even when nothing is at risk


def test_endpoint_series_labels() -> None:
    text = gauge_family("certsmith_endpoint_up", "up", ENDPOINT_LABELS, [(("web.test", "443", "web.test", ""), 1)])
    assert parsed(text)["certsmith_endpoint_up"] == [
        ({"host": "web.test", "port": "443", "server_name": "web.test", "arn": ""}, 1.0)]


def test_counts_per_bucket_become_cumulative_buckets_ending_in_the_count() -> None:
    buckets, total = histogram((0.1, 1.0), [2, 3, 2, 12.5])  # 2 up to 0.1, 3 more up to 1.0, 2 above: sum 12.5
    assert buckets == [("0.1", 2.0), ("1.0", 5.0), ("+Inf", 7.0)] and total == 12.5
    assert histogram((1.0,), [0, 0, 0]) == ([("1.0", 0.0), ("+Inf", 0.0)], 0.0)


@pytest.mark.parametrize(("token", "header", "allowed"), [
    (None, None, True), (None, "Bearer anything", True),
    ("s3cret", None, False), ("s3cret", "Bearer s3cret", True), ("s3cret", "bearer  s3cret ", True),
    ("s3cret", "Bearer s3cre", False), ("s3cret", "Basic s3cret", False), ("s3cret", "s3cret", False),
    ("s3cret", "Bearer ", False),
])
def test_the_bearer_token(token: str | None, header: str | None, allowed: bool) -> None:
    assert bearer_allows(token, header) is allowed
