"""The CLI on a fresh machine: no ~/.aws at all, only --endpoint and --credentials on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..conftest import Server


def test_credentials_flag_works_without_any_aws_configuration(server: Server, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("CERTSMITH_")}
    env["HOME"] = str(tmp_path)  # no ~/.aws/config, no ~/.aws/credentials
    result = subprocess.run([sys.executable, "-m", "certsmith", "renewal", "status", "--json",
                             "--endpoint", server.endpoint, "--credentials", str(server.credentials)],
                            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith("[")
