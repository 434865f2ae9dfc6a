//! notarium: container-image signing and supply-chain attestation whose keys never leave their backend.
//!
//! The crate is laid out by concern; `ARCHITECTURE.md` at the top of the repository is the map.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error_chain;
pub mod formats;
pub mod http_body;
pub mod keys;
pub mod metrics;
pub mod oci;
pub mod policy;
pub mod register;
pub mod service;
pub mod store;
