-- Attestations written under the cosign `.att` tag go through the same pending/stored life as signatures, so a
-- crash between the registry write and the register entry is reconciled the same way. For an attestation,
-- identity holds the predicate type, payload_digest the digest of the DSSE envelope and signature_b64 its
-- signature.
ALTER TABLE signatures ADD COLUMN kind TEXT NOT NULL DEFAULT 'signature' CHECK (kind IN ('signature', 'attestation'));
