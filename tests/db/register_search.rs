//! Register search on a real database (SQLite, or PostgreSQL with `NOTARIUM_TEST_DATABASE=postgres`): every
//! filter alone and combined finds exactly the entries that match, newest first; pages neither repeat nor
//! skip an entry while others are appended; entries written before migration 0008 are found as those written
//! after; and `GET /v1/log/search` refuses callers who are not auditors and every malformed parameter, naming it.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use notarium::register::Register;
use notarium::store::{Append, RegisterStore, SearchFilter, Store};
use serde_json::{Value, json};
use sqlx::SqlSafeStr;
use support::{Notarium, TestDatabase, call, test_database_url};

async fn open(dir: &Path) -> Arc<dyn Store> {
    notarium::store::open(&test_database_url(dir)).await.unwrap()
}

const KINDS: [&str; 8] =
    ["sign", "attest", "verify", "registry-pull", "key-added", "key-rotated", "policy-loaded", "token-created"];

/// Entry `n` of a varied register: kinds, registries, repositories, digests, keys, versions and actors in
/// cycles of different lengths, times a minute apart with every seventh one late by an hour.
fn varied_entry(n: u64) -> Value {
    let kind = KINDS[(n % 8) as usize];
    let minute = if n % 7 == 3 { n as i64 - 60 } else { n as i64 };
    let time = time::OffsetDateTime::from_unix_timestamp(1_790_000_000 + minute * 60).unwrap();
    let time = time.format(&time::format_description::well_known::Rfc3339).unwrap();
    let registry = ["ghcr.io", "localhost:5000"][(n % 2) as usize];
    let repository = ["acme/app", "acme/db", "library/nginx"][(n % 3) as usize];
    let digest = format!("sha256:{:064x}", n % 5);
    let (key, version) = (["k0", "k1"][(n % 2) as usize], 1 + (n / 3) % 2);
    let actor = json!({"name": (["token:a", "token:b", "oidc:https://ci sub=x"][(n % 3) as usize])});
    let image = json!({"registry": registry, "repository": repository, "digest": digest});
    let (subject, details) = match kind {
        "sign" | "attest" => (image, json!({"key": key, "key_version": version})),
        "verify" | "registry-pull" => (image, json!({"allowed": n % 2 == 0})),
        "key-added" | "key-rotated" => (json!({"key": key, "version": version}), json!({"backend": "file"})),
        "policy-loaded" => (json!({"policy": "prod", "version": digest}), json!({"key": "not-a-key"})),
        _ => (json!({"token": format!("t{n}")}), json!({"role": "auditor"})),
    };
    json!({"kind": kind, "time": time, "actor": actor, "subject": subject, "details": details})
}

fn bytes(entry: &Value) -> Vec<u8> {
    notarium::formats::canonical::canonical_json(entry)
}

/// The test's own reading of which entries a filter matches (docs/FORMATS.md §11).
fn matches(filter: &SearchFilter, e: &Value) -> bool {
    let s = |v: &Value| v.as_str().map(str::to_owned);
    let kind = e["kind"].as_str().unwrap_or_default();
    let (key, version) = match kind {
        "sign" | "attest" => (s(&e["details"]["key"]), e["details"]["key_version"].as_i64()),
        "key-added" | "key-rotated" => (s(&e["subject"]["key"]), e["subject"]["version"].as_i64()),
        _ => (None, None),
    };
    let time = e["time"].as_str().and_then(notarium::entry_fields::time_ms);
    let same = |want: &Option<String>, have: Option<String>| want.is_none() || *want == have;
    same(&filter.kind, s(&e["kind"]))
        && same(&filter.actor, s(&e["actor"]["name"]))
        && same(&filter.registry, s(&e["subject"]["registry"]))
        && same(&filter.repository, s(&e["subject"]["repository"]))
        && same(&filter.digest, s(&e["subject"]["digest"]))
        && same(&filter.key, key)
        && (filter.key_version.is_none() || filter.key_version == version)
        && filter.from_ms.is_none_or(|from| time.is_some_and(|t| t >= from))
        && filter.to_ms.is_none_or(|to| time.is_some_and(|t| t < to))
}

/// Every page of `filter`, `limit` at a time, as indexes.
async fn all_pages(store: &dyn RegisterStore, filter: &SearchFilter, limit: u32) -> Vec<u64> {
    let (mut found, mut before) = (Vec::new(), None);
    loop {
        let page = store.search(filter, before, limit).await.unwrap();
        found.extend(page.iter().map(|f| f.index));
        match page.last() {
            Some(last) if page.len() == limit as usize => before = Some(last.index),
            _ => return found,
        }
    }
}

