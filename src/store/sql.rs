//! [`Store`] and [`RegisterStore`] for every database [`Backend`], written once with sqlx's generic API and `$N`
//! placeholders (sqlx's SQLite driver binds `$N` by number, as PostgreSQL does). A backend supplies only its
//! pool and how an append transaction begins; [`SqlTx`] runs the append's statements inside it. The one place
//! the SQL differs by database is [`BulkRows`]: how an append's many rows go into one INSERT.
//!
//! Owns: every statement on `signatures`, `signed_payloads`, `log_entries`, `log_nodes`, `log_index` and `log_dedupe`. Must not touch:
//! connecting, migrations, or how a backend begins and serializes appends (`sqlite*.rs`, `postgres*.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Database, Pool, QueryBuilder, Row, Transaction};

use super::batch::{
    HeldIndex, IndexChange, LogTx, ROWS_PER_INSERT, append_batch_in, index_up_to, missing_node, to_hash,
};
use super::{
    Append, Appended, Found, Frontier, NewSignature, RecordKind, RegisterStore, SearchFilter, SignatureRecord, Store,
    StoreError, SubjectLocks,
};
use crate::entry_fields::EntryFields;
use crate::merkle::{Hash, NodeId};

const SELECT_SIGNATURE: &str = "SELECT id, kind, state, actor, source_addr, registry, repository, digest, identity, \
     key_id, key_version, algorithm, payload_digest, signature_b64, signature_tag, manifest_digest, created_at, \
     artifacts FROM signatures";

/// What a database adds to the shared SQL: its pool, and an append transaction that excludes every other
/// appender until it ends.
pub trait Backend: Send + Sync + 'static {
    type Db: BulkRows;
    fn pool(&self) -> &Pool<Self::Db>;
    fn begin_append(&self) -> impl Future<Output = Result<Appending<'_, Self::Db>, StoreError>> + Send;
    /// The backend's [`SubjectLocks`].
    fn tag_locks(&self) -> Arc<dyn SubjectLocks>;
    /// Appended to a queue claim's row selection: `FOR UPDATE SKIP LOCKED` where several processes share the
    /// database; empty where one process has it (SQLite), which also frees its stale claims at start-up.
    const SKIP_LOCKED: &'static str = "";
    /// Whether appends hold search index rows back ([`HeldIndex`]), so a search first brings `log_index` up to
    /// the tree size.
    const HOLDS_INDEX_ROWS: bool = false;
}

/// Writes an item with every bound the shared SQL needs of a database, named here once. A macro rather than a
/// helper trait: Rust does not pass a trait's `where` clauses on other types (`i64: Encode<'q, DB>`) on to the
/// trait's users (rust-lang/rust#20671), so each use would still need the whole block.
///
/// `sql_bounds! { backend [impl<B: Backend> … for B] { … } }` for a [`Backend`] `B`; `row [fn f<R: Row>(row: &R)
/// …]` for a function reading a row `R`; `db […<DB>…]` for an item over a database `DB`. rustfmt does not
/// format inside the braces: keep the body as rustfmt would.
macro_rules! sql_bounds {
    (backend [$($head:tt)*] { $($body:tt)* }) => {
        $crate::store::sql::sql_bounds!(@emit B::Db; <B::Db as ::sqlx::Database>::Row; [$($head)*] { $($body)* });
    };
    (row [$($head:tt)*] { $($body:tt)* }) => {
        $crate::store::sql::sql_bounds!(@emit R::Database; R; [$($head)*] { $($body)* });
    };
    (db [$($head:tt)*] { $($body:tt)* }) => {
        $crate::store::sql::sql_bounds!(@emit DB; <DB as ::sqlx::Database>::Row; [$($head)*] { $($body)* });
    };
    (@emit $db:ty; $row:ty; [$($head:tt)*] { $($body:tt)* }) => {
        $($head)*
        where
            $db: ::sqlx::Database,
            <$db as ::sqlx::Database>::Arguments: Default + ::sqlx::IntoArguments<$db>,
            for<'e> &'e mut <$db as ::sqlx::Database>::Connection: ::sqlx::Executor<'e, Database = $db>,
            for<'e> &'e ::sqlx::Pool<$db>: ::sqlx::Executor<'e, Database = $db>,
            for<'q> i64: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<i64>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> &'q str: ::sqlx::Encode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<&'q str>: ::sqlx::Encode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> String: ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<String>: ::sqlx::Decode<'q, $db>,
            for<'q> Vec<u8>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'n> &'n str: ::sqlx::ColumnIndex<$row>,
        { $($body)* }
    };
}
pub(super) use sql_bounds;

