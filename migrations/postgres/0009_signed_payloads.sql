-- The exact bytes each recorded signature is over, content-addressed by their digest: a simple-signing
-- payload (the `payload_digest` of a `sign` entry) or a DSSE envelope (the `envelope_digest` of an `attest`
-- entry). Written in the same transaction as the pending signature row, so an evidence pack can carry them
-- and an auditor re-check every signature offline. Append-only like the register.
CREATE TABLE signed_payloads (
    digest  TEXT  PRIMARY KEY,
    payload BYTEA NOT NULL
);

CREATE TRIGGER signed_payloads_append_only BEFORE UPDATE OR DELETE ON signed_payloads
    FOR EACH ROW EXECUTE FUNCTION register_append_only();
CREATE TRIGGER signed_payloads_no_truncate BEFORE TRUNCATE ON signed_payloads
    FOR EACH STATEMENT EXECUTE FUNCTION register_append_only();
