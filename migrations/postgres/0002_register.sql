-- The register: leaf i is entry i (RFC 8785 canonical JSON bytes). log_nodes holds the hash of every perfect
-- subtree (2^level leaves, number idx from the left), so roots and proofs are O(log n) reads, never a
-- re-hash of the log. Both tables are append-only; the triggers refuse edits made through SQL, TRUNCATE
-- included (it fires no row triggers, so it has statement triggers of its own).
CREATE TABLE log_entries (
    idx        BIGINT PRIMARY KEY,
    entry      BYTEA  NOT NULL,
    leaf_hash  BYTEA  NOT NULL
);

CREATE TABLE log_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA  NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE FUNCTION register_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the register is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER log_entries_append_only BEFORE UPDATE OR DELETE ON log_entries
    FOR EACH ROW EXECUTE FUNCTION register_append_only();
CREATE TRIGGER log_entries_no_truncate BEFORE TRUNCATE ON log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION register_append_only();
CREATE TRIGGER log_nodes_append_only BEFORE UPDATE OR DELETE ON log_nodes
    FOR EACH ROW EXECUTE FUNCTION register_append_only();
CREATE TRIGGER log_nodes_no_truncate BEFORE TRUNCATE ON log_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION register_append_only();
