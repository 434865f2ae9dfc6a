//! Certificates issued to notarium's signing keys by its `[ca]`, at rest: one row per issue, the chain as
//! PEM. Public material only.
//!
//! Owns: every statement on `key_certificates`. Must not touch: issuing or checking certificates (`pki`,
//! `service`).

use async_trait::async_trait;
use sqlx::Row;

use super::StoreError;
use super::sql::{Backend, sql_bounds};

/// One issued chain as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCertificateRecord {
    pub key_id: String,
    pub key_version: i64,
    /// The `[ca]` key that signed it; the key's own id for the CA's self-signed certificate.
    pub issuer_key: String,
    /// Leaf first, ending with the self-signed root.
    pub chain_pem: String,
    /// Unix seconds: the earliest notAfter in the chain.
    pub not_after: i64,
    /// RFC 3339 UTC.
    pub issued_at: String,
}

#[async_trait]
pub trait CertificateStore: Send + Sync {
    /// Adds an issued chain; earlier ones stay (the latest is in force).
    async fn add_key_certificate(&self, record: &KeyCertificateRecord) -> Result<(), StoreError>;
    /// The chain in force for `key_id`'s `version`: the latest notAfter, the first added among equals.
    async fn key_certificate(&self, key_id: &str, version: i64) -> Result<Option<KeyCertificateRecord>, StoreError>;
    /// The first chain ever added for `key_id`'s `version` (the CA's self-signed certificate, which every
    /// replica must agree on however many raced to make one).
    async fn first_key_certificate(
        &self,
        key_id: &str,
        version: i64,
    ) -> Result<Option<KeyCertificateRecord>, StoreError>;
}

const SELECT: &str = "SELECT key_id, key_version, issuer_key, chain_pem, not_after, issued_at FROM key_certificates \
                      WHERE key_id = $1 AND key_version = $2";

sql_bounds! { backend [
    #[async_trait]
    impl<B: Backend> CertificateStore for B
] {
        async fn add_key_certificate(&self, r: &KeyCertificateRecord) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO key_certificates (key_id, key_version, issuer_key, chain_pem, not_after, issued_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(r.key_id.as_str())
            .bind(r.key_version)
            .bind(r.issuer_key.as_str())
            .bind(r.chain_pem.as_str())
            .bind(r.not_after)
            .bind(r.issued_at.as_str())
            .execute(self.pool())
            .await?;
            Ok(())
        }

        async fn key_certificate(&self, key_id: &str, version: i64) -> Result<Option<KeyCertificateRecord>, StoreError> {
            let sql = format!("{SELECT} ORDER BY not_after DESC, id ASC LIMIT 1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key_id).bind(version).fetch_optional(self.pool()).await?;
            Ok(row.as_ref().map(record))
        }

        async fn first_key_certificate(
            &self,
            key_id: &str,
            version: i64,
        ) -> Result<Option<KeyCertificateRecord>, StoreError> {
            let sql = format!("{SELECT} ORDER BY id ASC LIMIT 1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key_id).bind(version).fetch_optional(self.pool()).await?;
            Ok(row.as_ref().map(record))
        }
}}

sql_bounds! { row [
    fn record<R: Row>(row: &R) -> KeyCertificateRecord
] {
        KeyCertificateRecord {
            key_id: row.get("key_id"),
            key_version: row.get("key_version"),
            issuer_key: row.get("issuer_key"),
            chain_pem: row.get("chain_pem"),
            not_after: row.get("not_after"),
            issued_at: row.get("issued_at"),
        }
}}
