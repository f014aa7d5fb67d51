"""EventBridge event patterns: rows of (pattern, event, expected) taken from EventBridge's documentation, ACM-shaped
events as certsmith emits them, and the patterns EventBridge refuses with the message certsmith gives."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certsmith.domain import events
from certsmith.domain.event_patterns import MAX_PATTERN_LENGTH, EventPattern, PatternError, RuleMatcher, compile_pattern
from certsmith.domain.events import CertificateFacts

# --- Example events from the EventBridge user guide ------------------------------------------------------------------

EC2 = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2", "account": "111122223333", "time": "2017-12-22T18:43:48Z", "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
}
AUTOSCALING = {
    "version": "0", "id": "3e3c153a-8339-4e30-8c35-687ebef853fe", "detail-type": "EC2 Instance Launch Successful",
    "source": "aws.autoscaling", "account": "123456789012", "time": "2015-11-11T21:31:47Z", "region": "us-east-1",
    "resources": [], "detail": {"eventVersion": "", "responseElements": None},
}
MACIE = {
    "version": "0", "id": "3e355723-fca9-4de3-9fd7-154c289d6b59", "detail-type": "Macie Alert", "source": "aws.macie",
    "account": "123456789012", "time": "2017-04-24T22:28:49Z", "region": "us-east-1",
    "resources": ["arn:aws:macie:us-east-1:123456789012:trigger/trigger_id/alert/alert_id",
                  "arn:aws:macie:us-east-1:123456789012:trigger/trigger_id"],
    "detail": {"notification-type": "ALERT_CREATED", "name": "Scanning bucket policies", "tags": ["Custom_Alert", "Insider"],
               "risk-score": 80, "trigger": {"alert-type": "basic", "risk": 8}},
}
# the sample event of the content-filtering examples (as in EventBridge's Event Ruler README)
FILTERING = {
    "version": "0", "id": "ddddd4-aaaa-7777-4444-345dd43cc333", "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2", "account": "012345679012", "time": "2017-10-02T16:24:49Z", "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {"c-count": 5, "d-count": 3, "x-limit": 301.8, "source-ip": "10.0.0.33",
               "instance-id": "i-000000aaaaaa00000", "state": "running"},
}
EMPLOYEES = {"detail": {"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"},
                                      {"firstName": "Peter", "lastName": "Jones"}]}}


def with_detail(base: dict[str, Any], **detail: Any) -> dict[str, Any]:
    """``base`` with these detail fields set (a value of ... removes the field)."""
    merged = {**base["detail"], **detail}
    return {**base, "detail": {key: value for key, value in merged.items() if value is not ...}}


def detail(**fields: Any) -> dict[str, Any]:
    return {"detail": fields}


# --- ACM-shaped events, built the way certsmith builds them ----------------------------------------------------------

ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-4333-8444-555555555555"
OTHER_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/99999999-2222-4333-8444-555555555555"
ISSUED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
FACTS = CertificateFacts(
    arn=ARN, certificate_type="AMAZON_ISSUED", common_name="api.example.com", names=("api.example.com",),
    not_before=ISSUED - timedelta(hours=1), not_after=ISSUED + timedelta(days=395), created_at=ISSUED,
    key_pair_origin="AWS_MANAGED", validation_method="DNS", in_use=True, exported=False,
)
IMPORTED = dataclasses.replace(FACTS, certificate_type="IMPORTED", validation_method=None, common_name="legacy.example.org",
                               names=("legacy.example.org",), key_pair_origin="CUSTOMER_PROVIDED", in_use=False)


def acm(event: events.Event) -> dict[str, Any]:
    return events.envelope(event, event_id="8f1d0d56-5d4b-4f0e-9d2f-7a1c3b0e4d11", account="123456789012",
                           region="eu-west-1")


def days_left(days: int) -> datetime:
    return ISSUED + timedelta(days=395 - days, hours=1)


APPROACHING_14 = acm(events.approaching(FACTS, days_left(14)))
APPROACHING_45 = acm(events.approaching(FACTS, days_left(45)))
AVAILABLE = acm(events.available(FACTS, "RENEWAL", ISSUED))
IMPORTED_AVAILABLE = acm(events.available(IMPORTED, "IMPORT", ISSUED))
EXPIRED = acm(events.expired(FACTS, ISSUED + timedelta(days=396)))
ACTION_REQUIRED = acm(events.action_required(FACTS, "PENDING_DOMAIN_VALIDATION", days_left(20)))
DRIFT = {"version": "0", "id": "x", "detail-type": "Certsmith Endpoint Drift", "source": "certsmith",
         "account": "123456789012", "time": "2026-03-01T12:00:00Z", "region": "eu-west-1", "resources": [ARN],
         "detail": {"Host": "api.example.com", "Port": 443, "ServedSerial": "0a:1b"}}
APPROACHING_PATTERN = {"source": ["aws.acm"], "detail-type": ["ACM Certificate Approaching Expiration"],
                       "detail": {"DaysToExpiry": [{"numeric": ["<=", 30]}]}}

ROWS: list[tuple[str | dict[str, Any], dict[str, Any], bool]] = [
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
    # (Creating Amazon EventBridge event patterns: fields AND, nested objects, other fields ignored, null)
    ({"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}},
     EC2, True),
    ({"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}},
     with_detail(EC2, state="running"), False),
    ({"source": ["aws.ec2"], "detail": {"state": ["terminated"], "instance-id": ["i-0"]}}, EC2, False),
    ({"source": ["aws.macie"], "detail-type": ["Macie Alert"], "detail": {"risk-score": [80], "trigger": {"risk": [8]}}},
     MACIE, True),
    ({"detail": {"risk-score": [80], "trigger": {"risk": [8]}}}, with_detail(MACIE, trigger={"risk": 9}), False),
    ({"detail": {"trigger": {"risk": [8]}}}, with_detail(MACIE, trigger=...), False),
    ({"detail": {"risk-score": [80]}}, with_detail(MACIE, **{"risk-score": 8.0e1}), True),  # numbers compare as numbers
    ({"detail": {"risk-score": [80]}}, with_detail(MACIE, **{"risk-score": "80"}), False),
    ({"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance Launch Successful"],
      "detail": {"responseElements": [None]}}, AUTOSCALING, True),
    ({"detail": {"missing": ["x"]}}, EC2, False),
    ({"missing": {"deeper": ["x"]}}, EC2, False),
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern.html (Event pattern syntax:
    # the values of a field's array OR)
    ({"source": ["aws.ec2", "aws.fargate"]}, EC2, True),
    ({"source": ["aws.ec2", "aws.fargate"]}, {**EC2, "source": "aws.fargate"}, True),
    ({"source": ["aws.ec2", "aws.fargate"]}, {**EC2, "source": "aws.s3"}, False),
    ({"source": ["AWS.EC2"]}, EC2, False),  # exact, character by character
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-null-values.html
    ({"detail": {"eventVersion": [""]}}, AUTOSCALING, True),
    ({"detail": {"responseElements": [None]}}, AUTOSCALING, True),
    ({"detail": {"eventVersion": [None]}}, AUTOSCALING, False),  # null and "" are not interchangeable
    ({"detail": {"responseElements": [""]}}, AUTOSCALING, False),
    ({"detail": {"absent": [None]}}, AUTOSCALING, False),
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html (an event array matches
    # when it shares a value with the pattern's array)
    ({"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                    "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
                    "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]},
     {"resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:"
                    "autoScalingGroupName/ASGTerminate", "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}, True),
    ({"resources": ["arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]},
     {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}, False),
    ({"detail": {"tags": ["Insider"]}}, MACIE, True),
    ({"resources": [{"prefix": "arn:aws:macie:"}]}, MACIE, True),
    ({"resources": [{"exists": True}]}, AUTOSCALING, False),  # an empty array offers no value
    ({"resources": [{"exists": False}]}, AUTOSCALING, True),
    # https://github.com/aws/event-ruler#json-array-matching (the engine behind EventBridge): objects in an array are
    # matched one by one, and two fields must come from the same element
    ({"detail": {"employees": {"firstName": ["Anna"]}}}, EMPLOYEES, True),
    ({"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}}, EMPLOYEES, True),
    ({"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}}, EMPLOYEES, False),
    ({"detail": {"employees": {"firstName": ["Anna"]}}}, detail(employees=[[{"firstName": "Anna"}], []]), True),
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
    # Prefix matching
    ({"time": [{"prefix": "2017-10-02"}]}, FILTERING, True),
    ({"time": [{"prefix": "2017-10-03"}]}, FILTERING, False),
    ({"detail": {"c-count": [{"prefix": "5"}]}}, FILTERING, False),  # prefixes match strings only
    ({"detail": {"state": [{"prefix": ""}]}}, FILTERING, True),
    # Anything-but matching
    ({"detail": {"state": [{"anything-but": "initializing"}]}}, FILTERING, True),
    ({"detail": {"state": [{"anything-but": "initializing"}]}}, with_detail(FILTERING, state="initializing"), False),
    ({"detail": {"state": [{"anything-but": "initializing"}]}}, with_detail(FILTERING, state=...), False),
    ({"detail": {"x-limit": [{"anything-but": 123}]}}, FILTERING, True),
    ({"detail": {"x-limit": [{"anything-but": 123}]}}, with_detail(FILTERING, **{"x-limit": 123.0}), False),
    ({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, FILTERING, True),
    ({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, with_detail(FILTERING, state="stopped"), False),
    ({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}, FILTERING, True),
    ({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}, with_detail(FILTERING, **{"x-limit": 200}), False),
    ({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, FILTERING, True),
    ({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, with_detail(FILTERING, state="initializing"), False),
    ({"detail": {"state": [{"anything-but": "running"}]}}, with_detail(FILTERING, state=["running", "stopped"]), True),
    # Numeric matching
    ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
                 "x-limit": [{"numeric": ["=", 3.018e2]}]}}, FILTERING, True),
    ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, with_detail(FILTERING, **{"c-count": 0}), False),
    ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, with_detail(FILTERING, **{"c-count": 5.0}), True),
    ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, with_detail(FILTERING, **{"c-count": 5.5}), False),
    ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, with_detail(FILTERING, **{"c-count": "5"}), False),
    ({"detail": {"c-count": [{"numeric": [">=", 5]}]}}, FILTERING, True),
    ({"detail": {"c-count": [{"numeric": [">", 5]}]}}, FILTERING, False),
    ({"detail": {"c-count": [{"numeric": ["<", 5]}]}}, FILTERING, False),
    ({"detail": {"c-count": [{"numeric": [">", 0]}]}}, with_detail(FILTERING, **{"c-count": True}), False),
    ({"detail": {"c-count": [{"numeric": [">", 0]}]}}, with_detail(FILTERING, **{"c-count": [-1, 3]}), True),
    # IP address matching (IPv4 and IPv6)
    ({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, FILTERING, True),
    ({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, with_detail(FILTERING, **{"source-ip": "10.0.1.33"}), False),
    ({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, with_detail(FILTERING, **{"source-ip": "not an address"}), False),
    ({"detail": {"source-ip": [{"cidr": "2001:db8::/32"}]}}, with_detail(FILTERING, **{"source-ip": "2001:db8:1::7"}), True),
    ({"detail": {"source-ip": [{"cidr": "2001:db8::/32"}]}}, FILTERING, False),
    # Exists matching: only leaves exist
    ({"detail": {"state": [{"exists": True}]}}, FILTERING, True),
    ({"detail": {"state": [{"exists": True}]}}, detail(**{"c-count": {"c1": 100}}), False),
    ({"detail": {"c-count": [{"exists": False}]}}, EC2, True),
    ({"detail": {"c-count": [{"exists": False}]}}, detail(state="running", **{"c-count": {"c1": 100}}), True),
    ({"detail": {"c-count": [{"exists": False}]}}, FILTERING, False),
    ({"detail": {"responseElements": [{"exists": True}]}}, AUTOSCALING, True),  # null is a value
    ({"detail": {"c-count": [{"exists": False}, 5]}}, FILTERING, True),
    # Complex example with multiple matching
    ({"time": [{"prefix": "2017-10-02"}], "detail": {"state": [{"anything-but": "initializing"}],
      "c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
      "x-limit": [{"anything-but": [100, 200, 300]}]}}, FILTERING, True),
    ({"time": [{"prefix": "2017-10-02"}], "detail": {"state": [{"anything-but": "initializing"}],
      "c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
      "x-limit": [{"anything-but": [100, 200, 300]}]}}, with_detail(FILTERING, **{"d-count": 10}), False),
    # a key given twice: the last one counts
    ('{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "us-east"}]}}',
     detail(location="eu-west"), True),
    ('{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "us-east"}]}}',
     detail(location="us-east"), False),
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
    # (Comparison operators for use in event patterns)
    ({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Monday"}, True),
    ({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Sunday"}, False),
    ({"Region": [{"anything-but": {"prefix": "us-"}}]}, {"Region": "eu-west-1"}, True),
    ({"Region": [{"anything-but": {"prefix": "us-"}}]}, {"Region": "us-east-1"}, False),
    ({"FileName": [{"anything-but": {"suffix": ".png"}}]}, {"FileName": "cat.jpg"}, True),
    ({"FileName": [{"anything-but": {"suffix": ".png"}}]}, {"FileName": "cat.png"}, False),
    ({"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}, {"state": "INITIALIZING"}, False),
    ({"state": [{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}]}, {"state": "Stopped"}, False),
    ({"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}, {"state": "running"}, True),
    ({"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"FilePath": "/usr/lib/libc.so"}, False),
    ({"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"FilePath": "/usr/bin/env"}, True),
    ({"Region": [{"prefix": "us-"}]}, {"Region": "us-west-2"}, True),
    ({"service": [{"prefix": {"equals-ignore-case": "eventb"}}]}, {"service": "EventBridge"}, True),
    ({"service": [{"prefix": {"equals-ignore-case": "eventb"}}]}, {"service": "sqs"}, False),
    ({"LastName": [""]}, {"LastName": ""}, True),
    ({"LastName": [""]}, {"LastName": "Doe"}, False),
    ({"Name": ["Alice"]}, {"Name": "Alice"}, True),
    ({"Name": ["Alice"]}, {"Name": "alice"}, False),
    ({"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "ALICE"}, True),
    ({"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "Alicia"}, False),
    ({"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.png"}, True),
    ({"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.PNG"}, False),
    ({"service": [{"suffix": {"equals-ignore-case": "tbridge"}}]}, {"service": "EVENTBRIDGE"}, True),
    ({"service": [{"suffix": {"equals-ignore-case": "tbridge"}}]}, {"service": "EVENTBUS"}, False),
    ({"ProductName": [{"exists": True}]}, {"ProductName": "Widget"}, True),
    ({"ProductName": [{"exists": False}]}, {"ProductName": "Widget"}, False),
    ({"Weight": [{"anything-but": [0, 1]}]}, {"Weight": 2}, True),
    ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20}, True),
    ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 10}, False),
    ({"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
     {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}, True),
    ({"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
     {"EventBusArn": "arn:aws:events:eu-west-1:123456789012:event-bus/default"}, False),
    ({"FileName": [{"wildcard": "dir/*.png"}]}, {"FileName": "dir/sub/cat.png"}, True),  # * crosses slashes
    ({"FileName": [{"wildcard": "*a*a*b"}]}, {"FileName": "xaab"}, True),
    ({"FileName": [{"wildcard": "*a*a*b"}]}, {"FileName": "xab"}, False),
    ({"Title": [{"wildcard": "5\\* rating"}]}, {"Title": "5* rating"}, True),  # \* is an asterisk
    ({"Title": [{"wildcard": "5\\* rating"}]}, {"Title": "5 star rating"}, False),
    ({"Path": [{"wildcard": "C:\\\\*"}]}, {"Path": "C:\\Windows"}, True),  # \\ is a backslash
    ({"Location": ["New York"], "$or": [{"Day": ["Monday"]}, {"Day": ["Tuesday"]}]},
     {"Location": "New York", "Day": "Tuesday"}, True),
    # $or: from the Event Ruler README, the engine behind EventBridge
    ({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]},
                                            {"namespace": ["AWS/EC2", "AWS/ES"]}]},
     {"source": "aws.cloudwatch", "namespace": "AWS/ES"}, True),
    ({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]},
                                            {"namespace": ["AWS/EC2", "AWS/ES"]}]},
     {"source": "aws.cloudwatch", "namespace": "AWS/Lambda"}, False),
    ({"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]},
                         {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}},
     with_detail(FILTERING, **{"c-count": 50, "d-count": 30}), True),
    ({"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}]}},
     with_detail(FILTERING, **{"c-count": 50, "d-count": 30}), False),
    ({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]},
                                            {"metricType": ["MetricType"], "namespace": ["AWS/EC2"],
                                             "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}]},
     {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1000}, True),
    ({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]},
                                            {"metricType": ["MetricType"], "namespace": ["AWS/EC2"],
                                             "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}]},
     {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1001}, False),
    ({"$or": [{"a": ["1"]}, {"b": ["2"]}], "detail": {"$or": [{"c": ["3"]}, {"d": ["4"]}]}},
     {"b": "2", "detail": {"d": "4"}}, True),
    ({"$or": [{"a": ["1"]}, {"b": ["2"]}], "detail": {"$or": [{"c": ["3"]}, {"d": ["4"]}]}}, {"b": "2", "detail": {}}, False),
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-pattern-sandbox.html (Testing event patterns:
    # a pattern is tested against the whole envelope, so its top-level fields can be matched too)
    ({"account": ["111122223333"], "region": [{"prefix": "us-"}], "id": [{"exists": True}]}, EC2, True),
    ({"account": ["111122223333"], "region": [{"prefix": "eu-"}]}, EC2, False),
    # https://docs.aws.amazon.com/acm/latest/userguide/supported-events.html and
    # https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-acm.html: ACM events as certsmith emits them
    ({"source": ["aws.acm"]}, APPROACHING_14, True),
    ({"source": ["aws.acm"], "detail-type": ["ACM Certificate Approaching Expiration"]}, APPROACHING_14, True),
    ({"source": ["aws.acm"], "detail-type": ["ACM Certificate Approaching Expiration"]}, AVAILABLE, False),
    (APPROACHING_PATTERN, APPROACHING_14, True),
    (APPROACHING_PATTERN, APPROACHING_45, False),
    (APPROACHING_PATTERN, ACTION_REQUIRED, False),  # DaysToExpiry 20, but another detail-type
    ({"source": ["aws.acm"], "resources": [ARN]}, EXPIRED, True),
    ({"source": ["aws.acm"], "resources": [OTHER_ARN]}, EXPIRED, False),
    ({"resources": [{"wildcard": "arn:aws:acm:*:123456789012:certificate/*"}]}, AVAILABLE, True),
    ({"detail-type": ["ACM Certificate Renewal Action Required"],
      "detail": {"RenewalStatusReason": ["PENDING_DOMAIN_VALIDATION"], "DaysToExpiry": [{"numeric": ["<", 30]}]}},
     ACTION_REQUIRED, True),
    ({"detail": {"CommonName": [{"suffix": ".example.com"}, "example.com"]}}, AVAILABLE, True),
    ({"detail": {"CommonName": [{"suffix": ".example.com"}, "example.com"]}}, IMPORTED_AVAILABLE, False),
    ({"detail": {"CertificateType": [{"anything-but": "IMPORTED"}], "InUse": [True]}}, AVAILABLE, True),
    ({"detail": {"CertificateType": [{"anything-but": "IMPORTED"}]}}, IMPORTED_AVAILABLE, False),
    ({"detail": {"Exported": [False]}}, AVAILABLE, True),
    ({"detail": {"InUse": [1]}}, AVAILABLE, False),  # true is not 1
    ({"detail": {"Action": ["RENEWAL", "REIMPORT"]}}, AVAILABLE, True),
    ({"detail": {"DomainValidationMethod": [{"exists": False}]}}, IMPORTED_AVAILABLE, True),
    ({"detail": {"DomainValidationMethod": [{"exists": False}]}}, AVAILABLE, False),
    ({"source": ["aws.acm"], "$or": [{"detail-type": ["ACM Certificate Expired"]},
                                     {"detail": {"DaysToExpiry": [{"numeric": ["<", 15]}]}}]}, EXPIRED, True),
    ({"source": ["aws.acm"], "$or": [{"detail-type": ["ACM Certificate Expired"]},
                                     {"detail": {"DaysToExpiry": [{"numeric": ["<", 15]}]}}]}, APPROACHING_14, True),
    ({"source": ["aws.acm"], "$or": [{"detail-type": ["ACM Certificate Expired"]},
                                     {"detail": {"DaysToExpiry": [{"numeric": ["<", 15]}]}}]}, APPROACHING_45, False),
    ({"source": ["certsmith"], "detail-type": [{"prefix": "Certsmith Endpoint"}]}, DRIFT, True),
    ({"source": ["certsmith"], "detail-type": [{"prefix": "Certsmith Endpoint"}]}, AVAILABLE, False),
    ({"source": [{"anything-but": "aws.acm"}], "detail": {"Port": [443]}}, DRIFT, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), ROWS)
def test_documented_examples(pattern: str | dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    compiled = compile_pattern(pattern)
    assert compiled.matches(event) is expected
    assert compile_pattern(compiled.text).matches(event) is expected  # the canonical text means the same


def test_the_rule_matcher_agrees_with_each_pattern_on_every_row() -> None:
    patterns = [compile_pattern(pattern) for pattern, _, _ in ROWS]
    matcher = RuleMatcher(enumerate(patterns))
    assert len(matcher) == len(ROWS)
    for _, event, _ in ROWS:
        assert matcher.match(event) == [i for i, pattern in enumerate(patterns) if pattern.matches(event)]


def test_the_rule_matcher_keeps_the_order_of_the_rules_and_names_each_once() -> None:
    acm_rule = compile_pattern({"source": ["aws.acm"]})
    either = compile_pattern({"$or": [{"source": ["aws.acm"]}, {"detail-type": [{"prefix": "ACM"}]}]})
    soon = compile_pattern(APPROACHING_PATTERN)
    matcher = RuleMatcher([(("z", 1), soon), (("a", 2), either), (("m", 3), acm_rule), (("b", 4), soon)])
    assert matcher.match(APPROACHING_14) == [("z", 1), ("a", 2), ("m", 3), ("b", 4)]
    assert matcher.match(APPROACHING_45) == [("a", 2), ("m", 3)]
    assert matcher.match(DRIFT) == []
    assert RuleMatcher([]).match(DRIFT) == []


def test_the_rule_matcher_checks_array_elements_one_by_one() -> None:
    same_element = compile_pattern({"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}})
    split = compile_pattern({"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}})
    absent = compile_pattern({"detail": {"employees": {"middleName": [{"exists": False}]}}})
    matcher = RuleMatcher([("same", same_element), ("split", split), ("absent", absent)])
    assert matcher.match(EMPLOYEES) == ["same", "absent"]


def test_numeric_conditions_share_their_bounds() -> None:
    bounds = [("<=", 30), ("<", 30), (">=", 30), (">", 30), ("<=", 29.5), (">", 29.5), ("=", 30), (">", 0, "<", 31)]
    rules = [(op, compile_pattern({"detail": {"DaysToExpiry": [{"numeric": list(op)}]}})) for op in bounds]
    matcher = RuleMatcher(rules)
    for days in (29, 29.5, 30, 30.0, 31, -1, "30", True, None, float("nan"), float("inf")):
        event = detail(DaysToExpiry=days)
        assert matcher.match(event) == [op for op, pattern in rules if pattern.matches(event)], days
    assert matcher.match(detail(DaysToExpiry=30)) == [("<=", 30), (">=", 30), (">", 29.5), ("=", 30), (">", 0, "<", 31)]
    assert matcher.match(detail(DaysToExpiry=[40, 10])) == [("<=", 30), ("<", 30), (">=", 30), (">", 30), ("<=", 29.5),
                                                            (">", 29.5), (">", 0, "<", 31)]


def test_the_canonical_text() -> None:
    pattern = compile_pattern('{ "source" : ["aws.acm"],\n "detail-type": ["ACM Certificate Expired"],'
                              ' "detail": {"b": [1], "a": ["é"]} }')
    assert pattern.text == '{"detail":{"a":["é"],"b":[1]},"detail-type":["ACM Certificate Expired"],"source":["aws.acm"]}'
    assert pattern == compile_pattern(json.loads(pattern.text))
    assert compile_pattern({"a": ("x", "y")}).text == '{"a":["x","y"]}'
    with pytest.raises(dataclasses.FrozenInstanceError):
        pattern.text = "{}"  # type: ignore[misc]
    assert isinstance(pattern, EventPattern) and repr(pattern) == f"EventPattern(text={pattern.text!r})"


def test_a_pattern_may_be_as_long_as_eventbridge_allows() -> None:
    padding = "x" * (MAX_PATTERN_LENGTH - len('{"a":[""]}'))
    assert compile_pattern(f'{{"a":["{padding}"]}}').matches({"a": padding})
    with pytest.raises(PatternError, match=f"EventPattern is {MAX_PATTERN_LENGTH + 1} characters long; the limit is 4096"):
        compile_pattern(f'{{"a":["{padding}x"]}}')
    with pytest.raises(PatternError, match="the limit is 4096"):
        compile_pattern({"a": [padding + "x"]})


def _or_of(width: int) -> dict[str, Any]:
    return {"$or": [{f"f{i}": ["x"]} for i in range(width)]}


INVALID: list[tuple[str | dict[str, Any], str]] = [
    ("{", "EventPattern is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ('{"a": [NaN]}', "EventPattern is not valid JSON: NaN is not a JSON value"),
    ("[]", "EventPattern must be a JSON object"),
    ('"aws.acm"', "EventPattern must be a JSON object"),
    ("{}", "EventPattern is an empty object; name at least one field to match"),
    ({"detail": {}}, 'EventPattern: "detail": empty objects are not allowed'),
    ({"source": "aws.acm"}, 'EventPattern: "source": must be an object or an array of values, not a string'),
    ({"detail": {"DaysToExpiry": 30}},
     'EventPattern: "detail.DaysToExpiry": must be an object or an array of values, not a number'),
    ({"source": []}, 'EventPattern: "source": empty arrays are not allowed'),
    ({"source": [["aws.acm"]]},
     'EventPattern: "source": values must be strings, numbers, true, false, null or matcher objects, not arrays'),
    ({"a": [{"contains": "x"}]}, 'EventPattern: "a": unknown operator "contains"; use one of anything-but, cidr, '
                                 "equals-ignore-case, exists, numeric, prefix, suffix, wildcard"),
    ({"a": [{}]}, 'EventPattern: "a": a matcher object takes exactly one operator, found 0 (none)'),
    ({"a": [{"prefix": "x", "suffix": "y"}]},
     'EventPattern: "a": a matcher object takes exactly one operator, found 2 (prefix, suffix)'),
    ({"a": [{"prefix": 5}]}, 'EventPattern: "a": prefix needs a string or {"equals-ignore-case": string}'),
    ({"a": [{"suffix": {"wildcard": "x"}}]}, 'EventPattern: "a": suffix needs a string or {"equals-ignore-case": string}'),
    ({"a": [{"equals-ignore-case": ["x"]}]}, 'EventPattern: "a": equals-ignore-case needs a string'),
    ({"a": [{"exists": "yes"}]}, 'EventPattern: "a": exists needs true or false'),
    ({"detail": {"DaysToExpiry": [{"numeric": [">"]}]}},
     'EventPattern: "detail.DaysToExpiry": numeric needs an operator and a number, e.g. [">", 0, "<=", 5]'),
    ({"detail": {"DaysToExpiry": [{"numeric": 30}]}},
     'EventPattern: "detail.DaysToExpiry": numeric needs an operator and a number, e.g. [">", 0, "<=", 5]'),
    ({"detail": {"DaysToExpiry": [{"numeric": ["<=", "30"]}]}},
     'EventPattern: "detail.DaysToExpiry": numeric needs an operator and a number, e.g. [">", 0, "<=", 5]'),
    ({"n": [{"numeric": ["==", 3]}]}, 'EventPattern: "n": numeric: unknown operator "=="; use one of =, <, <=, >, >='),
    ({"n": [{"numeric": ["<", 5, ">", 0]}]},
     'EventPattern: "n": numeric: a range is a lower bound (">" or ">=") then an upper bound ("<" or "<=")'),
    ({"n": [{"numeric": [">", 0, ">", 5]}]},
     'EventPattern: "n": numeric: a range is a lower bound (">" or ">=") then an upper bound ("<" or "<=")'),
    ({"n": [{"numeric": [">", 5, "<", 5]}]},
     'EventPattern: "n": numeric: the lower bound 5 must be less than the upper bound 5'),
    ({"n": [{"numeric": [">", 6e9]}]},
     'EventPattern: "n": numeric: 6000000000.0 is outside the range EventBridge compares, -5.0e9 to 5.0e9'),
    ({"n": [{"anything-but": [1, "one"]}]},
     'EventPattern: "n": anything-but: an array must hold only strings or only numbers'),
    ({"n": [{"anything-but": []}]}, 'EventPattern: "n": anything-but: empty arrays are not allowed'),
    ({"n": [{"anything-but": None}]},
     'EventPattern: "n": anything-but needs a string, a number, an array of only strings or only numbers, or an object '
     "with prefix, suffix, equals-ignore-case or wildcard"),
    ({"n": [{"anything-but": {"numeric": [">", 1]}}]},
     'EventPattern: "n": anything-but cannot hold "numeric"; use prefix, suffix, equals-ignore-case or wildcard'),
    ({"n": [{"anything-but": {"prefix": ""}}]}, 'EventPattern: "n": anything-but prefix needs a non-empty string'),
    ({"n": [{"anything-but": {"suffix": 3}}]}, 'EventPattern: "n": anything-but suffix needs a string or an array of strings'),
    ({"f": [{"wildcard": "a**b"}]},
     "EventPattern: \"f\": wildcard 'a**b': consecutive wildcard characters are not allowed (at 1)"),
    ({"f": [{"wildcard": "a\\b"}]}, "EventPattern: \"f\": wildcard 'a\\\\b': a backslash may only escape * or \\ (at 1)"),
    ({"f": [{"anything-but": {"wildcard": "x**"}}]},
     "EventPattern: \"f\": anything-but wildcard 'x**': consecutive wildcard characters are not allowed (at 1)"),
    ({"ip": [{"cidr": "10.0.0.0"}]},
     "EventPattern: \"ip\": cidr '10.0.0.0' is not an address block such as \"10.0.0.0/24\" or \"2001:db8::/32\""),
    ({"ip": [{"cidr": "10.0.0.0/33"}]},
     "EventPattern: \"ip\": cidr '10.0.0.0/33' is not an address block such as \"10.0.0.0/24\" or \"2001:db8::/32\""),
    ({"ip": [{"cidr": 10}]}, 'EventPattern: "ip": cidr needs a string such as "10.0.0.0/24"'),
    ({"$or": [{"a": ["1"]}]}, 'EventPattern: "$or": $or needs an array of at least two objects'),
    ({"detail": {"$or": {"a": ["1"]}}}, 'EventPattern: "detail.$or": $or needs an array of at least two objects'),
    ({"$or": [{"a": ["1"]}, {"b": []}]}, 'EventPattern: "$or[1].b": empty arrays are not allowed'),
    ({"$or": [{"a": ["1"]}, {"prefix": ["x"]}]},
     'EventPattern: "$or[1].prefix": "prefix" is an operator; inside $or it cannot name a field'),
    ({"a": [float("inf")]}, 'EventPattern: "a": inf is not a JSON number'),
    ({"a": [{1, 2}]}, 'EventPattern: "a": set is not a JSON value'),
    ({"x": _or_of(10), "y": _or_of(10), "z": _or_of(11)},
     "EventPattern's $or arrays combine to more than 1000 alternatives"),
]


@pytest.mark.parametrize(("pattern", "message"), INVALID)
def test_patterns_eventbridge_refuses(pattern: str | dict[str, Any], message: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {"leaf": ["x"]}
    for _ in range(70):
        deep = {"a": deep}
    with pytest.raises(PatternError, match="EventPattern nests deeper than 64 levels"):
        compile_pattern(deep)
    with pytest.raises(PatternError, match="EventPattern nests deeper than 64 levels"):
        compile_pattern(json.dumps(deep))
    with pytest.raises(PatternError, match="EventPattern is not valid JSON"):
        compile_pattern("[" * 4000 + "]" * 10)


def test_a_pattern_is_not_given_as_something_else() -> None:
    with pytest.raises(PatternError, match="EventPattern must be a JSON object, not list"):
        compile_pattern([{"source": ["aws.acm"]}])  # type: ignore[arg-type]
    with pytest.raises(PatternError, match='EventPattern: "detail": field names must be strings, not int'):
        compile_pattern({"detail": {1: ["x"]}})
