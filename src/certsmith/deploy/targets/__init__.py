"""Deployment targets behind one interface: files, nginx, apache, haproxy, and AWS (ACM, ELBv2, CloudFront)."""

from .base import (
    Activation,
    DeployError,
    DeployTarget,
    Held,
    Installed,
    Material,
    TargetPlugin,
)
from .registry import GROUP, build_target, plugin, plugins

__all__ = ["GROUP", "Activation", "DeployError", "DeployTarget", "Held", "Installed", "Material", "TargetPlugin",
           "build_target", "plugin", "plugins"]
