"""The kinds of DNS provider: the built-in ones and those other packages register as entry points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from certsmith.domain.errors import ValidationError
from certsmith.domain.plugins import entry_point_plugins

from .base import DnsProvider, ProviderPlugin

__all__ = ["GROUP", "build_provider", "plugin", "plugins"]

GROUP = "certsmith.dns_providers"


def _builtins() -> dict[str, ProviderPlugin]:
    from . import rfc2136, route53

    return {rfc2136.PLUGIN.kind: rfc2136.PLUGIN, route53.PLUGIN.kind: route53.PLUGIN}


def plugins() -> dict[str, ProviderPlugin]:
    """Every kind of provider by its kind: the built-ins, then each entry point of the group that loads."""
    return entry_point_plugins(GROUP, _builtins(), ProviderPlugin, "certsmith.dns.providers.", "DNS provider")


def plugin(kind: str) -> ProviderPlugin:
    """The plugin of ``kind``; ValidationError (field Kind) naming the known kinds otherwise."""
    wanted = kind.strip().lower() if isinstance(kind, str) else ""
    known = _builtins()
    if wanted in known:
        return known[wanted]
    known = plugins()
    if wanted in known:
        return known[wanted]
    raise ValidationError(f"unknown DNS provider kind {kind!r}: the known kinds are {', '.join(sorted(known))}",
                          field="Kind")


def build_provider(kind: str, name: str, raw_options: Mapping[str, Any]) -> DnsProvider:
    """A provider of ``kind`` called ``name``, from plain options (ValidationError for anything wrong in them)."""
    chosen = plugin(kind)
    return chosen.factory(name, chosen.parse(raw_options))