/// An open append transaction and, where the exclusion is in-process, the guard that holds it, which also
/// guards the index rows that process's appends hold back.
pub struct Appending<'s, DB: Database> {
    pub(super) tx: Transaction<'static, DB>,
    pub(super) held: Option<tokio::sync::MutexGuard<'s, HeldIndex>>,
}

/// An open transaction; for [`LogTx`], one that excludes every other appender.
pub(super) struct SqlTx<'a, 'c, DB: Database>(pub &'a mut Transaction<'c, DB>);

sql_bounds! { backend [
    #[async_trait]
    impl<B: Backend> Store for B
] {
        async fn ping(&self) -> Result<(), StoreError> {
            sqlx::query("SELECT 1").execute(self.pool()).await?;
            Ok(())
        }

        async fn begin_signature(&self, s: &NewSignature) -> Result<i64, StoreError> {
            let artifacts = artifacts_json(&s.artifacts);
            Ok(insert_signature::<B::Db>(s, "pending", None, &artifacts).build().fetch_one(self.pool()).await?.get("id"))
        }

        async fn begin_signed(&self, s: &NewSignature, signed: &[u8]) -> Result<i64, StoreError> {
            let artifacts = artifacts_json(&s.artifacts);
            let mut tx = self.pool().begin().await?;
            sqlx::query("INSERT INTO signed_payloads (digest, payload) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING")
                .bind(s.payload_digest.as_str())
                .bind(signed.to_vec())
                .execute(&mut *tx)
                .await?;
            let id = insert_signature::<B::Db>(s, "pending", None, &artifacts).build().fetch_one(&mut *tx).await?.get("id");
            tx.commit().await?;
            Ok(id)
        }

        async fn signed_payloads(&self, digests: &[String]) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            let mut found = Vec::new();
            for digest in digests {
                let row = sqlx::query("SELECT payload FROM signed_payloads WHERE digest = $1")
                    .bind(digest.as_str())
                    .fetch_optional(self.pool())
                    .await?;
                if let Some(row) = row {
                    found.push((digest.clone(), row.get("payload")));
                }
            }
            Ok(found)
        }

        async fn abandon_signature(&self, id: i64) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM signatures WHERE id = $1 AND state = 'pending'").bind(id).execute(self.pool()).await?;
            Ok(())
        }

        async fn pending_signatures(&self) -> Result<Vec<SignatureRecord>, StoreError> {
            let sql = format!("{SELECT_SIGNATURE} WHERE state = 'pending' ORDER BY id");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
            Ok(rows.iter().map(record).collect())
        }

        async fn signatures_of(&self, digest: &str) -> Result<Vec<SignatureRecord>, StoreError> {
            let sql = format!("{SELECT_SIGNATURE} WHERE digest = $1 ORDER BY id");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(digest).fetch_all(self.pool()).await?;
            Ok(rows.iter().map(record).collect())
        }

        async fn count_signatures(&self) -> Result<i64, StoreError> {
            Ok(sqlx::query("SELECT COUNT(*) AS n FROM signatures").fetch_one(self.pool()).await?.get("n"))
        }

        fn subject_locks(&self) -> Arc<dyn SubjectLocks> {
            self.tag_locks()
        }
}}

