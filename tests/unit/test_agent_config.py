"""agent.toml reading and the agent key's limits (pure: no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from certsmith.deploy.agent.config import ConfigError, load_config
from certsmith.domain.errors import AccessDeniedError
from certsmith.services.deploy.agents import agent_arn, agent_name_of, check_agent_may_call

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "agent" / "agent.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_the_shipped_example_loads() -> None:
    config = load_config(CONTRIB)
    assert config.endpoint == "https://certsmith.example.com:8000" and config.wait_seconds == 20
    assert "replace-with-the-secret" not in repr(config)


def test_credentials_file_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "creds").write_text("[default]\naws_access_key_id = CSAKX\naws_secret_access_key = s3cret\n")
    config = load_config(write(tmp_path, 'endpoint = "http://127.0.0.1:8000/"\ncredentials_file = "creds"\n'
                                         'state_dir = "state"\nwait_seconds = 0\n'))
    assert (config.access_key_id, config.secret_access_key) == ("CSAKX", "s3cret")
    assert config.state_dir == tmp_path / "state" and config.endpoint == "http://127.0.0.1:8000"
    assert config.wait_seconds == 0 and config.ca_bundle is None


@pytest.mark.parametrize(("text", "names"), [
    ('endpoint = "ftp://x"\naccess_key_id = "a"\nsecret_access_key = "b"\nstate_dir = "s"\n', "endpoint"),
    ('endpoint = "http://x"\naccess_key_id = "a"\nsecret_access_key = "b"\n', "state_dir"),
    ('endpoint = "http://x"\nstate_dir = "s"\n', "access_key_id"),
    ('endpoint = "http://x"\naccess_key_id = "a"\nsecret_access_key = "b"\nstate_dir = "s"\nwait_seconds = 61\n',
     "wait_seconds"),
    ('endpoint = "http://x"\naccess_key_id = "a"\nsecret_access_key = "b"\nstate_dir = "s"\nwait = 1\n', "wait"),
    ('endpoint = "http://x"\naccess_key_id = "a"\nsecret_access_key = "b"\nstate_dir = "s"\nca_bundle = "no.pem"\n',
     "ca_bundle"),
    ("endpoint = ", "not valid TOML"),
])
def test_wrong_settings_are_named(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names) as failed:
        load_config(write(tmp_path, text))
    assert '"b"' not in str(failed.value)


def test_only_agent_operations_for_an_agent_key() -> None:
    principal = agent_arn("eu-west-1", "123456789012", "web-1")
    assert principal == "arn:aws:certsmith:eu-west-1:123456789012:agent/web-1"
    assert agent_name_of(principal) == ("eu-west-1", "123456789012", "web-1")
    assert agent_name_of("arn:aws:iam::123456789012:root") is None
    check_agent_may_call(principal, "certsmith", "PollAgentWork")
    check_agent_may_call(principal, "certsmith", "ReportDeployment")
    for service, operation in (("certsmith", "ListBindings"), ("acm", "ListCertificates"), ("acm", "PollAgentWork"),
                               ("certsmith", "CreateAgent")):
        with pytest.raises(AccessDeniedError, match=operation):
            check_agent_may_call(principal, service, operation)
    check_agent_may_call("arn:aws:iam::123456789012:root", "acm", "ListCertificates")
