-- A sign writes up to three artifacts for one digest (cosign's `.sig` layer, a Sigstore bundle referrer, a
-- Notary Project signature referrer) under one row: `artifacts` is the JSON array of them (docs/FORMATS.md §11),
-- planned while pending and, once confirmed, the ones the registry holds. Empty for rows written before.
ALTER TABLE signatures ADD COLUMN artifacts TEXT NOT NULL DEFAULT '[]';
