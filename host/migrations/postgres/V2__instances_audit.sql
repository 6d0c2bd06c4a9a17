-- Instances (one row per configured instance of a plugin) and the audit history.
--
-- `plain` holds the plain values by field name; `sealed` the secret values by field name,
-- sealed with the host's key file exactly as the embedded TOML files keep them: the database
-- never sees a plain secret. `revision` grows by one with every change, on whichever node.
CREATE TABLE IF NOT EXISTS instances (
    id       TEXT PRIMARY KEY,
    plugin   TEXT NOT NULL,
    enabled  BOOLEAN NOT NULL DEFAULT FALSE,
    revision BIGINT NOT NULL CHECK (revision >= 1),
    plain    JSONB NOT NULL DEFAULT '{}'::jsonb,
    sealed   JSONB NOT NULL DEFAULT '{}'::jsonb
);

-- Appended only: who changed what, when (secret values never enter it).
CREATE TABLE IF NOT EXISTS audit (
    id       BIGSERIAL PRIMARY KEY,
    at_ms    BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    instance TEXT,
    field    TEXT,
    action   TEXT NOT NULL,
    old      TEXT,
    new      TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_instance ON audit (instance, id);
