-- Firefly processes: definitions (versioned), triggers, actions, executions, steps, logs, templates.
CREATE TABLE processes (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    description        TEXT,
    template_id        TEXT,
    created_by         TEXT,
    created_at         REAL NOT NULL,
    updated_at         REAL NOT NULL,
    is_active          INTEGER NOT NULL DEFAULT 1,
    version            INTEGER NOT NULL DEFAULT 1,
    execution_count    INTEGER NOT NULL DEFAULT 0,
    last_executed      REAL
);

-- Every version of a definition, so an execution resumes on the version it started with.
CREATE TABLE process_versions (
    process_id   TEXT NOT NULL REFERENCES processes (id),
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,             -- JSON, validated
    created_at   REAL NOT NULL,
    PRIMARY KEY (process_id, version)
);

CREATE TABLE process_triggers (
    id             TEXT PRIMARY KEY,
    process_id     TEXT NOT NULL REFERENCES processes (id),
    trigger_type   TEXT NOT NULL,
    trigger_config TEXT NOT NULL,           -- JSON
    conditions     TEXT,                    -- JSON condition tree
    priority       INTEGER NOT NULL DEFAULT 0,
    is_active      INTEGER NOT NULL DEFAULT 1,
    created_at     REAL NOT NULL
);
CREATE INDEX process_triggers_type ON process_triggers (trigger_type, is_active);

CREATE TABLE process_actions (
    id              TEXT PRIMARY KEY,
    process_id      TEXT NOT NULL REFERENCES processes (id),
    action_path     TEXT NOT NULL,          -- '2', or '3.b0.1' inside a parallel group
    action_type     TEXT NOT NULL,
    action_config   TEXT NOT NULL,          -- JSON
    conditions      TEXT,
    action_order    INTEGER NOT NULL,
    timeout_seconds REAL NOT NULL,
    retry_count     INTEGER NOT NULL,
    created_at      REAL NOT NULL
);

CREATE TABLE process_executions (
    id                  TEXT PRIMARY KEY,
    process_id          TEXT NOT NULL REFERENCES processes (id),
    process_version     INTEGER NOT NULL,
    triggered_by        TEXT NOT NULL,      -- 'system', 'schedule', a token name, 'process:<id>'
    trigger_type        TEXT NOT NULL,
    trigger_event       TEXT NOT NULL,      -- JSON
    chain_depth         INTEGER NOT NULL DEFAULT 0,
    parent_execution_id TEXT,
    parent_step_path    TEXT,
    status              TEXT NOT NULL CHECK (status IN
                          ('pending', 'running', 'completed', 'failed', 'skipped', 'timeout')),
    error_message       TEXT,
    started_at          REAL NOT NULL,
    completed_at        REAL,
    execution_time_ms   REAL,
    steps_completed     INTEGER NOT NULL DEFAULT 0,
    total_steps         INTEGER NOT NULL,
    variables           TEXT NOT NULL DEFAULT '{}',
    trace               TEXT                -- JSON: trigger match and condition results
);
CREATE INDEX process_executions_process ON process_executions (process_id, started_at);
CREATE INDEX process_executions_open ON process_executions (status) WHERE status IN ('pending', 'running');
CREATE UNIQUE INDEX process_executions_child ON process_executions (parent_execution_id, parent_step_path)
    WHERE parent_execution_id IS NOT NULL;

CREATE TABLE process_execution_steps (
    execution_id      TEXT NOT NULL REFERENCES process_executions (id),
    action_path       TEXT NOT NULL,
    action_type       TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped')),
    started_at        REAL,
    completed_at      REAL,
    input             TEXT,               -- JSON: the rendered config
    result            TEXT,               -- JSON
    error_message     TEXT,
    execution_time_ms REAL,
    retry_count       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, action_path)
);

CREATE TABLE process_execution_logs (
    execution_id  TEXT NOT NULL REFERENCES process_executions (id),
    seq           INTEGER NOT NULL,
    at            REAL NOT NULL,
    level         TEXT NOT NULL,
    message       TEXT NOT NULL,
    data          TEXT,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE process_templates (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT,
    category       TEXT NOT NULL,
    template_data  TEXT NOT NULL,         -- JSON process definition with {{ vars.* }} placeholders
    usage_count    INTEGER NOT NULL DEFAULT 0,
    created_by     TEXT,
    created_at     REAL NOT NULL,
    is_public      INTEGER NOT NULL DEFAULT 1,
    builtin        INTEGER NOT NULL DEFAULT 0
);

-- When each schedule trigger last fired, for catch-up after the station was off.
CREATE TABLE process_schedule_state (
    trigger_id    TEXT PRIMARY KEY,
    last_fire_at  REAL NOT NULL
);

-- Sends made by actions, keyed so a resumed step never sends twice.
ALTER TABLE outbox_messages ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX outbox_messages_idempotency ON outbox_messages (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
