-- Key version revocations (docs/FORMATS.md §25): one row per revoked key version, written after its
-- `key-revoked` register entry. Every replica reads this table on each verify, so a revocation made on one
-- is in force on all. Append-only: a revocation is never lifted or changed.
CREATE TABLE key_revocations (
    key_id             TEXT NOT NULL,
    key_version        INTEGER NOT NULL,
    compromised_at     TEXT,             -- RFC 3339, as given; NULL: every signature by the version is refused
    compromised_at_ms  INTEGER,          -- the same instant in Unix milliseconds
    reason             TEXT NOT NULL,
    revoked_at         TEXT NOT NULL,    -- RFC 3339, the key-revoked entry's time
    actor              TEXT NOT NULL,
    log_index          INTEGER NOT NULL, -- the key-revoked entry
    PRIMARY KEY (key_id, key_version)
) STRICT;

CREATE TRIGGER key_revocations_no_update BEFORE UPDATE ON key_revocations
BEGIN SELECT RAISE(ABORT, 'key revocations are append-only'); END;
CREATE TRIGGER key_revocations_no_delete BEFORE DELETE ON key_revocations
BEGIN SELECT RAISE(ABORT, 'key revocations are append-only'); END;
