-- Verdict attachments claimed across replicas (docs/FORMATS.md §27): one row per image repository, digest,
-- policy version and result whose verdict a replica attached or is attaching. The primary key is the claim:
-- of two replicas deciding the same image at once, one inserts the row and attaches, the other attaches
-- nothing. A claim never marked attached (its attach failed, or its replica died) is taken over once stale.
CREATE TABLE verdict_attachments (
    registry        TEXT NOT NULL,     -- canonical host
    repository      TEXT NOT NULL,
    digest          TEXT NOT NULL,
    policy_version  TEXT NOT NULL,     -- '' for a decision no policy governed
    allowed         BIGINT NOT NULL,   -- 1 allowed, 0 denied
    claimed_ms      BIGINT NOT NULL,   -- Unix milliseconds of the (latest) claim
    attached        BIGINT NOT NULL DEFAULT 0,  -- 1 once the verdict's attest is logged
    PRIMARY KEY (registry, repository, digest, policy_version, allowed)
);