sql_bounds! { backend [
    #[async_trait]
    impl<B: Backend> RegisterStore for B
] {
        async fn append_batch(&self, batch: &[Append]) -> Result<(Vec<Appended>, u64), StoreError> {
            let (placed, after) = self.append_batch_from(batch, None).await?;
            Ok((placed, after.size))
        }

        async fn append_batch_from(
            &self,
            batch: &[Append],
            known: Option<&Frontier>,
        ) -> Result<(Vec<Appended>, Frontier), StoreError> {
            let mut appending = self.begin_append().await?;
            let held = appending.held.as_deref();
            let (appended, change) = append_batch_in(&mut SqlTx(&mut appending.tx), batch, held, known).await?;
            appending.tx.commit().await?;
            if let Some(held) = appending.held.as_deref_mut() {
                held.committed(change);
            }
            Ok(appended)
        }

        async fn tree_size(&self) -> Result<u64, StoreError> {
            let mut tx = self.pool().begin().await?;
            let size = SqlTx(&mut tx).size().await?;
            tx.commit().await?;
            Ok(size)
        }

        /// One query per [`ROWS_PER_INSERT`] nodes (row-value `IN`, which both databases have), not one per node.
        async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
            let mut found = HashMap::with_capacity(nodes.len());
            if nodes.len() <= ROWS_PER_INSERT {
                return select_nodes(&mut *self.pool().acquire().await?, nodes).await;
            }
            let mut tx = self.pool().begin().await?;
            for chunk in nodes.chunks(ROWS_PER_INSERT) {
                found.extend(chunk.iter().copied().zip(select_nodes(&mut *tx, chunk).await?));
            }
            tx.commit().await?;
            nodes.iter().map(|id| found.get(id).copied().ok_or_else(|| missing_node(*id))).collect()
        }

        async fn level_hashes(&self, level: u32, indexes: std::ops::Range<u64>) -> Result<Vec<Hash>, StoreError> {
            let rows =
                sqlx::query("SELECT idx, hash FROM log_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx")
                    .bind(i64::from(level))
                    .bind(indexes.start as i64)
                    .bind(indexes.end as i64)
                    .fetch_all(self.pool())
                    .await?;
            // Rows come in index order, each once: any gap shows as the first index that does not match.
            let mut hashes = Vec::with_capacity(rows.len());
            for (index, row) in indexes.clone().zip(&rows) {
                if row.get::<i64, _>("idx") as u64 != index {
                    return Err(missing_node((level, index)));
                }
                hashes.push(to_hash(row.get("hash"))?);
            }
            match indexes.clone().nth(hashes.len()) {
                Some(index) => Err(missing_node((level, index))),
                None => Ok(hashes),
            }
        }

        async fn entries(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
            let rows = sqlx::query("SELECT idx, entry FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
                .bind(start as i64)
                .bind(end as i64)
                .fetch_all(self.pool())
                .await?;
            Ok(rows.iter().map(|r| (r.get::<i64, _>("idx") as u64, r.get("entry"))).collect())
        }

        async fn search(&self, filter: &SearchFilter, before: Option<u64>, limit: u32) -> Result<Vec<Found>, StoreError> {
            if B::HOLDS_INDEX_ROWS {
                index_everything(self).await?;
            }
            let bounds = match window_bounds(self.pool(), filter).await? {
                Window::Empty => return Ok(Vec::new()),
                Window::Within(low, high) => Some((low, high)),
                Window::Unbounded => None,
            };
            let mut select = QueryBuilder::<B::Db>::new(
                "SELECT e.idx, e.entry, e.leaf_hash FROM log_index i JOIN log_entries e ON e.idx = i.idx WHERE 1 = 1",
            );
            let texts = [
                ("i.kind", &filter.kind),
                ("i.actor", &filter.actor),
                ("i.registry", &filter.registry),
                ("i.repository", &filter.repository),
                ("i.digest", &filter.digest),
                ("i.key_id", &filter.key),
            ];
            for (column, value) in texts {
                if let Some(value) = value {
                    select.push(format_args!(" AND {column} = ")).push_bind(value.as_str());
                }
            }
            if let Some(version) = filter.key_version {
                select.push(" AND i.key_version = ").push_bind(version);
            }
            if let Some(from) = filter.from_ms {
                select.push(" AND i.time_ms >= ").push_bind(from);
            }
            if let Some(to) = filter.to_ms {
                select.push(" AND i.time_ms < ").push_bind(to);
            }
            if let Some(before) = before {
                select.push(" AND i.idx < ").push_bind(i64::try_from(before).unwrap_or(i64::MAX));
            }
            if let Some((low, high)) = bounds {
                select.push(" AND i.idx >= ").push_bind(low).push(" AND i.idx <= ").push_bind(high);
            }
            select.push(" ORDER BY i.idx DESC LIMIT ").push_bind(i64::from(limit));
            let rows = select.build().fetch_all(self.pool()).await?;
            rows.iter()
                .map(|r| {
                    let (index, entry) = (r.get::<i64, _>("idx") as u64, r.get("entry"));
                    Ok(Found { index, entry, leaf_hash: to_hash(r.get("leaf_hash"))? })
                })
                .collect()
        }
}}

