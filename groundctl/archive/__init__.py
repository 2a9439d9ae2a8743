"""The SQLite archive: one file per mission archive, WAL mode, versioned migrations.

Only this package touches SQLite. Times are stored as ISO 8601 UTC strings ending in Z
(`2026-05-14T03:04:05.123456Z`) so that the `sqlite3` shell, sqlite-utils and Datasette
show them as they are.
"""

from groundctl.archive.store import Archive, StoredTLESet, open_archive

__all__ = ["Archive", "StoredTLESet", "open_archive"]
