-- Deploys to boards: a config change or a file, queued until the board is connected, resumed
-- after a broken link or a station restart from what the board reports it already holds.
CREATE TABLE board_deploys (
    id          TEXT PRIMARY KEY,
    board_id    TEXT NOT NULL REFERENCES boards (id),
    kind        TEXT NOT NULL CHECK (kind IN ('config', 'file')),
    path        TEXT,                       -- file: the path under the board's files root
    size        INTEGER NOT NULL,           -- file: bytes; config: bytes of its JSON
    sha256      TEXT NOT NULL,              -- hex; file: the content, spooled under <data>/boards/deploys
    config      TEXT,                       -- config: the JSON map of options to write
    state       TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'done', 'failed', 'cancelled')),
    sent        INTEGER NOT NULL DEFAULT 0, -- bytes the board acknowledged
    attempts    INTEGER NOT NULL DEFAULT 0, -- link sessions the deploy was sent over
    error       TEXT,
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX board_deploys_board ON board_deploys (board_id, created_at);
CREATE INDEX board_deploys_open ON board_deploys (state) WHERE state IN ('queued', 'sending');

-- Log lines and errors a board sent over its authenticated session; pruned per board.
CREATE TABLE board_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of arrival; `--follow` reads after it
    board_id    TEXT NOT NULL,
    level       TEXT NOT NULL,                      -- debug, info, warning, error
    message     TEXT NOT NULL,
    board_ts    INTEGER,                            -- the board's clock, when it has one
    received_at REAL NOT NULL
);
CREATE INDEX board_logs_board ON board_logs (board_id, id);