sql_bounds! { backend [
    /// Brings `log_index` up to the tree size (the rows appends held back, and any a crash or another process
    /// left out), so a search reads every entry appended before it from the indexes.
    async fn index_everything<B: Backend>(store: &B) -> Result<(), StoreError>
] {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries) AS size, \
             (SELECT COALESCE(MAX(idx) + 1, 0) FROM log_index) AS indexed",
        )
        .fetch_one(store.pool())
        .await?;
        if row.get::<i64, _>("indexed") >= row.get::<i64, _>("size") {
            return Ok(());
        }
        let mut appending = store.begin_append().await?;
        let mut tx = SqlTx(&mut appending.tx);
        let size = tx.size().await?;
        let known: Vec<_> = appending.held.as_deref().map(HeldIndex::rows).into_iter().collect();
        index_up_to(&mut tx, size, &known).await?;
        appending.tx.commit().await?;
        if let Some(held) = appending.held.as_deref_mut() {
            held.committed(IndexChange::Written);
        }
        Ok(())
}}

/// A time window holding at most this many entries bounds a search's index range to theirs.
const SMALL_WINDOW: i64 = 100_000;

/// Where the entries of a search's time window lie.
enum Window {
    /// No entry's time is in the window.
    Empty,
    /// Every entry in the window has an index in `[low, high]`.
    Within(i64, i64),
    /// No time window, or one with more than [`SMALL_WINDOW`] entries (or no other filter): not bounded.
    Unbounded,
}

sql_bounds! { db [
    /// With a time window and another filter, the other filter's index is scanned newest first until the window
    /// is reached, which may be far back; a window of at most [`SMALL_WINDOW`] entries is read from the time index
    /// first (index only) and its lowest and highest index bound that scan. Exact: entries whose times are out of
    /// order still lie within the bounds, since those are taken over the window's own rows.
    async fn window_bounds<DB>(pool: &Pool<DB>, filter: &SearchFilter) -> Result<Window, StoreError>
] {
        let (Some(from), Some(to)) = (filter.from_ms, filter.to_ms) else { return Ok(Window::Unbounded) };
        let others = [&filter.kind, &filter.actor, &filter.repository, &filter.digest, &filter.key];
        if others.iter().all(|o| o.is_none()) && filter.key_version.is_none() {
            return Ok(Window::Unbounded);
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(idx) AS low, MAX(idx) AS high FROM \
             (SELECT idx FROM log_index WHERE time_ms >= $1 AND time_ms < $2 LIMIT $3) AS window_rows",
        )
        .bind(from)
        .bind(to)
        .bind(SMALL_WINDOW + 1)
        .fetch_one(pool)
        .await?;
        let (n, low, high) = (row.get::<i64, _>("n"), row.get::<Option<i64>, _>("low"), row.get::<Option<i64>, _>("high"));
        Ok(match (low, high) {
            _ if n > SMALL_WINDOW => Window::Unbounded,
            (Some(low), Some(high)) => Window::Within(low, high),
            _ => Window::Empty,
        })
}}

