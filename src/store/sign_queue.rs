//! The sign-on-push queue at rest (`sign_jobs`, docs/FORMATS.md §26): jobs enqueued once per (repository,
//! digest, rule), claimed under a lease so two workers (or replicas) never run one job, and settled as
//! signed, retried with a later `not_before_ms`, or failed.
//!
//! Owns: every statement on `sign_jobs`. Must not touch: which pushes match a rule, or signing (`service`).

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};

use super::StoreError;
use super::sql::{Backend, sql_bounds};

/// A job to enqueue for one pushed manifest and one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignJob {
    pub rule: String,
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub tag: String,
    pub key_ref: String,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignJob {
    pub id: i64,
    pub job: NewSignJob,
    /// `pending`, `running`, `signed` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub not_before_ms: i64,
    pub log_index: Option<i64>,
}

/// How a claimed job ends this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSettled {
    Signed {
        log_index: Option<i64>,
    },
    /// Back to pending until `not_before_ms`; `counts` false when the attempt is not held against the job
    /// (it waits for a required attestation).
    Retry {
        not_before_ms: i64,
        reason: String,
        counts: bool,
    },
    Failed {
        reason: String,
    },
}

#[async_trait]
pub trait SignQueue: Send + Sync {
    /// Adds each job not already queued (same repository, digest and rule) in one transaction, durable
    /// when this returns; returns how many were new.
    async fn enqueue_sign_jobs(&self, jobs: &[NewSignJob], now_ms: i64) -> Result<usize, StoreError>;
    /// Claims the oldest job that is due (pending past its backoff, or running with a lease that ran out)
    /// for `owner` until `lease_until_ms`, counting an attempt.
    async fn claim_sign_job(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<SignJob>, StoreError>;
    /// Settles job `id` if `owner` still holds it; false when its lease went to another worker.
    async fn settle_sign_job(
        &self,
        id: i64,
        owner: &str,
        settled: &JobSettled,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Frees every claimed job (for a database only one process uses: its claims are from a process that
    /// is gone); none on a shared database, where leases run out instead. Returns how many.
    async fn release_sign_jobs(&self) -> Result<u64, StoreError>;
    /// Every job for `digest` in `registry/repository`, oldest first.
    async fn sign_jobs_of(&self, registry: &str, repository: &str, digest: &str) -> Result<Vec<SignJob>, StoreError>;
    /// How many jobs are in each state, and when the oldest pending (or running) job was made.
    async fn sign_queue_depth(&self) -> Result<(Vec<(String, i64)>, Option<i64>), StoreError>;
}

const SELECT_JOB: &str = "SELECT id, rule, registry, repository, digest, tag, key_ref, state, attempts, reason, \
     created_ms, updated_ms, not_before_ms, log_index FROM sign_jobs";

sql_bounds! { backend [
    #[async_trait]
    impl<B: Backend> SignQueue for B
] {
        async fn enqueue_sign_jobs(&self, jobs: &[NewSignJob], now_ms: i64) -> Result<usize, StoreError> {
            if jobs.is_empty() {
                return Ok(0);
            }
            let mut tx = self.pool().begin().await?;
            let mut new = 0;
            for job in jobs {
                let inserted = sqlx::query(
                    "INSERT INTO sign_jobs (rule, registry, repository, digest, tag, key_ref, state, attempts, \
                     created_ms, updated_ms, not_before_ms) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7) \
                     ON CONFLICT (registry, repository, digest, rule) DO NOTHING RETURNING id",
                )
                .bind(job.rule.as_str())
                .bind(job.registry.as_str())
                .bind(job.repository.as_str())
                .bind(job.digest.as_str())
                .bind(job.tag.as_str())
                .bind(job.key_ref.as_str())
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
                new += usize::from(inserted.is_some());
            }
            tx.commit().await?;
            Ok(new)
        }

        async fn claim_sign_job(
            &self,
            owner: &str,
            now_ms: i64,
            lease_until_ms: i64,
        ) -> Result<Option<SignJob>, StoreError> {
            // One statement: SQLite runs it alone; PostgreSQL skips rows another claim holds.
            let sql = format!(
                "UPDATE sign_jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, \
                 lease_until_ms = $2, updated_ms = $3 WHERE id = (SELECT id FROM sign_jobs WHERE \
                 (state = 'pending' AND not_before_ms <= $3) OR (state = 'running' AND lease_until_ms < $3) \
                 ORDER BY not_before_ms, id LIMIT 1{}) RETURNING id",
                B::SKIP_LOCKED
            );
            let claimed = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .bind(lease_until_ms)
                .bind(now_ms)
                .fetch_optional(self.pool())
                .await?;
            let Some(row) = claimed else { return Ok(None) };
            let id: i64 = row.get("id");
            let sql = format!("{SELECT_JOB} WHERE id = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(self.pool()).await?;
            Ok(Some(job(&row)))
        }

        async fn settle_sign_job(
            &self,
            id: i64,
            owner: &str,
            settled: &JobSettled,
            now_ms: i64,
        ) -> Result<bool, StoreError> {
            let mut update = QueryBuilder::<B::Db>::new("UPDATE sign_jobs SET lease_owner = NULL, lease_until_ms = NULL, ");
            update.push("updated_ms = ").push_bind(now_ms);
            match settled {
                JobSettled::Signed { log_index } => {
                    update.push(", state = 'signed', reason = NULL, log_index = ").push_bind(*log_index);
                }
                JobSettled::Retry { not_before_ms, reason, counts } => {
                    update.push(", state = 'pending', not_before_ms = ").push_bind(*not_before_ms);
                    update.push(", reason = ").push_bind(reason.as_str());
                    if !counts {
                        update.push(", attempts = attempts - 1");
                    }
                }
                JobSettled::Failed { reason } => {
                    update.push(", state = 'failed', reason = ").push_bind(reason.as_str());
                }
            }
            update.push(" WHERE id = ").push_bind(id);
            update.push(" AND state = 'running' AND lease_owner = ").push_bind(owner).push(" RETURNING id");
            Ok(update.build().fetch_optional(self.pool()).await?.is_some())
        }

        async fn release_sign_jobs(&self) -> Result<u64, StoreError> {
            if !B::SKIP_LOCKED.is_empty() {
                return Ok(0);
            }
            let released = sqlx::query(
                "UPDATE sign_jobs SET state = 'pending', lease_owner = NULL, lease_until_ms = NULL \
                 WHERE state = 'running' RETURNING id",
            )
            .fetch_all(self.pool())
            .await?;
            Ok(released.len() as u64)
        }

        async fn sign_jobs_of(&self, registry: &str, repository: &str, digest: &str) -> Result<Vec<SignJob>, StoreError> {
            let sql = format!("{SELECT_JOB} WHERE digest = $1 AND registry = $2 AND repository = $3 ORDER BY id");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(digest)
                .bind(registry)
                .bind(repository)
                .fetch_all(self.pool())
                .await?;
            Ok(rows.iter().map(job).collect())
        }

        async fn sign_queue_depth(&self) -> Result<(Vec<(String, i64)>, Option<i64>), StoreError> {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM sign_jobs GROUP BY state ORDER BY state")
                .fetch_all(self.pool())
                .await?;
            let depth = rows.iter().map(|r| (r.get::<String, _>("state"), r.get::<i64, _>("n"))).collect();
            let oldest: Option<i64> =
                sqlx::query("SELECT MIN(created_ms) AS oldest FROM sign_jobs WHERE state IN ('pending', 'running')")
                    .fetch_one(self.pool())
                    .await?
                    .get("oldest");
            Ok((depth, oldest))
        }
}}

sql_bounds! { row [
    fn job<R: Row>(row: &R) -> SignJob
] {
        SignJob {
            id: row.get("id"),
            job: NewSignJob {
                rule: row.get("rule"),
                registry: row.get("registry"),
                repository: row.get("repository"),
                digest: row.get("digest"),
                tag: row.get("tag"),
                key_ref: row.get("key_ref"),
            },
            state: row.get("state"),
            attempts: row.get("attempts"),
            reason: row.get("reason"),
            created_ms: row.get("created_ms"),
            updated_ms: row.get("updated_ms"),
            not_before_ms: row.get("not_before_ms"),
            log_index: row.get("log_index"),
        }
}}
