-- Every signature notarium writes to a registry. A row is 'pending' from just before the registry write
-- until the write is confirmed ('stored'); rows left pending by a crash are reconciled at start-up.
-- The same table as migrations/sqlite/0001 in PostgreSQL types.
CREATE TABLE signatures (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'stored')),
    actor           TEXT   NOT NULL,
    source_addr     TEXT,
    registry        TEXT   NOT NULL,
    repository      TEXT   NOT NULL,
    digest          TEXT   NOT NULL,
    identity        TEXT   NOT NULL,
    key_id          TEXT   NOT NULL,
    key_version     BIGINT NOT NULL,
    algorithm       TEXT   NOT NULL,
    payload_digest  TEXT   NOT NULL,
    signature_b64   TEXT   NOT NULL,
    signature_tag   TEXT   NOT NULL,
    manifest_digest TEXT,
    created_at      TEXT   NOT NULL
);

CREATE INDEX signatures_subject ON signatures (registry, repository, digest);
CREATE INDEX signatures_pending ON signatures (state) WHERE state = 'pending';
