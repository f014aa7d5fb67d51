"""SQLite's WAL checkpoints are taken by certsmith's own thread, never inside a writer's commit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from certsmith.store.database import Database, migrate
from certsmith.store.tables import Base

AUDIT = Base.metadata.tables["audit_log"]


def rows(count: int, start: int) -> list[dict[str, object]]:
    return [{"at": datetime.now(UTC), "principal": f"p{start + n}", "operation": "IssueCertificate",
             "resource": "r" * 290, "result": "Success"} for n in range(count)]


def checkpointers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "certsmith-checkpoint"]


def test_writes_are_checkpointed_by_the_thread_not_by_the_commits(tmp_path: Path) -> None:
    path = tmp_path / "certsmith.db"
    migrate(f"sqlite:///{path}")
    database = Database(f"sqlite:///{path}")
    before = len(checkpointers())
    try:
        with database.connection() as connection:
            assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        size = path.stat().st_size
        for batch in range(40):  # about 4 MB, four times SQLite's automatic threshold
            with database.connection() as connection:
                database.bulk.insert(connection, AUDIT, rows(250, batch * 250), ids=False)
        assert len(checkpointers()) == before + 1
        deadline = time.monotonic() + 5
        while path.stat().st_size <= size + 2_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > size + 2_000_000, "the rows never left the write-ahead log"
    finally:
        database.dispose()
    assert len(checkpointers()) == before


def test_a_database_written_after_dispose_checkpoints_again(tmp_path: Path) -> None:
    path = tmp_path / "certsmith.db"
    migrate(f"sqlite:///{path}")
    database = Database(f"sqlite:///{path}")
    before = len(checkpointers())
    with database.connection() as connection:
        database.bulk.insert(connection, AUDIT, rows(1, 0), ids=False)
    database.dispose()
    assert len(checkpointers()) == before
    with database.connection() as connection:  # SQLAlchemy engines may be used again after dispose()
        database.bulk.insert(connection, AUDIT, rows(1, 1), ids=False)
    assert len(checkpointers()) == before + 1
    database.dispose()