fn filters() -> Vec<SearchFilter> {
    let f = SearchFilter::default;
    let text = |v: &str| Some(v.to_owned());
    let ms = |minute: i64| Some((1_790_000_000 + minute * 60) * 1000);
    vec![
        f(),
        SearchFilter { kind: text("sign"), ..f() },
        SearchFilter { kind: text("registry-pull"), ..f() },
        SearchFilter { actor: text("oidc:https://ci sub=x"), ..f() },
        SearchFilter { registry: text("ghcr.io"), repository: text("acme/app"), ..f() },
        SearchFilter { repository: text("library/nginx"), ..f() },
        SearchFilter { digest: text(&format!("sha256:{:064x}", 3)), ..f() },
        SearchFilter { key: text("k1"), ..f() },
        SearchFilter { key: text("k0"), key_version: Some(2), ..f() },
        SearchFilter { key_version: Some(1), ..f() },
        SearchFilter { key: text("not-a-key"), ..f() },
        SearchFilter { from_ms: ms(20), to_ms: ms(50), ..f() },
        SearchFilter { from_ms: ms(100), ..f() },
        SearchFilter { to_ms: ms(10), ..f() },
        SearchFilter { kind: text("sign"), key: text("k0"), digest: text(&format!("sha256:{:064x}", 2)), ..f() },
        SearchFilter { kind: text("verify"), repository: text("acme/db"), from_ms: ms(30), to_ms: ms(200), ..f() },
        SearchFilter { actor: text("token:a"), registry: text("localhost:5000"), ..f() },
        SearchFilter { kind: text("nothing"), ..f() },
    ]
}

#[test]
fn each_filter_alone_and_combined_finds_exactly_the_matching_entries_newest_first_in_pages() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(open(dir.path()));
    let before = runtime.block_on(store.tree_size()).unwrap();
    let entries: Vec<Value> = (0..240).map(varied_entry).collect();
    for chunk in entries.chunks(37) {
        let batch: Vec<Append> = chunk.iter().map(|e| Append::plain(bytes(e))).collect();
        runtime.block_on(store.append_batch(&batch)).unwrap();
    }
    for filter in filters() {
        let expected: Vec<u64> =
            (0..240u64).rev().filter(|&n| matches(&filter, &entries[n as usize])).map(|n| n + before).collect();
        for limit in [1, 7, 1000] {
            let found = runtime.block_on(all_pages(store.as_ref(), &filter, limit));
            assert_eq!(found, expected, "{filter:?}, {limit} a page");
        }
        // Two filters match nothing: an unknown kind, and a policy-loaded entry's `details.key` (not a key).
        let none_expected = filter.kind.as_deref() == Some("nothing") || filter.key.as_deref() == Some("not-a-key");
        assert_eq!(expected.is_empty(), none_expected, "{filter:?}");
    }
    // What a search returns is the entry and its leaf hash.
    let sign = SearchFilter { kind: Some("sign".into()), ..SearchFilter::default() };
    let newest = runtime.block_on(store.search(&sign, None, 1)).unwrap().remove(0);
    assert_eq!((newest.index, newest.entry.clone()), (232 + before, bytes(&entries[232])));
    assert_eq!(newest.leaf_hash, notarium::merkle::leaf_hash(&newest.entry));
}

#[test]
fn pages_neither_repeat_nor_skip_entries_while_others_are_appended() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(open(dir.path()));
    let log = Arc::new(runtime.block_on(async { Register::new(store.clone()) }));
    let first: Vec<Append> = (0..400).map(|n| Append::plain(bytes(&varied_entry(n)))).collect();
    runtime.block_on(log.append_all(&first)).unwrap();
    let sign = SearchFilter { kind: Some("sign".into()), ..SearchFilter::default() };
    let (found, top) = runtime.block_on(async {
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let log = log.clone();
                tokio::spawn(async move {
                    for n in 0..40 {
                        log.append(Append::plain(bytes(&varied_entry(1000 + w * 100 + n)))).await.unwrap();
                    }
                })
            })
            .collect();
        let (mut found, mut before, mut top) = (Vec::new(), None, None);
        loop {
            let page = store.search(&sign, before, 3).await.unwrap();
            top = top.or(page.first().map(|f| f.index));
            found.extend(page.iter().map(|f| f.index));
            tokio::task::yield_now().await;
            match page.last() {
                Some(last) if page.len() == 3 => before = Some(last.index),
                _ => break,
            }
        }
        for writer in writers {
            writer.await.unwrap();
        }
        (found, top.unwrap())
    });
    // Every sign entry at or below the first page's newest, once each, in order; later appends come after.
    let all = runtime.block_on(log.entries(0, runtime.block_on(log.size()).unwrap())).unwrap();
    let expected: Vec<u64> = all
        .iter()
        .rev()
        .filter(|(index, e)| *index <= top && serde_json::from_slice::<Value>(e).unwrap()["kind"] == "sign")
        .map(|(index, _)| *index)
        .collect();
    assert_eq!(found, expected);
    assert!(found.len() >= 50, "{}", found.len());
}

