//! Register search over HTTP: `GET /v1/log/search` (docs/API.md): the entries matching every filter given,
//! newest first, a page at a time behind an opaque cursor.
//!
//! Owns: reading and bounding the query (each bad parameter a `400 invalid-query` naming it) and the cursor's
//! bytes. Must not touch: SQL (the store runs the search) or what an entry's fields mean (`entry_fields`).

use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Auditing, Authorized};
use super::extract::AppQuery;
use super::log::Entry;
use super::{ApiError, AppState};
use crate::entry_fields::{KINDS, time_ms};
use crate::formats::digest::hex_lower;
use crate::store::{Found, SearchFilter};

/// Entries per page when `limit` is not given, and the most a page holds.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// The longest value a text filter takes: a registry host and repository path (distribution caps a
/// repository name at 255), an actor (`oidc:<issuer> sub=…`), a key id.
const MAX_TEXT: usize = 512;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchQuery {
    /// An image digest, `sha256:<64 hex>`: entries whose subject is that digest.
    #[param(pattern = "^sha256:[0-9a-f]{64}$")]
    digest: Option<String>,
    /// `host/path` (registry and repository, canonical: `docker.io/nginx` is `docker.io/library/nginx`)
    /// or a path alone (that repository at any registry).
    #[param(min_length = 1, max_length = 512)]
    repository: Option<String>,
    /// A key id: the key a `sign`/`attest` used, or the one a `key-added`/`key-rotated` is about.
    #[param(min_length = 1, max_length = 512)]
    key: Option<String>,
    /// A key version (with or without `key`).
    #[param(value_type = Option<i32>, minimum = 1)]
    key_version: Option<String>,
    /// An entry kind (`sign`, `attest`, `verify`, `registry-pull`, …).
    kind: Option<String>,
    /// The actor's name, exactly as entries record it (`token:<id>`, `oidc:<issuer> sub=…`, `notarium`).
    #[param(min_length = 1, max_length = 512)]
    actor: Option<String>,
    /// RFC 3339: entries whose `time` is at or after it.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339: entries whose `time` is before it (exclusive).
    #[param(format = DateTime)]
    to: Option<String>,
    /// The `next_cursor` of the previous page, with the same filters.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SearchPage {
    /// Newest first.
    entries: Vec<Entry>,
    /// Pass as `cursor` (with the same filters) for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// The entries matching every filter given (combined with AND), newest first; page with `next_cursor`.
#[utoipa::path(
    get,
    path = "/v1/log/search",
    tag = "register",
    security(("auditor" = []), ("admin" = [])),
    params(SearchQuery),
    responses((status = 200, description = "A page of matching entries, newest first", body = SearchPage))
)]
pub(super) async fn search(
    _caller: Authorized<Auditing>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<SearchQuery>,
) -> Result<Json<SearchPage>, ApiError> {
    let limit = limit(query.limit.as_deref())?;
    let filter = filter(&query)?;
    let before = query.cursor.as_deref().map(|c| open_cursor(c, &filter)).transpose()?;
    let found = state.service.register_search(&filter, before, limit + 1).await?;
    Ok(Json(page(found, limit, &filter)))
}

/// The first `limit` of `found` (asked for one more, to know whether a next page exists).
fn page(mut found: Vec<Found>, limit: u32, filter: &SearchFilter) -> SearchPage {
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next_cursor = match found.last() {
        Some(last) if more => Some(cursor(last.index, filter)),
        _ => None,
    };
    let entries = found
        .into_iter()
        .map(|f| Entry {
            index: f.index,
            leaf_hash: hex_lower(&f.leaf_hash),
            entry: serde_json::from_slice(&f.entry).unwrap_or(Value::Null),
        })
        .collect();
    SearchPage { entries, next_cursor }
}

pub(super) fn limit(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(value) = value else { return Ok(DEFAULT_LIMIT) };
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_query(format!("limit: expected an integer from 1 to {MAX_LIMIT}"))),
    }
}

fn filter(q: &SearchQuery) -> Result<SearchFilter, ApiError> {
    let (registry, repository) = match &q.repository {
        Some(r) => repository(r)?,
        None => (None, None),
    };
    Ok(SearchFilter {
        kind: q.kind.as_deref().map(kind).transpose()?,
        actor: q.actor.as_deref().map(|a| text("actor", a)).transpose()?,
        registry,
        repository,
        digest: q.digest.as_deref().map(digest).transpose()?,
        key: q.key.as_deref().map(|k| text("key", k)).transpose()?,
        key_version: q.key_version.as_deref().map(key_version).transpose()?,
        from_ms: q.from.as_deref().map(|t| time("from", t)).transpose()?,
        to_ms: q.to.as_deref().map(|t| time("to", t)).transpose()?,
    })
}

/// A text filter: 1 to [`MAX_TEXT`] bytes with no control characters.
fn text(name: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_query(format!(
            "{name}: expected 1 to {MAX_TEXT} bytes without control characters"
        )));
    }
    Ok(value.to_owned())
}

fn kind(value: &str) -> Result<String, ApiError> {
    if KINDS.contains(&value) {
        return Ok(value.to_owned());
    }
    Err(ApiError::invalid_query(format!("kind: expected one of {}", KINDS.join(", "))))
}

