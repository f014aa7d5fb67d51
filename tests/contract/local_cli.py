"""Running the certsmith command on this machine, as an operator would (serve's neighbours)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def certsmith(*args: str | Path | int, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``certsmith ARGS`` in a child process; its output as text."""
    full_env = dict(os.environ)
    full_env.pop("CERTSMITH_MASTER_KEY", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "certsmith", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False)


def database_args(database_url: str | None) -> list[str]:
    return ["--database-url", database_url] if database_url else []
