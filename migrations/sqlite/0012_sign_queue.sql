-- The sign-on-push queue (docs/FORMATS.md §26): one job per pushed manifest and [[sign_on_push]] rule, in
-- repository, digest and rule, so a registry's retried or repeated push, or a second replica, adds nothing.
-- A worker claims a job by writing its lease; a lease that runs out (the worker died) frees the job again.
CREATE TABLE sign_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT NOT NULL,    -- the [[sign_on_push]] rule's name
    registry        TEXT NOT NULL,    -- canonical host
    repository      TEXT NOT NULL,
    digest          TEXT NOT NULL,    -- the pushed manifest
    tag             TEXT NOT NULL,    -- the tag the push named (the signature's identity)
    key_ref         TEXT NOT NULL,    -- id or id@N
    state           TEXT NOT NULL CHECK (state IN ('pending', 'running', 'signed', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    reason          TEXT,             -- why the last attempt failed or waits, in notarium's words
    created_ms      BIGINT NOT NULL,  -- Unix milliseconds
    updated_ms      BIGINT NOT NULL,
    not_before_ms   BIGINT NOT NULL,  -- a pending job is not claimed before this (backoff)
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    log_index       BIGINT,           -- the register entry of the sign, once signed
    UNIQUE (registry, repository, digest, rule)
);
CREATE INDEX sign_jobs_ready ON sign_jobs (state, not_before_ms);
CREATE INDEX sign_jobs_digest ON sign_jobs (digest);
