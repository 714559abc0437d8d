-- Zones (geofences), node presence and node groups. Config-file zones have no row in `zones`
-- (the config owns them) but their memberships and crossings are kept like any other's.
CREATE TABLE zones (
    name        TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('circle', 'polygon')),
    center_lat  REAL,
    center_lon  REAL,
    radius_m    REAL,
    points      TEXT,                      -- polygon: JSON [[lat, lon], ...]
    description TEXT NOT NULL DEFAULT '',
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);

-- Who is inside which zone right now; a row per (zone, node), none when outside.
CREATE TABLE zone_members (
    zone        TEXT NOT NULL,             -- a config or API zone name (config zones have no row to reference)
    node_id     TEXT NOT NULL,             -- '!a1b2c3d4'
    entered_at  REAL NOT NULL,
    latitude    REAL NOT NULL,             -- the report that decided the entry
    longitude   REAL NOT NULL,
    PRIMARY KEY (zone, node_id)
);

CREATE TABLE zone_events (
    seq         INTEGER PRIMARY KEY,       -- cursor for readers
    id          TEXT NOT NULL UNIQUE,
    zone        TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('entered', 'exited')),
    latitude    REAL NOT NULL,
    longitude   REAL NOT NULL,
    at          REAL NOT NULL
);
CREATE INDEX zone_events_zone ON zone_events (zone, seq);

CREATE TABLE node_presence (
    node_id       TEXT PRIMARY KEY,
    source        TEXT NOT NULL CHECK (source IN ('packet', 'radio')),  -- how the station first learned of it
    first_seen_at REAL NOT NULL,
    last_heard_at REAL,                    -- station clock; NULL: its radio knew it, never heard when
    online        INTEGER NOT NULL,
    changed_at    REAL NOT NULL            -- the last online/offline transition
);

CREATE TABLE node_groups (
    node_id     TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    added_at    REAL NOT NULL,
    PRIMARY KEY (node_id, group_name)
);
CREATE INDEX node_groups_group ON node_groups (group_name, node_id);
