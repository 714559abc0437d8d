from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from station.store.database import DatabaseCorrupt, DatabaseTooNew, migrations, open_database


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_database_is_wal_and_fully_migrated(tmp_path: Path) -> None:
    database = open_database(tmp_path / "station.db")
    assert database.schema_version() == migrations()[-1][0]
    assert database.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in database.connection.execute("SELECT name FROM sqlite_master")}
    assert {"mesh_nodes", "mesh_messages", "outbox_messages", "outbox_parts"} <= tables
    database.close()


def test_reopening_keeps_data_and_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "station.db"
    database = open_database(path)
    with database.transaction() as db:
        db.execute("INSERT INTO mesh_nodes (node_num, node_id, updated_at) VALUES (1, '!00000001', 0)")
    database.close()
    again = open_database(path)
    assert again.connection.execute("SELECT node_id FROM mesh_nodes").fetchone()[0] == "!00000001"
    again.close()


def test_corrupt_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "station.db"
    path.write_bytes(b"this is not a database" * 100)
    before = digest(path)
    with pytest.raises(DatabaseCorrupt, match="not modified"):
        open_database(path)
    assert digest(path) == before
    assert not (tmp_path / "station.db-wal").exists()


def test_newer_schema_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "station.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 999")
    connection.execute("CREATE TABLE future (x)")
    connection.commit()
    connection.close()
    before = digest(path)
    with pytest.raises(DatabaseTooNew) as caught:
        open_database(path)
    assert caught.value.found == 999
    assert digest(path) == before


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    database = open_database(tmp_path / "station.db")
    with pytest.raises(RuntimeError), database.transaction() as db:
        db.execute("INSERT INTO mesh_nodes (node_num, node_id, updated_at) VALUES (2, '!00000002', 0)")
        raise RuntimeError("boom")
    assert database.connection.execute("SELECT COUNT(*) FROM mesh_nodes").fetchone()[0] == 0
    database.close()
