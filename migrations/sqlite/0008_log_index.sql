-- The register's search index (GET /v1/log/search): one row per log_entries row, same idx, holding the
-- fields an auditor filters on (src/entry_fields.rs says which entry field each one is). The store writes
-- a row in the same transaction as its entry; this migration backfills the entries written before it with
-- the same rules in SQL. Each filter has an index whose order, after the filtered value, is idx (the rowid,
-- which every SQLite index carries last), so "newest first, before this cursor" is one index range scan.
-- Append-only like log_entries.
CREATE TABLE log_index (
    idx         INTEGER PRIMARY KEY,
    kind        TEXT,
    time_ms     INTEGER,
    actor       TEXT,
    registry    TEXT,
    repository  TEXT,
    digest      TEXT,
    key_id      TEXT,
    key_version INTEGER
) STRICT;

-- CAST(entry AS TEXT): SQLite's json functions read a BLOB as its binary JSONB; entries are JSON text.
INSERT INTO log_index (idx, kind, time_ms, actor, registry, repository, digest, key_id, key_version)
SELECT idx, kind,
       CASE WHEN json_type(j, '$.time') = 'text'
                 AND json_extract(j, '$.time') GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][Tt]*'
            THEN CAST(round((julianday(json_extract(j, '$.time')) - 2440587.5) * 86400000.0) AS INTEGER) END,
       CASE WHEN json_type(j, '$.actor.name') = 'text' THEN json_extract(j, '$.actor.name') END,
       CASE WHEN json_type(j, '$.subject.registry') = 'text' THEN json_extract(j, '$.subject.registry') END,
       CASE WHEN json_type(j, '$.subject.repository') = 'text' THEN json_extract(j, '$.subject.repository') END,
       CASE WHEN json_type(j, '$.subject.digest') = 'text' THEN json_extract(j, '$.subject.digest') END,
       CASE WHEN kind IN ('sign', 'attest') AND json_type(j, '$.details.key') = 'text'
                 THEN json_extract(j, '$.details.key')
            WHEN kind IN ('key-added', 'key-rotated') AND json_type(j, '$.subject.key') = 'text'
                 THEN json_extract(j, '$.subject.key') END,
       CASE WHEN kind IN ('sign', 'attest') AND json_type(j, '$.details.key_version') = 'integer'
                 THEN json_extract(j, '$.details.key_version')
            WHEN kind IN ('key-added', 'key-rotated') AND json_type(j, '$.subject.version') = 'integer'
                 THEN json_extract(j, '$.subject.version') END
FROM (
    SELECT idx, j, CASE WHEN json_type(j, '$.kind') = 'text' THEN json_extract(j, '$.kind') END AS kind
    FROM (
        SELECT idx, CASE WHEN json_valid(CAST(entry AS TEXT)) AND json_type(CAST(entry AS TEXT)) = 'object'
                         THEN CAST(entry AS TEXT) ELSE '{}' END AS j
        FROM log_entries
    )
);

CREATE INDEX log_index_kind ON log_index (kind);
CREATE INDEX log_index_time ON log_index (time_ms);
CREATE INDEX log_index_actor ON log_index (actor);
CREATE INDEX log_index_repository ON log_index (repository);
CREATE INDEX log_index_digest ON log_index (digest);
CREATE INDEX log_index_key ON log_index (key_id);
CREATE INDEX log_index_key_version ON log_index (key_id, key_version);

CREATE TRIGGER log_index_no_update BEFORE UPDATE ON log_index
BEGIN SELECT RAISE(ABORT, 'the register is append-only'); END;
CREATE TRIGGER log_index_no_delete BEFORE DELETE ON log_index
BEGIN SELECT RAISE(ABORT, 'the register is append-only'); END;