sql_bounds! { db [
    impl<DB: BulkRows> LogTx for SqlTx<'_, '_, DB>
] {
        async fn size(&mut self) -> Result<u64, StoreError> {
            let size: i64 = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM log_entries")
                .fetch_one(&mut **self.0)
                .await?
                .get("size");
            Ok(size as u64)
        }

        async fn indexed(&mut self) -> Result<u64, StoreError> {
            let indexed: i64 = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS indexed FROM log_index")
                .fetch_one(&mut **self.0)
                .await?
                .get("indexed");
            Ok(indexed as u64)
        }

        async fn entries(&mut self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
            let rows = sqlx::query("SELECT idx, entry FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
                .bind(start as i64)
                .bind(end as i64)
                .fetch_all(&mut **self.0)
                .await?;
            Ok(rows.iter().map(|r| (r.get::<i64, _>("idx") as u64, r.get("entry"))).collect())
        }

        async fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
            select_nodes(&mut **self.0, ids).await
        }

        async fn insert_entries(&mut self, first: u64, entries: &[(&[u8], Hash)]) -> Result<(), StoreError> {
            DB::insert_entries(first, entries).build().execute(&mut **self.0).await?;
            Ok(())
        }

        async fn insert_nodes(&mut self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
            DB::insert_nodes(nodes).build().execute(&mut **self.0).await?;
            Ok(())
        }

        async fn insert_index(&mut self, first: u64, fields: &[EntryFields]) -> Result<(), StoreError> {
            DB::insert_index(first, fields).build().execute(&mut **self.0).await?;
            Ok(())
        }

        async fn dedupe_lookup(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
            let row =
                sqlx::query("SELECT idx FROM log_dedupe WHERE key = $1").bind(key).fetch_optional(&mut **self.0).await?;
            Ok(row.map(|r| r.get::<i64, _>("idx") as u64))
        }

        async fn dedupe_insert(&mut self, key: &str, index: u64) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO log_dedupe (key, idx) VALUES ($1, $2)")
                .bind(key)
                .bind(index as i64)
                .execute(&mut **self.0)
                .await?;
            Ok(())
        }

        async fn confirm_signature(
            &mut self,
            id: i64,
            signature: &NewSignature,
            manifest_digest: &str,
        ) -> Result<bool, StoreError> {
            // sqlx has no rows-affected count for any database; RETURNING says whether a pending row was there.
            let confirmed = sqlx::query(
                "UPDATE signatures SET state = 'stored', manifest_digest = $1, artifacts = $2 \
                 WHERE id = $3 AND state = 'pending' RETURNING id",
            )
            .bind(manifest_digest)
            .bind(artifacts_json(&signature.artifacts).as_str())
            .bind(id)
            .fetch_optional(&mut **self.0)
            .await?;
            Ok(confirmed.is_some())
        }

        async fn insert_stored_signature(&mut self, s: &NewSignature, manifest_digest: &str) -> Result<(), StoreError> {
            let artifacts = artifacts_json(&s.artifacts);
            insert_signature::<DB>(s, "stored", Some(manifest_digest), &artifacts).build().execute(&mut **self.0).await?;
            Ok(())
        }
}}