fn digest(value: &str) -> Result<String, ApiError> {
    crate::formats::Digest::parse(value)
        .map(|d| d.as_str().to_owned())
        .map_err(|_| ApiError::invalid_query("digest: expected sha256: and 64 lowercase hex digits"))
}

fn key_version(value: &str) -> Result<i64, ApiError> {
    match value.parse::<i32>() {
        Ok(n) if n >= 1 => Ok(i64::from(n)),
        _ => Err(ApiError::invalid_query(format!("key_version: expected an integer from 1 to {}", i32::MAX))),
    }
}

pub(super) fn time(name: &str, value: &str) -> Result<i64, ApiError> {
    if value.len() > 64 {
        return Err(ApiError::invalid_query(format!("{name}: expected an RFC 3339 date-time")));
    }
    time_ms(value).ok_or_else(|| ApiError::invalid_query(format!("{name}: expected an RFC 3339 date-time")))
}

/// `host/path` names a registry and a repository (in their canonical form, as entries record them); a path
/// whose first segment is not a host (no `.` or `:`, not `localhost`) is a repository at any registry.
fn repository(value: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    let invalid = || {
        ApiError::invalid_query(format!(
            "repository: expected host/path or a path, 1 to {MAX_TEXT} bytes of printable ASCII without *"
        ))
    };
    let printable = value.bytes().all(|b| b.is_ascii_graphic() && b != b'*');
    if value.is_empty() || value.len() > MAX_TEXT || !printable {
        return Err(invalid());
    }
    let Some((host, path)) = value.split_once('/').filter(|(host, _)| looks_like_host(host)) else {
        return Ok((None, Some(value.to_owned())));
    };
    if path.is_empty() || crate::formats::canonical_registry(host).is_err() {
        return Err(invalid());
    }
    let canonical = crate::formats::canonical_pattern(value);
    let (registry, path) = canonical.split_once('/').ok_or_else(invalid)?;
    Ok((Some(registry.to_owned()), Some(path.to_owned())))
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first.eq_ignore_ascii_case("localhost")
}

const CURSOR_VERSION: u8 = 1;

/// The cursor after entry `index`: a version byte, the index, and a check binding both to the filters, so
/// an altered cursor, or one used with other filters, is refused rather than silently skipping entries.
pub(super) fn cursor(index: u64, filter: &SearchFilter) -> String {
    let mut bytes = vec![CURSOR_VERSION];
    bytes.extend_from_slice(&index.to_be_bytes());
    bytes.extend_from_slice(&cursor_check(index, filter));
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn open_cursor(cursor: &str, filter: &SearchFilter) -> Result<u64, ApiError> {
    let invalid = || ApiError::invalid_query("cursor: not a next_cursor this search returned with these filters");
    if cursor.len() > 64 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let [CURSOR_VERSION, rest @ ..] = bytes.as_slice() else { return Err(invalid()) };
    let (index, check) = rest.split_at_checked(8).ok_or_else(invalid)?;
    let index = u64::from_be_bytes(index.try_into().map_err(|_| invalid())?);
    if check != cursor_check(index, filter) {
        return Err(invalid());
    }
    Ok(index)
}

fn cursor_check(index: u64, filter: &SearchFilter) -> [u8; 12] {
    let mut hash = Sha256::new();
    hash.update(b"notarium search cursor\0");
    hash.update(index.to_be_bytes());
    hash.update(format!("{filter:?}").as_bytes());
    let mut check = [0u8; 12];
    check.copy_from_slice(&hash.finalize()[..12]);
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_unaltered_and_with_its_own_filters() {
        let filter = SearchFilter { kind: Some("sign".into()), ..SearchFilter::default() };
        let c = cursor(41, &filter);
        assert_eq!(open_cursor(&c, &filter).unwrap(), 41);
        let other = SearchFilter { kind: Some("verify".into()), ..SearchFilter::default() };
        assert!(open_cursor(&c, &other).is_err());
        let mut bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        bytes[8] ^= 1;
        assert!(open_cursor(&URL_SAFE_NO_PAD.encode(&bytes), &filter).is_err());
        for junk in ["", "!!", "AQ", &"A".repeat(100)] {
            assert!(open_cursor(junk, &filter).is_err(), "{junk}");
        }
    }

    #[test]
    fn repositories_name_a_registry_only_when_their_first_segment_is_a_host() {
        let r = |v: &str| repository(v).ok();
        assert_eq!(r("acme/app"), Some((None, Some("acme/app".into()))));
        assert_eq!(r("GHCR.io/acme/app"), Some((Some("ghcr.io".into()), Some("acme/app".into()))));
        assert_eq!(r("docker.io/nginx"), Some((Some("docker.io".into()), Some("library/nginx".into()))));
        assert_eq!(r("localhost:5000/a"), Some((Some("localhost:5000".into()), Some("a".into()))));
        for bad in ["", "a b", "a/*", "ghcr.io/", "\u{7f}"] {
            assert!(repository(bad).is_err(), "{bad:?}");
        }
    }
}
