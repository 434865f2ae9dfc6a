//! notarium: container-image signing and supply-chain attestation whose keys never leave their backend.
//!
//! The crate is laid out by concern; `ARCHITECTURE.md` at the top of the repository is the map.

// The order of these modules is the layering, top layer first: a module uses only modules listed after
// it, never one above it, so there are no cycles. Blank lines separate the layers (rustfmt keeps each
// group sorted by name). `scripts/module-graph.sh`, run by `.ci/run`, checks it.
pub mod cli;

pub mod api;

pub mod service;

pub mod auth;
pub mod oci;
pub mod policy;
pub mod register;
pub mod report;

pub mod config;

pub mod pki;

pub mod formats;
pub mod keys;

pub mod store;

pub mod entry_fields;
pub mod error_chain;
pub mod glob;
pub mod http_body;
pub mod local_file;
pub mod merkle;
pub mod metrics;