sql_bounds! { db [
    /// The hashes of `ids` (at most [`ROWS_PER_INSERT`]) in the order asked, in one statement (row-value `IN`,
    /// which both databases have).
    async fn select_nodes<DB>(conn: &mut DB::Connection, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>
] {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = QueryBuilder::<DB>::new("SELECT level, idx, hash FROM log_nodes WHERE (level, idx) IN ");
        select.push_tuples(ids, |mut row, (level, index)| {
            row.push_bind(i64::from(*level)).push_bind(*index as i64);
        });
        let mut found = HashMap::with_capacity(ids.len());
        for row in select.build().fetch_all(&mut *conn).await? {
            let id = (row.get::<i64, _>("level") as u32, row.get::<i64, _>("idx") as u64);
            found.insert(id, to_hash(row.get("hash"))?);
        }
        ids.iter().map(|id| found.get(id).copied().ok_or_else(|| missing_node(*id))).collect()
}}

sql_bounds! { db [
    /// The INSERT of a signature row in `state`, returning its id.
    fn insert_signature<'a, DB>(
        s: &'a NewSignature,
        state: &'static str,
        manifest_digest: Option<&'a str>,
        artifacts: &'a str,
    ) -> QueryBuilder<DB>
] {
        let mut insert = QueryBuilder::new(
            "INSERT INTO signatures (kind, state, actor, source_addr, registry, repository, digest, identity, key_id, \
             key_version, algorithm, payload_digest, signature_b64, signature_tag, manifest_digest, created_at, artifacts) ",
        );
        insert.push_values([s], |mut row, s| {
            row.push_bind(s.kind.as_str())
                .push_bind(state)
                .push_bind(s.actor.as_str())
                .push_bind(s.source_addr.as_deref())
                .push_bind(s.registry.as_str())
                .push_bind(s.repository.as_str())
                .push_bind(s.digest.as_str())
                .push_bind(s.identity.as_str())
                .push_bind(s.key_id.as_str())
                .push_bind(i64::from(s.key_version))
                .push_bind(s.algorithm.as_str())
                .push_bind(s.payload_digest.as_str())
                .push_bind(s.signature_b64.as_str())
                .push_bind(s.signature_tag.as_str())
                .push_bind(manifest_digest)
                .push_bind(s.created_at.as_str())
                .push_bind(artifacts);
        });
        insert.push(" RETURNING id");
        insert
}}

/// The `artifacts` column: a JSON array (docs/FORMATS.md §11).
fn artifacts_json(artifacts: &[super::Artifact]) -> String {
    serde_json::to_string(artifacts).unwrap_or_else(|_| "[]".to_owned())
}

sql_bounds! { row [
    /// A row selected with [`SELECT_SIGNATURE`].
    fn record<R: Row>(row: &R) -> SignatureRecord
] {
        SignatureRecord {
            id: row.get("id"),
            pending: row.get::<String, _>("state") == "pending",
            signature: NewSignature {
                kind: RecordKind::parse(&row.get::<String, _>("kind")),
                actor: row.get("actor"),
                source_addr: row.get("source_addr"),
                registry: row.get("registry"),
                repository: row.get("repository"),
                digest: row.get("digest"),
                identity: row.get("identity"),
                key_id: row.get("key_id"),
                key_version: row.get::<i64, _>("key_version") as u32,
                algorithm: row.get("algorithm"),
                payload_digest: row.get("payload_digest"),
                signature_b64: row.get("signature_b64"),
                signature_tag: row.get("signature_tag"),
                created_at: row.get("created_at"),
                artifacts: serde_json::from_str(&row.get::<String, _>("artifacts")).unwrap_or_default(),
            },
            manifest_digest: row.get("manifest_digest"),
        }
}}

/// The INSERTs of an append's rows (entries, their search index rows, nodes), many rows in one statement.
pub trait BulkRows: Database {
    fn insert_entries(first: u64, entries: &[(&[u8], Hash)]) -> QueryBuilder<Self>;
    fn insert_nodes(nodes: &[(NodeId, Hash)]) -> QueryBuilder<Self>;
    fn insert_index(first: u64, fields: &[EntryFields]) -> QueryBuilder<Self>;
}

const INSERT_INDEX: &str =
    "INSERT INTO log_index (idx, kind, time_ms, actor, registry, repository, digest, key_id, key_version) ";

/// SQLite: one bound value per cell (`VALUES (…), (…)`).
impl BulkRows for sqlx::Sqlite {
    fn insert_entries(first: u64, entries: &[(&[u8], Hash)]) -> QueryBuilder<Self> {
        let mut insert = QueryBuilder::new("INSERT INTO log_entries (idx, entry, leaf_hash) ");
        insert.push_values(entries.iter().enumerate(), |mut row, (offset, (entry, leaf))| {
            row.push_bind((first + offset as u64) as i64).push_bind(entry.to_vec()).push_bind(leaf.to_vec());
        });
        insert
    }

