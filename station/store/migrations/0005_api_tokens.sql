-- API tokens with permissions (the admin token in <data_dir>/admin.token has them all).
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,   -- the token itself is shown once and never stored
    permissions  TEXT NOT NULL,          -- JSON list, e.g. ["processes:view"]
    created_at   REAL NOT NULL,
    revoked_at   REAL
);
