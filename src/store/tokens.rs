//! API tokens at rest: their public id, the SHA-256 of the whole token, role and scope, and when they
//! expire or were revoked. The token itself is never stored.
//!
//! Owns: every statement on `api_tokens`. Must not touch: making or checking tokens (`auth`).

use async_trait::async_trait;
use sqlx::Row;

use super::StoreError;
use super::sql::{Backend, sql_bounds};

/// One token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub secret_sha256: String,
    pub role: String,
    pub repos: Vec<String>,
    pub keys: Vec<String>,
    pub description: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    async fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Every token, oldest first, revoked ones included.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Marks the token revoked at `at`; false when no such token is in force.
    async fn revoke_token(&self, id: &str, at: &str) -> Result<bool, StoreError>;
    /// How many tokens were ever made: once there is one, the API requires authentication.
    async fn count_tokens(&self) -> Result<i64, StoreError>;
}

const SELECT_TOKEN: &str =
    "SELECT id, secret_sha256, role, repos, keys, description, created_at, expires_at, revoked_at FROM api_tokens";

sql_bounds! { backend [
    #[async_trait]
    impl<B: Backend> TokenStore for B
] {
        async fn create_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO api_tokens (id, secret_sha256, role, repos, keys, description, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(t.id.as_str())
            .bind(t.secret_sha256.as_str())
            .bind(t.role.as_str())
            .bind(json_list(&t.repos).as_str())
            .bind(json_list(&t.keys).as_str())
            .bind(t.description.as_deref())
            .bind(t.created_at.as_str())
            .bind(t.expires_at.as_deref())
            .execute(self.pool())
            .await?;
            Ok(())
        }

        async fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
            let sql = format!("{SELECT_TOKEN} WHERE id = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
            row.as_ref().map(token_record).transpose()
        }

        async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
            let sql = format!("{SELECT_TOKEN} ORDER BY created_at, id");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
            rows.iter().map(token_record).collect()
        }

        async fn revoke_token(&self, id: &str, at: &str) -> Result<bool, StoreError> {
            let revoked =
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id")
                    .bind(at)
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
            Ok(revoked.is_some())
        }

        async fn count_tokens(&self) -> Result<i64, StoreError> {
            Ok(sqlx::query("SELECT COUNT(*) AS n FROM api_tokens").fetch_one(self.pool()).await?.get("n"))
        }
}}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).expect("a list of strings serializes")
}

sql_bounds! { row [
    fn token_record<R: Row>(row: &R) -> Result<TokenRecord, StoreError>
] {
        let list = |column: &str| {
            serde_json::from_str::<Vec<String>>(&row.get::<String, _>(column))
                .map_err(|e| StoreError::Query(format!("api_tokens.{column} is not a JSON list: {e}")))
        };
        Ok(TokenRecord {
            id: row.get("id"),
            secret_sha256: row.get("secret_sha256"),
            role: row.get("role"),
            repos: list("repos")?,
            keys: list("keys")?,
            description: row.get("description"),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
            revoked_at: row.get("revoked_at"),
        })
}}
