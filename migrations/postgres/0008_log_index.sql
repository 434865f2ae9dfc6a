-- The register's search index (GET /v1/log/search): one row per log_entries row, same idx, holding the
-- fields an auditor filters on (src/entry_fields.rs says which entry field each one is). The store writes
-- a row in the same transaction as its entry; this migration backfills the entries written before it with
-- the same rules in SQL. Each filter has a (value, idx) index, so "newest first, before this cursor" is one
-- index range scan. Append-only like log_entries, TRUNCATE included.
CREATE TABLE log_index (
    idx         BIGINT PRIMARY KEY,
    kind        TEXT,
    time_ms     BIGINT,
    actor       TEXT,
    registry    TEXT,
    repository  TEXT,
    digest      TEXT,
    key_id      TEXT,
    key_version BIGINT
);

-- The backfill's helpers, dropped at the end: an entry that is not UTF-8 JSON, or a time that is not a
-- date-time PostgreSQL reads, gives NULL rather than failing the migration.
CREATE FUNCTION log_index_json(entry BYTEA) RETURNS JSONB LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_from(entry, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

CREATE FUNCTION log_index_time_ms(t JSONB) RETURNS BIGINT LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(t) IS DISTINCT FROM 'string' OR (t #>> '{}') !~ '^\d{4}-\d\d-\d\d[Tt]' THEN
        RETURN NULL;
    END IF;
    RETURN round(extract(epoch FROM (t #>> '{}')::timestamptz) * 1000)::bigint;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

CREATE FUNCTION log_index_text(v JSONB) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' END
$$;

CREATE FUNCTION log_index_integer(v JSONB) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' AND (v #>> '{}') ~ '^-?\d{1,18}$' THEN (v #>> '{}')::bigint END
$$;

INSERT INTO log_index (idx, kind, time_ms, actor, registry, repository, digest, key_id, key_version)
SELECT idx, kind,
       log_index_time_ms(j -> 'time'),
       log_index_text(j -> 'actor' -> 'name'),
       log_index_text(j -> 'subject' -> 'registry'),
       log_index_text(j -> 'subject' -> 'repository'),
       log_index_text(j -> 'subject' -> 'digest'),
       CASE WHEN kind IN ('sign', 'attest') THEN log_index_text(j -> 'details' -> 'key')
            WHEN kind IN ('key-added', 'key-rotated') THEN log_index_text(j -> 'subject' -> 'key') END,
       CASE WHEN kind IN ('sign', 'attest') THEN log_index_integer(j -> 'details' -> 'key_version')
            WHEN kind IN ('key-added', 'key-rotated') THEN log_index_integer(j -> 'subject' -> 'version') END
FROM (
    SELECT idx, j, log_index_text(j -> 'kind') AS kind
    FROM (
        SELECT idx, CASE WHEN jsonb_typeof(parsed) = 'object' THEN parsed END AS j
        FROM (SELECT idx, log_index_json(entry) AS parsed FROM log_entries) AS raw
    ) AS parsed
) AS entries;

DROP FUNCTION log_index_json(BYTEA);
DROP FUNCTION log_index_time_ms(JSONB);
DROP FUNCTION log_index_text(JSONB);
DROP FUNCTION log_index_integer(JSONB);

CREATE INDEX log_index_kind ON log_index (kind, idx);
CREATE INDEX log_index_time ON log_index (time_ms, idx);
CREATE INDEX log_index_actor ON log_index (actor, idx);
CREATE INDEX log_index_repository ON log_index (repository, idx);
CREATE INDEX log_index_digest ON log_index (digest, idx);
CREATE INDEX log_index_key ON log_index (key_id, idx);
CREATE INDEX log_index_key_version ON log_index (key_id, key_version, idx);

CREATE TRIGGER log_index_append_only BEFORE UPDATE OR DELETE ON log_index
    FOR EACH ROW EXECUTE FUNCTION register_append_only();
CREATE TRIGGER log_index_no_truncate BEFORE TRUNCATE ON log_index
    FOR EACH STATEMENT EXECUTE FUNCTION register_append_only();
