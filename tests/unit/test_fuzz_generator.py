"""The fuzzer's generator: every operation from the models, both protocols, the wire oddities it promises."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import botocore.loaders
import cbor2
import pytest

from certsmith.api.aws.protocol import SerializationError, decode_body
from certsmith.testing import fuzz
from certsmith.testing.fuzz import DEFAULT_SERVICES, InputGenerator, available_services, discover_operations
from certsmith.testing.fuzz_encoding import Blob, Pairs, Raw, Stamp, Tagged, encode_cbor, encode_json
from certsmith.testing.fuzz_samples import Samples
from certsmith.testing.server import logged_errors


@pytest.fixture(scope="module")
def samples() -> Samples:
    return Samples()


def test_operations_come_from_the_models() -> None:
    loader = botocore.loaders.Loader()
    operations = discover_operations(DEFAULT_SERVICES)
    for service in DEFAULT_SERVICES:
        model = loader.load_service_model(service, "service-2")
        mine = {op.name for op in operations if op.service == service}
        assert mine == set(model["operations"])
        assert {op.target_prefix for op in operations if op.service == service} == {model["metadata"]["targetPrefix"]}


def test_a_service_model_found_later_is_fuzzed_too(tmp_path: Path) -> None:
    folder = tmp_path / "certsmith" / "2099-01-01"  # newer than the model certsmith ships, so it is the one loaded
    folder.mkdir(parents=True)
    model = {"version": "2.0", "metadata": {"apiVersion": "2099-01-01", "endpointPrefix": "certsmith",
                                            "jsonVersion": "1.1", "protocol": "json", "serviceId": "certsmith",
                                            "signatureVersion": "v4", "targetPrefix": "Certsmith", "uid": "x"},
             "operations": {"Ping": {"name": "Ping", "http": {"method": "POST", "requestUri": "/"},
                                     "input": {"shape": "PingRequest"}},
                            "Nothing": {"name": "Nothing", "http": {"method": "POST", "requestUri": "/"},
                                        "input": {"shape": "NothingRequest"}}},
             "shapes": {"PingRequest": {"type": "structure", "members": {"At": {"shape": "When"}}},
                        "NothingRequest": {"type": "structure", "members": {}},
                        "When": {"type": "timestamp"}}}
    (folder / "service-2.json").write_text(json.dumps(model))
    services = available_services([tmp_path])
    assert services[:2] == DEFAULT_SERVICES and "certsmith" in services
    operations = {op.target: op for op in discover_operations(services, [tmp_path])}
    assert "Certsmith.Ping" in operations and "ACMPrivateCA.IssueCertificate" in operations
    generator = InputGenerator(random.Random(1), Samples(), malformed=0.0)
    for target in ("Certsmith.Ping", "Certsmith.Nothing"):  # what succeeded is mutated, even with no members
        generator.learn(generator.generate(operations[target], "json"))
        for _ in range(50):
            generator.generate(operations[target], "cbor")


def test_inputs_cover_every_operation_both_protocols_and_the_oddities(samples: Samples) -> None:
    operations = discover_operations()
    generator = InputGenerator(random.Random(7), samples)
    seen, notes, outcomes = set(), Counter[str](), Counter[str]()
    for number in range(6000):
        operation = operations[number % len(operations)]
        protocol = "cbor" if number % 2 else "json"
        item = generator.generate(operation, protocol)
        assert len(item.body) < 4 * 1024 * 1024
        seen.add((operation.target, protocol))
        notes[item.note.split(" ")[0]] += 1
        try:
            decode_body(item.body, protocol == "cbor")
            outcomes["document"] += 1
        except SerializationError:
            outcomes["serialization"] += 1
    assert len(seen) == 2 * len(operations)
    assert {"shape,", "truncated", "nested", "random", "top"} <= set(notes), notes
    assert outcomes["document"] > 3000 and outcomes["serialization"] > 600, outcomes


def test_the_same_seed_makes_the_same_inputs(samples: Samples) -> None:
    operations = discover_operations()

    def bodies(seed: int) -> list[bytes]:
        generator = InputGenerator(random.Random(seed), samples)
        return [generator.generate(operations[n % len(operations)], "json").body for n in range(200)]

    assert bodies(3) == bodies(3) and bodies(3) != bodies(4)


def test_the_encoders_write_what_they_are_asked() -> None:
    document = {"b": Blob(b"\x00\xff"), "t": Stamp(1.5), "n": float("nan"), "s": "a\ud800", "big": 2**70,
                "tag": Tagged(35, "x"), "raw": Raw(b"9" * 5000, b"\xf7"), "dup": Pairs((("k", 1), ("k", 2)))}
    text = encode_json(document)
    assert b'"b":"AP8="' in text and b'"t":1.5' in text and b'"n":NaN' in text and b'"s":"a\\ud800"' in text
    assert b'"dup":{"k":1,"k":2}' in text and b"9" * 5000 in text
    data = encode_cbor(document)
    assert b"\xc1\xfb" in data  # tag 1 around a double
    assert b"\x64a\xed\xa0\x80" in data  # the lone surrogate as invalid UTF-8
    assert cbor2.loads(encode_cbor({"x": Stamp(5)})) == {"x": cbor2.loads(b"\xc1\x05")}


def test_logged_errors_are_found_with_their_traceback() -> None:
    log = ("certsmith listening on http://127.0.0.1:1\n"
           "2026-01-01 00:00:00,000 INFO certsmith.worker: started\n"
           "2026-01-01 00:00:01,000 ERROR certsmith.api: request 1 failed\n"
           "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom\n"
           "2026-01-01 00:00:02,000 WARNING certsmith.worker: retry\n"
           "ERROR:    Exception in ASGI application\n")
    errors = logged_errors(log)
    assert len(errors) == 2 and errors[0].endswith("ValueError: boom") and errors[1].startswith("ERROR:")


def test_mutating_what_succeeded_never_writes_into_shared_values(samples: Samples) -> None:
    """Every input taken as a success and mutated again: the wrong-type values are copies, so no document
    grows into a cycle (one did, through a shared {} written into by a mutation, and the encoder recursed)."""
    operations = discover_operations()
    generator = InputGenerator(random.Random(24), samples, malformed=0.0)
    before = repr(fuzz._WRONG)
    for number in range(4000):
        item = generator.generate(operations[number % len(operations)], "cbor" if number % 2 else "json")
        generator.learn(item)
    assert repr(fuzz._WRONG) == before
