-- Boards: enrolled boards, every certificate issued to them, and one-time enrollment codes.
CREATE TABLE boards (
    id               TEXT PRIMARY KEY,          -- the board's own id, the certificate's CN
    profile          TEXT NOT NULL,             -- a board profile: 'esp32', 'rp2040', ...
    public_key       BLOB NOT NULL,             -- Ed25519, 32 bytes, checked against small order
    cert_serial      INTEGER NOT NULL,          -- the latest certificate issued to it
    cert_not_before  REAL NOT NULL,
    cert_not_after   REAL NOT NULL,
    state            TEXT NOT NULL CHECK (state IN
                       ('connecting', 'enrolling', 'enrolled', 'connected', 'stale', 'offline', 'revoked')),
    enrolled_at      REAL NOT NULL,             -- the latest (re-)enrollment
    last_seen        REAL,                      -- station clock, written at most once a minute
    revoked_at       REAL,
    revoked_reason   TEXT,
    revoked_by       TEXT,
    agent_version    TEXT,
    firmware_version TEXT,
    platform         TEXT,
    capabilities     TEXT NOT NULL DEFAULT '[]', -- JSON list of texts, from the board's hello
    updated_at       REAL NOT NULL
);
CREATE INDEX boards_state ON boards (state, id);
-- Two active boards with one key are a cloned image; the enrollment refuses the second.
CREATE UNIQUE INDEX boards_active_key ON boards (public_key) WHERE state != 'revoked';

-- Every certificate issued, kept for audit and so that a board that missed its renewed
-- certificate can still connect with the previous one (same key, not expired).
CREATE TABLE board_certificates (
    id          TEXT PRIMARY KEY,
    serial      INTEGER NOT NULL UNIQUE,
    board_id    TEXT NOT NULL REFERENCES boards (id),
    public_key  BLOB NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('enroll', 'reenroll', 'renew')),
    not_before  REAL NOT NULL,
    not_after   REAL NOT NULL,
    der         BLOB NOT NULL,
    issued_at   REAL NOT NULL
);
CREATE INDEX board_certificates_board ON board_certificates (board_id, issued_at);

CREATE TABLE board_enrollment_codes (
    id                TEXT PRIMARY KEY,
    code_mac          TEXT NOT NULL UNIQUE,     -- HMAC-SHA256 of the code; the code is shown once
    profile           TEXT,                     -- NULL: any profile
    reenroll_board_id TEXT,                     -- set: may only (re-)enroll this board
    created_by        TEXT NOT NULL,
    created_at        REAL NOT NULL,
    expires_at        REAL NOT NULL,
    used_at           REAL,
    used_by_board_id  TEXT
);
CREATE INDEX board_enrollment_codes_live ON board_enrollment_codes (expires_at) WHERE used_at IS NULL;
