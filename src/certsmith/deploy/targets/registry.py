"""The kinds of deployment target: the built-in ones and those other packages register as entry points."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from certsmith.domain.errors import ValidationError
from certsmith.domain.plugins import entry_point_plugins

from .base import DeployTarget, TargetPlugin

__all__ = ["BUILTIN", "GROUP", "build_target", "plugin", "plugins"]

GROUP = "certsmith.deploy_targets"

# kind -> module (each module has PLUGIN); imported on first use, so a target's library loads only when needed
BUILTIN: dict[str, str] = {
    "files": "certsmith.deploy.targets.files",
    "nginx": "certsmith.deploy.targets.nginx",
    "apache": "certsmith.deploy.targets.apache",
    "haproxy": "certsmith.deploy.targets.haproxy",
    "aws-acm": "certsmith.deploy.targets.aws_acm",
    "aws-elbv2": "certsmith.deploy.targets.aws_elbv2",
    "aws-cloudfront": "certsmith.deploy.targets.aws_cloudfront",
}


def _builtin(kind: str) -> TargetPlugin | None:
    module = BUILTIN.get(kind)
    if module is None:
        return None
    try:
        loaded = importlib.import_module(module).PLUGIN
    except ModuleNotFoundError as exc:  # a built-in kind whose module is not there (yet); a missing library is loud
        if exc.name != module:
            raise
        return None
    assert isinstance(loaded, TargetPlugin)
    return loaded


def plugins() -> dict[str, TargetPlugin]:
    """Every kind of target by its kind: the built-ins, then each entry point of the group that loads."""
    found = {kind: loaded for kind in BUILTIN if (loaded := _builtin(kind)) is not None}
    return entry_point_plugins(GROUP, found, TargetPlugin, "certsmith.deploy.targets.", "deployment target")


def plugin(kind: str) -> TargetPlugin:
    """The plugin of ``kind``; ValidationError (field Kind) naming the known kinds otherwise."""
    wanted = kind.strip().lower() if isinstance(kind, str) else ""
    builtin = _builtin(wanted)
    if builtin is not None:
        return builtin
    known = plugins()
    if wanted in known:
        return known[wanted]
    raise ValidationError(f"unknown deployment target kind {kind!r}: the known kinds are {', '.join(sorted(known))}",
                          field="Kind")


def build_target(kind: str, raw_options: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> DeployTarget:
    """A target of ``kind`` from plain options (ValidationError for anything wrong in them) and its remembered state."""
    return plugin(kind).build(raw_options, state)
