-- Console accounts, browser sessions, API tokens and sign-in records (the embedded backend
-- keeps them in console.sqlite3), and the events outbox (events.sqlite3). Same columns and
-- meaning as there; `user` is a reserved word here, so the account column is `user_name`.
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_name);
CREATE TABLE IF NOT EXISTS api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_active_name
    ON api_tokens (name) WHERE revoked_ms IS NULL;
CREATE TABLE IF NOT EXISTS login_failures (
    id        BIGSERIAL PRIMARY KEY,
    user_name TEXT NOT NULL,
    address   TEXT NOT NULL,
    at_ms     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_by_user ON login_failures (user_name, at_ms);
CREATE TABLE IF NOT EXISTS sign_ins (
    user_name   TEXT PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    address     TEXT NOT NULL,
    previous_ms BIGINT
);
CREATE TABLE IF NOT EXISTS login_devices (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_ms    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    seq      BIGSERIAL PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    type     TEXT NOT NULL,
    instance TEXT NOT NULL,
    time_ms  BIGINT NOT NULL,
    data     TEXT NOT NULL,
    dedupe   TEXT,
    UNIQUE (instance, dedupe)
);
CREATE TABLE IF NOT EXISTS webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
-- `lease_until_ms`: a node sending this delivery holds it until then; another node takes it
-- over only after, so each delivery goes out once in the normal case and again (at least
-- once) when the node sending it died.
CREATE TABLE IF NOT EXISTS deliveries (
    webhook        TEXT NOT NULL,
    event_seq      BIGINT NOT NULL,
    instance       TEXT NOT NULL,
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_ms        BIGINT NOT NULL,
    created_ms     BIGINT NOT NULL,
    last_status    INTEGER,
    last_error     TEXT,
    done_ms        BIGINT,
    lease_until_ms BIGINT,
    PRIMARY KEY (webhook, event_seq)
);
CREATE INDEX IF NOT EXISTS deliveries_heads
    ON deliveries (state, webhook, instance, event_seq);
CREATE TABLE IF NOT EXISTS attempts (
    webhook     TEXT NOT NULL,
    event_seq   BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    status      INTEGER,
    error       TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (webhook, event_seq);
