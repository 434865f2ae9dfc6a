//! Verdict attachments claimed across replicas (`verdict_attachments`, docs/FORMATS.md §27): the row's
//! primary key makes "attach this verdict once" one atomic insert that exactly one replica wins.
//!
//! Owns: every statement on `verdict_attachments`. Must not touch: the verdict or its attach
//! (`service::verdicts`).

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::StoreError;
use super::sql::Backend;

/// What a verdict is attached once per: the image's repository and digest, the policy version that decided
/// it (`""` when none governed) and the result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerdictKey {
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub policy_version: String,
    pub allowed: bool,
}

#[async_trait]
pub trait VerdictClaims: Send + Sync {
    /// Claims the attachment of `key` at `now_ms`: true when the caller is to attach it, because no one
    /// claimed it yet or a claim made before `stale_before_ms` was never marked attached (its attach failed
    /// or its replica died); false when another claim stands or the verdict is attached.
    async fn claim_verdict(&self, key: &VerdictKey, now_ms: i64, stale_before_ms: i64) -> Result<bool, StoreError>;
    /// Marks `key` attached: it is never claimed again.
    async fn verdict_attached(&self, key: &VerdictKey) -> Result<(), StoreError>;
    /// Gives up a claim whose attach failed, so that the next decision of the image claims it again.
    async fn release_verdict(&self, key: &VerdictKey) -> Result<(), StoreError>;
}

const KEY_MATCHES: &str = "registry = $1 AND repository = $2 AND digest = $3 AND policy_version = $4 AND allowed = $5";

#[async_trait]
impl<B> VerdictClaims for B
where
    B: Backend,
    <B::Db as Database>::Arguments: Default + IntoArguments<B::Db>,
    for<'e> &'e mut <B::Db as Database>::Connection: Executor<'e, Database = B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
{
    async fn claim_verdict(&self, key: &VerdictKey, now_ms: i64, stale_before_ms: i64) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "INSERT INTO verdict_attachments (registry, repository, digest, policy_version, allowed, claimed_ms, \
             attached) VALUES ($1, $2, $3, $4, $5, $6, 0) \
             ON CONFLICT (registry, repository, digest, policy_version, allowed) DO UPDATE \
             SET claimed_ms = excluded.claimed_ms \
             WHERE verdict_attachments.attached = 0 AND verdict_attachments.claimed_ms < $7 \
             RETURNING claimed_ms",
        )
        .bind(key.registry.as_str())
        .bind(key.repository.as_str())
        .bind(key.digest.as_str())
        .bind(key.policy_version.as_str())
        .bind(i64::from(key.allowed))
        .bind(now_ms)
        .bind(stale_before_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(claimed.is_some())
    }

    async fn verdict_attached(&self, key: &VerdictKey) -> Result<(), StoreError> {
        let statement = format!("UPDATE verdict_attachments SET attached = 1 WHERE {KEY_MATCHES}");
        bind_key(sqlx::query(sqlx::AssertSqlSafe(statement)), key).execute(self.pool()).await?;
        Ok(())
    }

    async fn release_verdict(&self, key: &VerdictKey) -> Result<(), StoreError> {
        let statement = format!("DELETE FROM verdict_attachments WHERE {KEY_MATCHES} AND attached = 0");
        bind_key(sqlx::query(sqlx::AssertSqlSafe(statement)), key).execute(self.pool()).await?;
        Ok(())
    }
}

/// `query` with `key` bound as $1 to $5.
fn bind_key<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    key: &'q VerdictKey,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(key.registry.as_str())
        .bind(key.repository.as_str())
        .bind(key.digest.as_str())
        .bind(key.policy_version.as_str())
        .bind(i64::from(key.allowed))
}
