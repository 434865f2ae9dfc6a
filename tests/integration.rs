//! The integration tests, one binary: each module is one area, run against the real components
//! `support` starts (registry, skopeo, cosign, SoftHSM2, OpenBao, PostgreSQL and `notarium serve` itself).
//! The areas that touch the database live under `db`, so `cargo test --test integration db::` with
//! `NOTARIUM_TEST_DATABASE=postgres` runs them again on PostgreSQL.

#![allow(clippy::unwrap_used)]

mod support;

mod admission;
mod api_document;
mod api_fuzz;
mod attest_interop;
mod auditor_path;
mod canonical_names;
mod ci_tokens;
mod cli_conventions;
mod cli_first_hour;
mod cli_version;
mod container_image;
mod cosign3;
mod db;
mod deploy;
mod deploy_systemd;
mod differential;
mod egress;
mod evidence;
mod hygiene;
mod key_certificates;
mod key_compromise;
mod keyless;
mod keys_pkcs11;
mod keys_vault;
mod multiarch;
mod notation_crl;
mod notation_eku;
mod notation_sign;
mod notation_tools;
mod notation_tsa;
mod notation_verify;
mod operations;
mod pkcs11_recovery;
mod policy_dry_run;
mod postgres_shared;
mod public_routes;
mod referrers_oci;
mod registry_auth;
mod registry_turns;
mod report;
mod sign_on_push;
mod sign_requests;
mod sigstore_conformance;
mod tiles;
mod ui;
mod verdicts;
mod verify_binding;
mod verify_bounds;
mod witness;
