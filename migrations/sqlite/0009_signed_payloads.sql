-- The exact bytes each recorded signature is over, content-addressed by their digest: a simple-signing
-- payload (the `payload_digest` of a `sign` entry) or a DSSE envelope (the `envelope_digest` of an `attest`
-- entry). Written in the same transaction as the pending signature row, so an evidence pack can carry them
-- and an auditor re-check every signature offline. Append-only like the register.
CREATE TABLE signed_payloads (
    digest  TEXT PRIMARY KEY,
    payload BLOB NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TRIGGER signed_payloads_no_update BEFORE UPDATE ON signed_payloads
BEGIN SELECT RAISE(ABORT, 'signed payloads are append-only'); END;
CREATE TRIGGER signed_payloads_no_delete BEFORE DELETE ON signed_payloads
BEGIN SELECT RAISE(ABORT, 'signed payloads are append-only'); END;
