-- Mesh link: the node database, the message log and the persistent outbox.
CREATE TABLE mesh_nodes (
    node_num      INTEGER PRIMARY KEY,
    node_id       TEXT NOT NULL,             -- '!a1b2c3d4'
    long_name     TEXT,
    short_name    TEXT,
    hw_model      TEXT,
    radio         TEXT,                      -- which of our radios heard it last
    last_heard    REAL,
    snr           REAL,
    rssi          INTEGER,
    hops_away     INTEGER,
    latitude      REAL,
    longitude     REAL,
    altitude      REAL,
    position_time REAL,
    battery_level INTEGER,
    voltage       REAL,
    updated_at    REAL NOT NULL
);

CREATE TABLE mesh_messages (
    id          TEXT PRIMARY KEY,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    radio       TEXT NOT NULL,
    packet_id   INTEGER,
    from_node   TEXT,
    to_node     TEXT,
    channel     INTEGER NOT NULL DEFAULT 0,
    portnum     TEXT NOT NULL,
    text        TEXT,
    snr         REAL,
    rssi        INTEGER,
    hops        INTEGER,
    created_at  REAL NOT NULL
);
CREATE INDEX mesh_messages_created ON mesh_messages (created_at);
CREATE UNIQUE INDEX mesh_messages_rx_dedup ON mesh_messages (radio, from_node, packet_id)
    WHERE direction = 'in' AND packet_id IS NOT NULL;

CREATE TABLE outbox_messages (
    id            TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL UNIQUE,   -- accept order: the dispatcher sends in this order
    to_node       TEXT NOT NULL,             -- '!a1b2c3d4' or 'broadcast'
    channel       INTEGER NOT NULL,
    text          TEXT NOT NULL,
    want_ack      INTEGER NOT NULL,
    radio         TEXT,                      -- NULL: any radio
    status        TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'delivered', 'failed', 'expired')),
    reason        TEXT,
    parts_total   INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    completed_at  REAL
);
CREATE INDEX outbox_messages_open ON outbox_messages (status, seq);

CREATE TABLE outbox_parts (
    message_id    TEXT NOT NULL REFERENCES outbox_messages (id),
    part_index    INTEGER NOT NULL,
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'inflight', 'acked', 'failed')),
    packet_id     INTEGER,
    radio         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    not_before    REAL NOT NULL DEFAULT 0,   -- retry after a NAK no earlier than this
    sent_at       REAL,
    acked_at      REAL,
    PRIMARY KEY (message_id, part_index)
);
CREATE INDEX outbox_parts_packet ON outbox_parts (packet_id);
