"""The audit log: every mutating call, with principal, operation, resource and result."""

from __future__ import annotations

from typing import Any

from ..domain.clock import Clock
from ..store.group_commit import GroupCommit
from ..store.tables import Base
from .context import Caller

__all__ = ["AuditLog", "is_mutating"]

_TABLE = Base.metadata.tables["audit_log"]
_READ_ONLY_PREFIXES = ("Describe", "List", "Get")


def is_mutating(operation: str) -> bool:
    return not operation.startswith(_READ_ONLY_PREFIXES)


class AuditLog:
    """Entries are written through the group commit, so a burst of calls shares its transactions."""

    def __init__(self, writes: GroupCommit, clock: Clock) -> None:
        self._writes, self._clock = writes, clock

    def entry(self, caller: Caller, operation: str, resource: str | None, result: str) -> dict[str, Any]:
        return {"at": self._clock.now(), "principal": caller.principal, "operation": operation,
                "resource": resource[:300] if resource else None, "result": result[:128]}

    async def record(self, caller: Caller, operation: str, resource: str | None, result: str) -> None:
        """Write the entry; returns once it is committed."""
        await self._writes.insert([(_TABLE, self.entry(caller, operation, resource, result))])
