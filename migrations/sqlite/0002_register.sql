-- The register: leaf i is entry i (RFC 8785 canonical JSON bytes). log_nodes holds the hash of every perfect
-- subtree (2^level leaves, number idx from the left), so roots and proofs are O(log n) reads, never a
-- re-hash of the log. Both tables are append-only; the triggers refuse edits made through SQL.
CREATE TABLE log_entries (
    idx        INTEGER PRIMARY KEY,
    entry      BLOB    NOT NULL,
    leaf_hash  BLOB    NOT NULL
) STRICT;

CREATE TABLE log_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER log_entries_no_update BEFORE UPDATE ON log_entries
BEGIN SELECT RAISE(ABORT, 'the register is append-only'); END;
CREATE TRIGGER log_entries_no_delete BEFORE DELETE ON log_entries
BEGIN SELECT RAISE(ABORT, 'the register is append-only'); END;
CREATE TRIGGER log_nodes_no_update BEFORE UPDATE ON log_nodes
BEGIN SELECT RAISE(ABORT, 'the register is append-only'); END;
CREATE TRIGGER log_nodes_no_delete BEFORE DELETE ON log_nodes
BEGIN SELECT RAISE(ABORT, 'the register is append-only'); END;
