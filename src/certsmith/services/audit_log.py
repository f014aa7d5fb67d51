"""The audit log: every mutating call, with principal, operation, resource and result."""

from __future__ import annotations

from sqlalchemy import insert

from ..domain.clock import Clock
from ..store.database import Database
from ..store.tables import Base
from .context import Caller

__all__ = ["AuditLog", "is_mutating"]

_INSERT = insert(Base.metadata.tables["audit_log"])
_READ_ONLY_PREFIXES = ("Describe", "List", "Get")


def is_mutating(operation: str) -> bool:
    return not operation.startswith(_READ_ONLY_PREFIXES)


class AuditLog:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock

    def record(self, caller: Caller, operation: str, resource: str | None, result: str) -> None:
        with self._db.transaction() as session:
            session.execute(_INSERT, {"at": self._clock.now(), "principal": caller.principal, "operation": operation,
                                      "resource": resource[:300] if resource else None, "result": result[:128]})
