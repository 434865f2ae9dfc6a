-- Witness cosignatures (C2SP tlog-cosignature/v1) on the register's checkpoints: one row per line a
-- configured witness returned for a tree size, kept only after it verified against that witness's vkey.
-- `line` is the note signature line exactly as served (U+2014, name, base64, final newline). Append-only:
-- the triggers refuse edits made through SQL, TRUNCATE included.
CREATE TABLE witness_cosignatures (
    id          BIGSERIAL PRIMARY KEY,
    tree_size   BIGINT NOT NULL,
    root_hash   BYTEA  NOT NULL,
    witness     TEXT   NOT NULL,  -- the witness's key name
    vkey        TEXT   NOT NULL,  -- the verifier key it verified against
    cosigned_at BIGINT NOT NULL,  -- the cosignature's timestamp (Unix seconds, the witness's clock)
    line        TEXT   NOT NULL,
    received_at TEXT   NOT NULL   -- RFC 3339 UTC
);
CREATE INDEX witness_cosignatures_by_size ON witness_cosignatures (tree_size);

CREATE FUNCTION witness_cosignatures_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'witness cosignatures are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER witness_cosignatures_append_only BEFORE UPDATE OR DELETE ON witness_cosignatures
    FOR EACH ROW EXECUTE FUNCTION witness_cosignatures_append_only();
CREATE TRIGGER witness_cosignatures_no_truncate BEFORE TRUNCATE ON witness_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION witness_cosignatures_append_only();
