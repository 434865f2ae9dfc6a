-- Witness cosignatures (C2SP tlog-cosignature/v1) on the register's checkpoints: one row per line a
-- configured witness returned for a tree size, kept only after it verified against that witness's vkey.
-- `line` is the note signature line exactly as served (U+2014, name, base64, final newline). Append-only:
-- the triggers refuse edits made through SQL.
CREATE TABLE witness_cosignatures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size   INTEGER NOT NULL,
    root_hash   BLOB    NOT NULL,
    witness     TEXT    NOT NULL,  -- the witness's key name
    vkey        TEXT    NOT NULL,  -- the verifier key it verified against
    cosigned_at INTEGER NOT NULL,  -- the cosignature's timestamp (Unix seconds, the witness's clock)
    line        TEXT    NOT NULL,
    received_at TEXT    NOT NULL   -- RFC 3339 UTC
) STRICT;
CREATE INDEX witness_cosignatures_by_size ON witness_cosignatures (tree_size);

CREATE TRIGGER witness_cosignatures_no_update BEFORE UPDATE ON witness_cosignatures
BEGIN SELECT RAISE(ABORT, 'witness cosignatures are append-only'); END;
CREATE TRIGGER witness_cosignatures_no_delete BEFORE DELETE ON witness_cosignatures
BEGIN SELECT RAISE(ABORT, 'witness cosignatures are append-only'); END;
