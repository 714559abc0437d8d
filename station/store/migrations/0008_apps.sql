-- WebAssembly apps: trusted signing keys, apps and their versions, the lifecycle history and
-- each app's own key-value store.
CREATE TABLE app_keys (
    key_id      TEXT PRIMARY KEY,            -- first 16 hex chars of sha256(raw 32-byte Ed25519 key)
    name        TEXT NOT NULL,               -- who signs with it: "field-team", "vendor"
    public_key  BLOB NOT NULL UNIQUE,        -- raw 32 bytes
    added_by    TEXT NOT NULL,
    added_at    REAL NOT NULL
);

CREATE TABLE apps (
    name            TEXT PRIMARY KEY,
    active_version  TEXT,                    -- the version that runs (NULL: none deployed successfully)
    desired         TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

CREATE TABLE app_versions (
    app          TEXT NOT NULL REFERENCES apps (name),
    version      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN
                   ('uploaded', 'validated', 'deployed', 'loaded', 'running', 'stopped', 'failed', 'superseded',
                    'rolled_back')),
    module_sha256 TEXT NOT NULL,             -- the module under <data>/apps/modules/<sha256>.wasm
    manifest     TEXT NOT NULL,              -- the manifest JSON as signed
    signature    BLOB,                       -- NULL: unsigned (only with [wasm] allow_unsigned)
    key_id       TEXT,
    error        TEXT,                       -- why it failed, when it did
    deployed_by  TEXT NOT NULL,
    deployed_at  REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (app, version)
);

CREATE TABLE app_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    app      TEXT NOT NULL,
    version  TEXT,
    kind     TEXT NOT NULL,                  -- state changes (upload, validate, deploy, load, start, stop, fail,
                                             -- rollback, remove) and app log lines (log)
    level    TEXT NOT NULL DEFAULT 'info',
    message  TEXT NOT NULL,
    at       REAL NOT NULL
);
CREATE INDEX app_events_app ON app_events (app, id);

CREATE TABLE app_kv (
    app    TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (app, key)
);