/// Applies migrations 0001 to 0007 only, as a database written by an earlier notarium has them.
async fn migrate_to_0007(url: &str) {
    let names = ["signatures", "register", "dedupe", "attestations", "tokens", "artifacts", "key_certificates"];
    let backend = if url.starts_with("sqlite:") { "sqlite" } else { "postgres" };
    let migrations = names.iter().zip(1..).map(|(name, version)| {
        let path = format!("{}/migrations/{backend}/{version:04}_{name}.sql", env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(path).unwrap();
        sqlx::migrate::Migration::new(
            version,
            name.replace('_', " ").into(),
            sqlx::migrate::MigrationType::Simple,
            sqlx::AssertSqlSafe(sql).into_sql_str(),
            false,
        )
    });
    let migrator = sqlx::migrate::Migrator::with_migrations(migrations.collect());
    if url.starts_with("sqlite:") {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true)).await.unwrap();
        migrator.run(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        pool.close().await;
    }
}

/// Entries with what the backfill must read as the append path reads it: offsets and fractions in times, a
/// time that is not one, fields of other JSON types, and entries that are not JSON objects at all.
fn odd_entries() -> Vec<Vec<u8>> {
    let mut odd: Vec<Vec<u8>> = (0..40).map(|n| bytes(&varied_entry(n))).collect();
    odd.extend(
        [
            json!({"kind": "sign", "time": "2026-11-30T10:00:00.1235+01:00", "actor": {"name": "x"},
                   "subject": {"registry": "r", "repository": "p", "digest": "sha256:aa"},
                   "details": {"key": "k", "key_version": 3}}),
            json!({"kind": "verify", "time": "yesterday", "actor": {"name": 7}, "subject": {"digest": ["sha256:aa"]}}),
            json!({"kind": "key-added", "time": "2026-11-30T09:00:00Z", "subject": {"key": "k", "version": "2"}}),
            json!({"kind": ["sign"], "subject": {"repository": "p"}}),
            json!(["sign"]),
        ]
        .iter()
        .map(bytes),
    );
    odd.push(b"not json at all".to_vec());
    odd
}

#[test]
fn entries_written_before_the_index_existed_are_found_as_those_written_after() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path());
    let entries = odd_entries();
    runtime.block_on(async {
        migrate_to_0007(&url).await;
        let db = TestDatabase::connect(&url).await;
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let growth = notarium::merkle::append(0, &[], &refs);
        for (idx, (entry, leaf)) in entries.iter().zip(&growth.leaf_hashes).enumerate() {
            let (entry, leaf) = (db.blob_literal(entry), db.blob_literal(leaf));
            db.execute(&format!("INSERT INTO log_entries (idx, entry, leaf_hash) VALUES ({idx}, {entry}, {leaf})"))
                .await
                .unwrap();
        }
        for ((level, idx), hash) in &growth.nodes {
            let hash = db.blob_literal(hash);
            db.execute(&format!("INSERT INTO log_nodes (level, idx, hash) VALUES ({level}, {idx}, {hash})"))
                .await
                .unwrap();
        }
    });
    // Opening the store applies 0008, which indexes what is there; then the same entries again, live.
    let store = runtime.block_on(open(dir.path()));
    let n = entries.len() as u64;
    let batch: Vec<Append> = entries.iter().cloned().map(Append::plain).collect();
    runtime.block_on(store.append_batch(&batch)).unwrap();
    let text = |v: &str| Some(v.to_owned());
    let mut checks = filters();
    checks.extend([
        SearchFilter { key: text("k"), key_version: Some(3), ..SearchFilter::default() },
        SearchFilter { key: text("k"), ..SearchFilter::default() },
        SearchFilter { actor: text("x"), repository: text("p"), ..SearchFilter::default() },
        SearchFilter { from_ms: Some(1_796_029_200_123), to_ms: Some(1_796_029_200_124), ..SearchFilter::default() },
        SearchFilter { from_ms: Some(1_796_029_200_124), to_ms: Some(1_796_029_200_125), ..SearchFilter::default() },
        SearchFilter { from_ms: Some(0), ..SearchFilter::default() },
    ]);
    for filter in checks {
        let found = runtime.block_on(all_pages(store.as_ref(), &filter, 1000));
        let (live, backfilled): (Vec<u64>, Vec<u64>) = found.iter().partition(|&&i| i >= n);
        let live: Vec<u64> = live.iter().map(|i| i - n).collect();
        assert_eq!(backfilled, live, "{filter:?}: the backfill and the append path disagree");
        if filter == SearchFilter::default() {
            assert_eq!(backfilled.len() as u64, n);
        }
    }
    // The offset time is indexed at its instant: 09:00:00.1235Z, to the nearest millisecond.
    let instant =
        SearchFilter { from_ms: Some(1_796_029_200_124), to_ms: Some(1_796_029_200_125), ..SearchFilter::default() };
    assert_eq!(runtime.block_on(all_pages(store.as_ref(), &instant, 10)), [n + 40, 40]);
    let key = SearchFilter { key: text("k"), ..SearchFilter::default() };
    assert_eq!(runtime.block_on(all_pages(store.as_ref(), &key, 10)), [n + 42, n + 40, 42, 40]);
}

