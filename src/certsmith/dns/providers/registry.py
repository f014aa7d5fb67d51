"""The kinds of DNS provider: the built-in ones and those other packages register as entry points."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from certsmith.domain.errors import ValidationError

from .base import DnsProvider, ProviderPlugin

__all__ = ["GROUP", "build_provider", "plugin", "plugins"]

GROUP = "certsmith.dns_providers"
log = logging.getLogger(__name__)


def _builtins() -> dict[str, ProviderPlugin]:
    from . import rfc2136, route53

    return {rfc2136.PLUGIN.kind: rfc2136.PLUGIN, route53.PLUGIN.kind: route53.PLUGIN}


def plugins() -> dict[str, ProviderPlugin]:
    """Every kind of provider by its kind: the built-ins, then each entry point of the group that loads."""
    found = _builtins()
    for point in entry_points(group=GROUP):
        if point.name in found and point.value.startswith("certsmith.dns.providers."):
            continue
        try:
            loaded = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party package must not break the others
            log.warning("DNS provider entry point %r (%s) cannot be loaded, skipped: %s: %s", point.name, point.value,
                        type(exc).__name__, exc)
            continue
        if not isinstance(loaded, ProviderPlugin):
            log.warning("DNS provider entry point %r (%s) is not a ProviderPlugin, skipped", point.name, point.value)
            continue
        if loaded.kind in found:
            log.warning("DNS provider entry point %r (%s) claims kind %r, which is taken, skipped", point.name,
                        point.value, loaded.kind)
            continue
        found[loaded.kind] = loaded
    return found


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
