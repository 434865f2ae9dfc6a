-- API tokens. The token itself is shown once, when it is made; only the SHA-256 of it is kept, so a copy of
-- this table lets no one call the API. `id` is the token's public part, used to list and revoke it.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('signer', 'verifier', 'auditor', 'admin')),
    repos         TEXT NOT NULL,  -- JSON array of repository globs (signer)
    keys          TEXT NOT NULL,  -- JSON array of key ids (signer)
    description   TEXT,
    created_at    TEXT NOT NULL,  -- RFC 3339 UTC
    expires_at    TEXT,           -- RFC 3339 UTC; NULL: never
    revoked_at    TEXT            -- RFC 3339 UTC; NULL: in force
);