/// SQLite's appends hold their index rows back (`store::batch::HeldIndex`): rows a store never wrote, because it
/// stopped or because another store on the database appended in between, are computed from the stored entries
/// before a search reads the index, so every store finds every entry.
#[test]
fn a_search_finds_the_entries_whose_index_rows_a_stopped_store_or_another_one_held_back() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = runtime.block_on(async { (open(dir.path()).await, open(dir.path()).await) });
    let before = runtime.block_on(a.tree_size()).unwrap();
    let entries: Vec<Value> = (0..110).map(varied_entry).collect();
    let append = |store: &Arc<dyn Store>, range: std::ops::Range<usize>| {
        let batch: Vec<Append> = entries[range].iter().map(|e| Append::plain(bytes(e))).collect();
        runtime.block_on(store.append_batch(&batch)).unwrap();
    };
    append(&a, 0..20);
    append(&b, 20..30);
    append(&a, 30..45); // a's rows held for 0..20 do not meet these: b's entries lie between
    let stopped = runtime.block_on(open(dir.path()));
    append(&stopped, 45..60);
    drop(stopped); // it never searched: the rows it held went with it
    append(&b, 60..90);
    append(&a, 90..100); // held by a, and 100..110 by a store that stops
    let stopped = runtime.block_on(open(dir.path()));
    append(&stopped, 100..110);
    drop(stopped);
    let again = runtime.block_on(open(dir.path()));
    for (name, store) in [("reopened", &again), ("a", &a), ("b", &b)] {
        for filter in filters() {
            let expected: Vec<u64> =
                (0..110u64).rev().filter(|&n| matches(&filter, &entries[n as usize])).map(|n| n + before).collect();
            assert_eq!(runtime.block_on(all_pages(store.as_ref(), &filter, 7)), expected, "{name}: {filter:?}");
        }
    }
}

/// However long no search comes, the index rows held back stay fewer than `HOLD_INDEX_ROWS` (4,096): a
/// group's transaction writes them once that many would be held.
#[test]
fn index_rows_are_written_with_the_appends_once_thousands_are_held() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(open(dir.path()));
    let db = runtime.block_on(TestDatabase::connect(&test_database_url(dir.path())));
    for group in 0..50u64 {
        let batch: Vec<Append> = (0..100).map(|n| Append::plain(bytes(&varied_entry(group * 100 + n)))).collect();
        runtime.block_on(store.append_batch(&batch)).unwrap();
        let size = runtime.block_on(store.tree_size()).unwrap() as i64;
        let indexed = runtime.block_on(db.scalar("SELECT COUNT(*) FROM log_index"));
        assert!(size - indexed < 4096, "{indexed} of {size} entries indexed");
    }
}

#[test]
fn the_index_refuses_edits_like_the_register() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(open(dir.path()));
    runtime.block_on(store.append_batch(&[Append::plain(bytes(&varied_entry(0)))])).unwrap();
    // A search brings the index up to the tree size (SQLite's appends hold its rows back).
    runtime.block_on(store.search(&SearchFilter::default(), None, 1)).unwrap();
    let db = runtime.block_on(TestDatabase::connect(&test_database_url(dir.path())));
    assert_eq!(runtime.block_on(db.scalar("SELECT COUNT(*) FROM log_index")), 1);
    for edit in ["UPDATE log_index SET kind = 'verify'", "DELETE FROM log_index"] {
        let refused = runtime.block_on(db.execute(edit)).unwrap_err();
        assert!(refused.contains("append-only"), "{edit}: {refused}");
    }
    if db.is_postgres() {
        assert!(runtime.block_on(db.execute("TRUNCATE log_index")).unwrap_err().contains("append-only"));
    }
}

