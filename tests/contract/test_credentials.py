"""Access keys made, listed and revoked on the server's machine; the start-up message tells the truth."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from ..conftest import backend_url, start_server
from .local_cli import certsmith, database_args


def _client(endpoint: str, key_id: str, secret: str) -> object:
    return boto3.session.Session().client("acm", endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id=key_id, aws_secret_access_key=secret)


def test_lost_credentials_are_made_anew_and_old_keys_revoked(tmp_path: Path) -> None:
    url = backend_url()
    server = start_server(tmp_path, url)
    server.stop()
    assert "new admin credentials written to" in server.log_path.read_text()
    first_key = server.access_key
    server.credentials.unlink()

    server = start_server(tmp_path, url)
    try:
        log = server.log_path.read_text()
        assert f"no credentials file at {server.credentials}" in log
        assert "certsmith credentials create --data-dir" in log
        assert not server.credentials.exists()

        local = [*database_args(url), "--data-dir", str(server.data_dir)]
        made = certsmith("credentials", "create", *local)
        assert made.returncode == 0, made.stderr
        assert server.credentials.stat().st_mode & 0o777 == 0o600
        second_key = server.access_key
        assert second_key[0] != first_key[0] and second_key[0] in made.stdout
        assert server.client("acm").list_certificates()["CertificateSummaryList"] == []

        refused = certsmith("credentials", "create", *local)
        assert refused.returncode == 2 and "exists; it is kept" in refused.stderr
        assert server.access_key == second_key

        listed = certsmith("credentials", "list", "-q", *local)
        assert listed.stdout.split() == [first_key[0], second_key[0]]
        assert first_key[1] not in certsmith("credentials", "list", *local).stdout  # never a secret

        old = _client(server.endpoint, *first_key)
        old.list_certificates()  # type: ignore[attr-defined]
        revoked = certsmith("credentials", "revoke", first_key[0], *local)
        assert revoked.returncode == 0, revoked.stderr
        deadline = time.monotonic() + 15
        while True:
            try:
                old.list_certificates()  # type: ignore[attr-defined]
            except ClientError as error:
                assert error.response["Error"]["Code"] == "UnrecognizedClientException"
                break
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.5)
        server.client("acm").list_certificates()  # the other key still works

        last = certsmith("credentials", "revoke", second_key[0], *local)
        assert last.returncode == 2 and "last access key" in last.stderr
        missing = certsmith("credentials", "revoke", "CSAKNOSUCHKEY0000000", *local)
        assert missing.returncode == 2 and "there is no access key CSAKNOSUCHKEY0000000" in missing.stderr
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()


def test_force_replaces_the_file(tmp_path: Path) -> None:
    url = backend_url()
    server = start_server(tmp_path, url)
    server.stop()
    before = server.access_key
    made = certsmith("credentials", "create", "--force", "-q", "--data-dir", server.data_dir, *database_args(url))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == server.access_key[0] != before[0]
