"""The station's SQLite store: opening, checking and migrating the database, and the
table-group modules (one per subsystem) that read and write it."""

from station.store.database import Database, StoreError, open_database

__all__ = ["Database", "StoreError", "open_database"]
