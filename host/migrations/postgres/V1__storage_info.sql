-- Facts about this database's contents, e.g. which embedded data directory
-- `passerelle storage migrate` copied into it, and when.
CREATE TABLE IF NOT EXISTS storage_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
