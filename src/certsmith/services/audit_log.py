"""The audit log: every mutating call, with principal, operation, resource and result."""

from __future__ import annotations

from typing import Any

from ..domain.clock import Clock
from ..store.group_commit import GroupCommit
from ..store.tables import Base
from .context import Caller

__all__ = ["AuditLog", "is_mutating"]

_TABLE = Base.metadata.tables["audit_log"]
_READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Diagnose", "Poll")  # an agent's long poll changes nothing


def is_mutating(operation: str) -> bool:
    return not operation.startswith(_READ_ONLY_PREFIXES)


class AuditLog:
    """Entries ride with the next group commit: the call they record does not wait for them.

    They are committed within milliseconds, in the same transactions as the certificates being
    requested at the time; a graceful shutdown writes what is pending. Only a crash of the process
    in those milliseconds can lose an entry, and the server log says so if a write fails.
    """

    def __init__(self, writes: GroupCommit, clock: Clock) -> None:
        self._writes, self._clock = writes, clock

    def entry(self, caller: Caller, operation: str, resource: str | None, result: str) -> dict[str, Any]:
        return {"at": self._clock.now(), "principal": caller.principal, "operation": operation,
                "resource": resource[:300] if resource else None, "result": result[:128]}

    def record(self, caller: Caller, operation: str, resource: str | None, result: str) -> None:
        self._writes.insert_soon([(_TABLE, self.entry(caller, operation, resource, result))])