    fn insert_nodes(nodes: &[(NodeId, Hash)]) -> QueryBuilder<Self> {
        let mut insert = QueryBuilder::new("INSERT INTO log_nodes (level, idx, hash) ");
        insert.push_values(nodes, |mut row, ((level, index), hash)| {
            row.push_bind(i64::from(*level)).push_bind(*index as i64).push_bind(hash.to_vec());
        });
        insert
    }

    fn insert_index(first: u64, fields: &[EntryFields]) -> QueryBuilder<Self> {
        let mut insert = QueryBuilder::new(INSERT_INDEX);
        insert.push_values(fields.iter().enumerate(), |mut row, (offset, f)| {
            row.push_bind((first + offset as u64) as i64)
                .push_bind(f.kind.as_deref())
                .push_bind(f.time_ms)
                .push_bind(f.actor.as_deref())
                .push_bind(f.registry.as_deref())
                .push_bind(f.repository.as_deref())
                .push_bind(f.digest.as_deref())
                .push_bind(f.key.as_deref())
                .push_bind(f.key_version);
        });
        insert
    }
}

/// PostgreSQL: one array per column, unnested into rows, so the statement's text does not depend on the row
/// count: it is parsed and planned once per connection and reused (sqlx's statement cache), where a
/// `VALUES` list of each batch's size was a new statement with up to 4,500 parameters.
impl BulkRows for sqlx::Postgres {
    fn insert_entries(first: u64, entries: &[(&[u8], Hash)]) -> QueryBuilder<Self> {
        let mut insert = QueryBuilder::new("INSERT INTO log_entries (idx, entry, leaf_hash) SELECT * FROM UNNEST(");
        insert.push_bind(indexes(first, entries.len())).push("::int8[], ");
        insert.push_bind(entries.iter().map(|(entry, _)| *entry).collect::<Vec<&[u8]>>()).push("::bytea[], ");
        insert.push_bind(entries.iter().map(|(_, leaf)| leaf.as_slice()).collect::<Vec<&[u8]>>()).push("::bytea[])");
        insert
    }

    fn insert_nodes(nodes: &[(NodeId, Hash)]) -> QueryBuilder<Self> {
        let mut insert = QueryBuilder::new("INSERT INTO log_nodes (level, idx, hash) SELECT * FROM UNNEST(");
        insert.push_bind(nodes.iter().map(|((level, _), _)| i64::from(*level)).collect::<Vec<_>>()).push("::int8[], ");
        insert.push_bind(nodes.iter().map(|((_, index), _)| *index as i64).collect::<Vec<_>>()).push("::int8[], ");
        insert.push_bind(nodes.iter().map(|(_, hash)| hash.as_slice()).collect::<Vec<&[u8]>>()).push("::bytea[])");
        insert
    }

    fn insert_index(first: u64, fields: &[EntryFields]) -> QueryBuilder<Self> {
        let text =
            |pick: fn(&EntryFields) -> &Option<String>| fields.iter().map(|f| pick(f).as_deref()).collect::<Vec<_>>();
        let mut insert = QueryBuilder::new(INSERT_INDEX);
        insert.push("SELECT * FROM UNNEST(");
        insert.push_bind(indexes(first, fields.len())).push("::int8[], ");
        insert.push_bind(text(|f| &f.kind)).push("::text[], ");
        insert.push_bind(fields.iter().map(|f| f.time_ms).collect::<Vec<_>>()).push("::int8[], ");
        insert.push_bind(text(|f| &f.actor)).push("::text[], ");
        insert.push_bind(text(|f| &f.registry)).push("::text[], ");
        insert.push_bind(text(|f| &f.repository)).push("::text[], ");
        insert.push_bind(text(|f| &f.digest)).push("::text[], ");
        insert.push_bind(text(|f| &f.key)).push("::text[], ");
        insert.push_bind(fields.iter().map(|f| f.key_version).collect::<Vec<_>>()).push("::int8[])");
        insert
    }
}

fn indexes(first: u64, count: usize) -> Vec<i64> {
    (0..count as u64).map(|offset| (first + offset) as i64).collect()
}