fn search(server: &Notarium, token: &str, query: &str) -> (u16, Value) {
    call(server, "GET", &format!("/v1/log/search?{query}"), token, None)
}

#[test]
fn search_over_http_is_for_auditors_pages_with_a_cursor_and_refuses_bad_parameters_by_name() {
    let server = Notarium::start(&[]);
    let (auditor, _) = server.create_token(&["--role", "auditor"]);
    let (verifier, _) = server.create_token(&["--role", "verifier"]);
    let (admin, _) = server.create_token(&["--role", "admin"]);
    let start = std::time::Instant::now();
    while search(&server, "", "kind=sign").0 != 401 {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "the API stayed open");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(search(&server, &verifier, "kind=sign").0, 403);
    assert_eq!(search(&server, &admin, "kind=sign").0, 200);

    // The three keys' key-added entries, newest first, one a page.
    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let (status, page) = search(&server, &auditor, &format!("kind=key-added&limit=1{cursor}"));
        assert_eq!(status, 200, "{page}");
        seen.extend(page["entries"].as_array().unwrap().iter().map(|e| e["index"].as_u64().unwrap()));
        let Some(next) = page["next_cursor"].as_str() else { break };
        cursor = format!("&cursor={next}");
    }
    assert_eq!(seen, [2, 1, 0]);
    let (_, page) = search(&server, &auditor, "key=dev-ecdsa&key_version=1&actor=notarium");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(entries[0]["entry"]["subject"]["key"], "dev-ecdsa");
    assert!(page["next_cursor"].is_null());
    let (_, page) = search(&server, &auditor, "kind=token-created&from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z");
    assert_eq!(page["entries"].as_array().unwrap().len(), 3, "{page}");

    let (_, first) = search(&server, &auditor, "kind=key-added&limit=1");
    let good = first["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = good.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let long = "a".repeat(513);
    for (query, named) in [
        (format!("kind=key-added&cursor={tampered}"), "cursor"),
        (format!("kind=key-rotated&cursor={good}"), "cursor"),
        ("cursor=%00%01".to_owned(), "cursor"),
        ("digest=sha256:abc".to_owned(), "digest"),
        (format!("digest=sha256:{}", "A".repeat(64)), "digest"),
        ("kind=delete-everything".to_owned(), "kind"),
        (format!("actor={long}"), "actor"),
        ("actor=".to_owned(), "actor"),
        ("actor=a%0Ab".to_owned(), "actor"),
        (format!("key={long}"), "key"),
        ("key_version=0".to_owned(), "key_version"),
        ("key_version=-1".to_owned(), "key_version"),
        ("key_version=99999999999".to_owned(), "key_version"),
        (format!("repository={long}"), "repository"),
        ("repository=acme/*".to_owned(), "repository"),
        ("repository=ghcr.io/".to_owned(), "repository"),
        ("repository=a%20b".to_owned(), "repository"),
        ("from=yesterday".to_owned(), "from"),
        ("to=2026-13-01T00:00:00Z".to_owned(), "to"),
        (format!("from=2026-01-01T00:00:00.{}Z", "1".repeat(80)), "from"),
        ("limit=0".to_owned(), "limit"),
        ("limit=1001".to_owned(), "limit"),
        ("limit=ten".to_owned(), "limit"),
        ("repo=acme/app".to_owned(), "repo"),
        ("kind=sign&kind=verify".to_owned(), "kind"),
    ] {
        let (status, problem) = search(&server, &auditor, &query);
        assert_eq!(status, 400, "{query}: {problem}");
        assert!(problem["type"].as_str().unwrap().ends_with("/invalid-query"), "{query}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{query}: {detail}");
        assert!(detail.len() < 300, "{query}: the detail echoes the input: {detail}");
    }

    // The CLI: the same filters, every page with --all.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["log", "search", "--kind", "key-added", "--limit", "2", "--all", "--output", "json"])
        .args(["--server", &server.url])
        .env("NOTARIUM_TOKEN", &auditor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let indexes: Vec<u64> =
        answer["entries"].as_array().unwrap().iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert_eq!((indexes, answer["next_cursor"].is_null()), (vec![2, 1, 0], true));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notarium"))
        .args(["log", "search", "--key", "dev-log", "--server", &server.url])
        .env("NOTARIUM_TOKEN", &auditor)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("INDEX\tTIME\tKIND") && table.contains("key-added\tnotarium\tdev-log@1"), "{table}");
}
