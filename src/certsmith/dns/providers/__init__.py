"""DNS providers: where certsmith writes validation records (RFC 2136 with TSIG, Route 53, or a plugin's)."""

from .base import DnsProvider, ProviderError, ProviderPlugin, RecordSet
from .registry import build_provider, plugin, plugins

__all__ = ["DnsProvider", "ProviderError", "ProviderPlugin", "RecordSet", "build_provider", "plugin", "plugins"]
