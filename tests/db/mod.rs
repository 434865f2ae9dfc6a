//! The areas that touch the database: SQLite by default, PostgreSQL with `NOTARIUM_TEST_DATABASE=postgres`
//! (`support::postgres`). scripts/test.sh runs this module twice, once on each.

mod auth;
mod batch_sign;
mod crash;
mod key_certificates;
mod policy_dry_run;
mod reconcile;
mod register_api;
mod register_events;
mod register_export;
mod register_search;
mod register_store;
mod sign_errors;
mod sign_interop;
mod sign_queue;
mod subject_locks;
mod verdict_claims;
mod verify_policy;
mod witness_store;
