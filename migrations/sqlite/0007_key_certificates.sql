-- Certificates that notarium's [ca] issued to its signing keys, and the CA's own certificate when notarium
-- made it self-signed. Public material only (certificates, never a key). Kept here rather than made again
-- at each start so that every replica on one database serves the same chains and a restart issues nothing.
-- A renewal adds a row: the chain in force for a key version is the one with the latest not_after (the
-- lowest id among equals); for the CA's self-signed certificate, the first row, so replicas agree on it.
CREATE TABLE key_certificates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id      TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    issuer_key  TEXT NOT NULL,  -- the [ca] key that signed the leaf (its own id for a self-signed CA)
    chain_pem   TEXT NOT NULL,  -- leaf first, ending with the self-signed root
    not_after   BIGINT NOT NULL, -- Unix seconds: the earliest notAfter in the chain
    issued_at   TEXT NOT NULL   -- RFC 3339 UTC
);
CREATE INDEX key_certificates_by_key ON key_certificates (key_id, key_version);
