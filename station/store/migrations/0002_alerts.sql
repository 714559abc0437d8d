-- Alerts: raised by operators, processes and the mesh; one unresolved alert per dedup key.
CREATE TABLE alerts (
    id               TEXT PRIMARY KEY,
    severity         TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    title            TEXT NOT NULL,
    message          TEXT NOT NULL DEFAULT '',
    source           TEXT NOT NULL,             -- 'operator', 'process:<id>', 'mesh', ...
    node_id          TEXT,                      -- the mesh node it is about: '!a1b2c3d4'
    dedup_key        TEXT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'acknowledged', 'resolved')),
    created_at       REAL NOT NULL,
    acknowledged_at  REAL,
    acknowledged_by  TEXT,
    resolved_at      REAL,
    resolved_by      TEXT,
    updated_at       REAL NOT NULL,
    occurrences      INTEGER NOT NULL DEFAULT 1 -- times raised: 1, +1 per duplicate folded in
);
CREATE INDEX alerts_status ON alerts (status, created_at);
-- A duplicate folds into the unresolved alert with its key; the index makes a second one impossible.
CREATE UNIQUE INDEX alerts_unresolved_dedup ON alerts (dedup_key)
    WHERE dedup_key IS NOT NULL AND status != 'resolved';
