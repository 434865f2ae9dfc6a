//! [`Registry`] over the OCI distribution HTTP API (CNCF distribution, Harbor, GHCR, …): anonymous,
//! basic or bearer-token auth, HTTPS except for the configured plain-HTTP list, every host contacted
//! through the egress rules (`egress.rs`), every answer's body read within a cap.
//!
//! Nothing a registry answers reaches a caller: error bodies are read (capped) for their distribution
//! error code and logged, transport failures are logged and reported as "could not be reached".

use crate::error_chain::root_cause;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url, header};

use super::memory::Remembered;
use zeroize::Zeroizing;

use super::egress::{EgressClients, EgressRules, Refusal};
use super::{Manifest, OciError, PutManifest, Registry, Repository};
use crate::config::RegistriesConfig;
use crate::formats::reference::connection_host;
use crate::formats::referrer::ReferrersIndex;
use crate::formats::signature_manifest::{OCI_INDEX, OCI_MANIFEST};
use crate::formats::{Digest, FormatError};
use crate::http_body::{BodyError, read_prefix};

const ACCEPTED_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
const MAX_REFERRERS_PAGES: usize = 100;
const RACING_WRITE_ATTEMPTS: u32 = 4;

/// The error codes of the distribution specification (and distribution's own): the only part of an error
/// answer notarium passes on.
const DISTRIBUTION_CODES: [&str; 20] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "UNAVAILABLE",
    "UNKNOWN",
    "PAGINATION_NUMBER_INVALID",
    "RANGE_INVALID",
];

/// Credentials for one registry host. The password is never logged or shown in errors.
#[derive(Clone)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryCredentials({}, <redacted>)", self.username)
    }
}

/// How much of each kind of answer is read (`[registries]`); evidence blobs have their own caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    pub max_manifest_bytes: usize,
    pub max_error_body_bytes: usize,
    pub max_token_body_bytes: usize,
}

impl RegistryLimits {
    pub fn from_config(config: &RegistriesConfig) -> Self {
        Self {
            max_manifest_bytes: config.max_manifest_bytes,
            max_error_body_bytes: config.max_error_body_bytes,
            max_token_body_bytes: config.max_token_body_bytes,
        }
    }
}

impl Default for RegistryLimits {
    fn default() -> Self {
        Self::from_config(&RegistriesConfig::default())
    }
}

/// The most requests sent to one registry at a time; more wait their turn. Without a bound, every verify in
/// flight holds its own connections (three reads at once each) and their buffers while the registry, which
/// sets the pace anyway, works through them: 1,000 concurrent verifies peaked at 128 MB RSS, 63 MB with this
/// bound (docs/PERFORMANCE.md, `scripts/bench-memory.sh`).
const MAX_REQUESTS_PER_REGISTRY: usize = 64;

/// A distribution-API client shared by all requests.
pub struct DistributionRegistry {
    egress: EgressClients,
    limits: RegistryLimits,
    credentials: HashMap<String, RegistryCredentials>,
    tokens: Mutex<HashMap<(String, String), Zeroizing<String>>>,
    /// Per registry (canonical name): the turns of [`MAX_REQUESTS_PER_REGISTRY`].
    turns: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Blobs this process uploaded or found, and until when they are taken to be there without asking.
    known_blobs: Remembered<(Repository, Digest)>,
    /// Registries that answered a single-POST upload by opening a session instead, and until when they are
    /// sent the POST without the blob.
    no_single_post: Remembered<String>,
    /// Upload sessions opened ahead of the uploads that take them ([`Registry::open_uploads`]).
    opened: OpenedUploads,
}

/// The most upload sessions one call opens ahead.
const MAX_OPENED_PER_REPOSITORY: usize = 8;
/// How long a session opened ahead is used; an older one is left to the registry's purge of stale uploads.
const OPENED_UPLOAD_LASTS: Duration = Duration::from_secs(60);
/// The most sessions opened ahead kept at once, all repositories together; past it the oldest are dropped.
const MAX_OPENED_UPLOADS: usize = 1024;

/// Upload sessions opened ahead, per repository, each with when it was opened.
#[derive(Default)]
struct OpenedUploads(Mutex<HashMap<Repository, std::collections::VecDeque<(tokio::time::Instant, String)>>>);

impl OpenedUploads {
    fn put(&self, repo: &Repository, location: String) {
        let mut opened = self.0.lock().expect("opened uploads");
        if opened.values().map(std::collections::VecDeque::len).sum::<usize>() >= MAX_OPENED_UPLOADS {
            opened.clear();
        }
        opened.entry(repo.clone()).or_default().push_back((tokio::time::Instant::now(), location));
    }

    /// The oldest session opened ahead in `repo` that is still fresh; stale ones are forgotten.
    fn take(&self, repo: &Repository) -> Option<String> {
        let mut opened = self.0.lock().expect("opened uploads");
        let sessions = opened.get_mut(repo)?;
        sessions.retain(|(at, _)| at.elapsed() < OPENED_UPLOAD_LASTS);
        let location = sessions.pop_front().map(|(_, location)| location);
        if sessions.is_empty() {
            opened.remove(repo);
        }
        location
    }
}

/// Blobs up to this size are uploaded without asking first whether the registry has them: the question
/// costs a round trip, the answer is almost always no (a signature's payload or envelope is new), and
/// uploading a blob the registry has is harmless. Larger ones are asked about first.
const UPLOAD_WITHOUT_ASKING: usize = 64 * 1024;
/// How long a blob uploaded (or found) is taken to be in its repository without a HEAD, and how long a
/// registry that took no single-POST upload is not offered one: a blob deleted meanwhile (garbage
/// collection) fails at most the manifest writes of this time, and the memory is dropped when one does.
const REGISTRY_MEMORY: Duration = Duration::from_secs(600);
/// The most blobs (or registries) remembered; past it the memory starts over.
const MAX_REMEMBERED: usize = 10_000;

impl DistributionRegistry {
    pub fn new(rules: EgressRules, limits: RegistryLimits, credentials: HashMap<String, RegistryCredentials>) -> Self {
        let egress = EgressClients::new(rules);
        Self {
            egress,
            limits,
            credentials,
            tokens: Mutex::default(),
            turns: Mutex::default(),
            known_blobs: Remembered::new(REGISTRY_MEMORY, MAX_REMEMBERED),
            no_single_post: Remembered::new(REGISTRY_MEMORY, MAX_REMEMBERED),
            opened: OpenedUploads::default(),
        }
    }

    /// A client on the embedded `[registries]` defaults, speaking plain HTTP to `insecure`, without
    /// credentials.
    pub fn with_insecure(insecure: impl IntoIterator<Item = String>) -> Self {
        let config = RegistriesConfig { insecure: insecure.into_iter().collect(), ..RegistriesConfig::default() };
        Self::new(EgressRules::from_config(&config), RegistryLimits::from_config(&config), HashMap::new())
    }

    /// The repository's API root. The plain-HTTP list and credentials are keyed by the canonical registry
    /// name; only the host connected to may differ (`docker.io` answers at `registry-1.docker.io`).
    fn base_url(&self, repo: &Repository) -> String {
        let scheme = if self.egress.rules.is_insecure(&repo.registry) { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", connection_host(&repo.registry), repo.name)
    }

    /// Sends a request, answering one bearer or basic challenge if the registry asks for it. The egress
    /// rules decide on the registry before anything is sent.
    async fn send(
        &self,
        repo: &Repository,
        push: bool,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, OciError> {
        let client = self.egress.for_host(&repo.registry).map_err(|refusal| not_allowed(repo, refusal))?;
        let scope = format!("repository:{}:{}", repo.name, if push { "pull,push" } else { "pull" });
        let cached = self.cached_token(&repo.registry, &scope);
        let response =
            self.dispatch(repo, self.authorize(build(client), repo, cached.as_deref().map(String::as_str))).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let token = match parse_bearer_challenge(&challenge) {
            Some(bearer) => Some(Zeroizing::new(self.fetch_token(repo, &bearer, &scope).await?)),
            None if self.credentials.contains_key(&repo.registry) => None,
            None => return Ok(response),
        };
        if let Some(token) = &token {
            self.tokens.lock().expect("token cache lock").insert((repo.registry.clone(), scope), token.clone());
        }
        self.dispatch(repo, self.authorize(build(client), repo, token.as_deref().map(String::as_str))).await
    }

    fn cached_token(&self, registry: &str, scope: &str) -> Option<Zeroizing<String>> {
        let tokens = self.tokens.lock().expect("token cache lock");
        tokens.get(&(registry.to_owned(), scope.to_owned())).cloned()
    }

    fn authorize(&self, request: RequestBuilder, repo: &Repository, token: Option<&str>) -> RequestBuilder {
        match (token, self.credentials.get(&repo.registry)) {
            (Some(token), _) => request.bearer_auth(token),
            (None, Some(c)) => request.basic_auth(&c.username, Some(c.password.as_str())),
            (None, None) => request,
        }
    }

    /// A bearer token from the challenge's realm: HTTPS on a host the egress rules allow, with the
    /// registry's credentials only when the realm is its own or listed for it.
    async fn fetch_token(
        &self,
        repo: &Repository,
        challenge: &BearerChallenge,
        scope: &str,
    ) -> Result<String, OciError> {
        let refused = |rule: &str| not_allowed(repo, Refusal { rule: format!("its token realm: {rule}") });
        let realm = Url::parse(&challenge.realm).map_err(|_| refused("not a URL"))?;
        let client = self.egress.for_realm(&realm).map_err(|refusal| refused(&refusal.rule))?;
        let mut request = client.get(realm.clone()).query(&[("service", challenge.service.as_str()), ("scope", scope)]);
        if let Some(c) = self.credentials.get(&repo.registry) {
            let rules = &self.egress.rules;
            rules.check_credential_realm(&repo.registry, &realm).map_err(|refusal| refused(&refusal.rule))?;
            request = request.basic_auth(&c.username, Some(c.password.as_str()));
        }
        let response = self.dispatch(repo, request).await?;
        if !response.status().is_success() {
            return Err(OciError::Unauthorized {
                registry: repo.registry.clone(),
                repository: repo.name.clone(),
                status: response.status().as_u16(),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let bytes = read_capped(repo, response, self.limits.max_token_body_bytes, || "a token answer".into()).await?;
        let body: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|_| OciError::Format(FormatError::malformed("token answer", "not a JSON token answer")))?;
        body.token.or(body.access_token).ok_or_else(|| OciError::Unauthorized {
            registry: repo.registry.clone(),
            repository: repo.name.clone(),
            status: 401,
        })
    }

    /// Sends one request once the registry has a free turn; the turn ends with the answer's headers (the
    /// caller then reads the body at once).
    async fn dispatch(&self, repo: &Repository, request: RequestBuilder) -> Result<Response, OciError> {
        let turns = {
            let mut turns = self.turns.lock().expect("turns lock is never poisoned");
            let entry = turns.entry(repo.registry.clone());
            entry.or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_PER_REGISTRY))).clone()
        };
        let _turn = turns.acquire().await.expect("the semaphore is never closed");
        request.send().await.map_err(|e| transport_error(repo, &e))
    }

    /// The error for a non-success answer: its status and distribution error code; its body only logged.
    async fn refused(&self, repo: &Repository, operation: String, response: Response) -> OciError {
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            return OciError::Unauthorized { registry: repo.registry.clone(), repository: repo.name.clone(), status };
        }
        let body = read_prefix(response, self.limits.max_error_body_bytes).await;
        let codes = distribution_error_codes(&body);
        tracing::warn!(
            registry = %repo.registry,
            %operation,
            status,
            codes = %codes.join(","),
            body = %String::from_utf8_lossy(&body).escape_debug(),
            "registry refused a request"
        );
        OciError::Refused { registry: repo.registry.clone(), operation, status, codes }
    }

    async fn fetch_manifest(&self, repo: &Repository, reference: &str) -> Result<Option<Manifest>, OciError> {
        let url = format!("{}/manifests/{reference}", self.base_url(repo));
        let response = self.send(repo, false, |c| c.get(&url).header(header::ACCEPT, ACCEPTED_MANIFESTS)).await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            _ => {
                return Err(self.refused(repo, format!("GET manifest {reference}"), response).await);
            }
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(OCI_MANIFEST)
            .to_owned();
        let announced =
            response.headers().get("Docker-Content-Digest").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let limit = self.limits.max_manifest_bytes;
        let bytes = read_capped(repo, response, limit, || format!("manifest {reference}")).await?;
        let digest = Digest::of(&bytes);
        let expected = Digest::parse(reference).ok().map(|d| d.to_string()).or(announced);
        if expected.is_some_and(|e| e != digest.as_str()) {
            return Err(OciError::DigestMismatch {
                registry: repo.registry.clone(),
                what: format!("manifest {reference}"),
            });
        }
        Ok(Some(Manifest { bytes, media_type: normalize_media_type(&media_type), digest }))
    }

    /// One page of the referrers API and the next page's URL; `None` when the registry has no usable
    /// referrers API: it answers 404 (distribution), 429 or a redirect, was redirected to another origin, or
    /// serves something that is not an image index (GHCR). The fallback tag then stands in.
    async fn referrers_page(
        &self,
        repo: &Repository,
        subject: &Digest,
        url: &str,
    ) -> Result<Option<(ReferrersIndex, Option<String>)>, OciError> {
        let response = match self.send(repo, false, |c| c.get(url).header(header::ACCEPT, OCI_INDEX)).await {
            // A redirect the egress rules refuse (GHCR's sends the API elsewhere): no usable referrers API here.
            Err(OciError::NotAllowed { rule, .. }) if rule == super::egress::REDIRECT_OFF_ORIGIN => {
                tracing::debug!(registry = %repo.registry, "the referrers API redirects elsewhere");
                return Ok(None);
            }
            answered => answered?,
        };
        let status = response.status();
        let elsewhere = reqwest::Url::parse(url).map(|asked| asked.origin()) != Ok(response.url().origin());
        if status == StatusCode::NOT_FOUND
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_redirection()
            || elsewhere
        {
            tracing::debug!(registry = %repo.registry, status = status.as_u16(), elsewhere, "no usable referrers API");
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.refused(repo, format!("GET referrers {subject}"), response).await);
        }
        let next = next_page(response.headers(), &self.base_url(repo), repo)?;
        let limit = self.limits.max_manifest_bytes;
        let bytes = read_capped(repo, response, limit, || format!("a referrers page of {subject}")).await?;
        match ReferrersIndex::parse(&bytes) {
            Ok(index) => Ok(Some((index, next))),
            Err(_) => {
                tracing::debug!(registry = %repo.registry, "the referrers API answered something that is no image index");
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Registry for DistributionRegistry {
    async fn get_manifest(&self, repo: &Repository, reference: &str) -> Result<Option<Manifest>, OciError> {
        retry_racing_writes(|| self.fetch_manifest(repo, reference)).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest, OciError> {
        let url = &format!("{}/manifests/{reference}", self.base_url(repo));
        retry_racing_writes(|| async move {
            let put = |c: &reqwest::Client| c.put(url).header(header::CONTENT_TYPE, media_type).body(bytes.to_vec());
            let response = self.send(repo, true, put).await?;
            if !response.status().is_success() {
                let error = self.refused(repo, format!("PUT manifest {reference}"), response).await;
                if matches!(&error, OciError::Refused { codes, .. } if codes.iter().any(|c| c == "MANIFEST_BLOB_UNKNOWN")) {
                    self.known_blobs.forget(|(known, _)| known == repo);
                }
                return Err(error);
            }
            let subject_indexed = response.headers().contains_key("OCI-Subject");
            Ok(PutManifest { digest: Digest::of(bytes), subject_indexed })
        })
        .await
    }

    async fn get_referrers(&self, repo: &Repository, subject: &Digest) -> Result<Option<ReferrersIndex>, OciError> {
        let mut url = format!("{}/referrers/{subject}", self.base_url(repo));
        let mut index: Option<ReferrersIndex> = None;
        for _ in 0..MAX_REFERRERS_PAGES {
            let Some((page, next)) = retry_racing_writes(|| self.referrers_page(repo, subject, &url)).await? else {
                return Ok(None);
            };
            match &mut index {
                Some(index) => index.manifests.extend(page.manifests),
                None => index = Some(page),
            }
            match next {
                Some(next) => url = next,
                None => return Ok(index),
            }
        }
        Err(OciError::Refused {
            registry: repo.registry.clone(),
            operation: format!("GET referrers {subject} (more than {MAX_REFERRERS_PAGES} pages)"),
            status: 200,
            codes: Vec::new(),
        })
    }

    async fn get_blob(&self, repo: &Repository, digest: &Digest, max_bytes: usize) -> Result<Vec<u8>, OciError> {
        let url = format!("{}/blobs/{digest}", self.base_url(repo));
        let response = self.send(repo, false, |c| c.get(&url)).await?;
        match response.status() {
            StatusCode::NOT_FOUND => {
                return Err(OciError::BlobNotFound { registry: repo.registry.clone(), digest: digest.to_string() });
            }
            s if s.is_success() => {}
            _ => {
                return Err(self.refused(repo, format!("GET blob {digest}"), response).await);
            }
        }
        let bytes = read_capped(repo, response, max_bytes, || format!("blob {digest}")).await?;
        if Digest::of(&bytes) != *digest {
            return Err(OciError::DigestMismatch { registry: repo.registry.clone(), what: format!("blob {digest}") });
        }
        Ok(bytes)
    }

    async fn put_blob(&self, repo: &Repository, bytes: &[u8]) -> Result<Digest, OciError> {
        let digest = Digest::of(bytes);
        if self.known_blobs.holds(&(repo.clone(), digest.clone())) {
            return Ok(digest);
        }
        if bytes.len() > UPLOAD_WITHOUT_ASKING {
            let blob_url = format!("{}/blobs/{digest}", self.base_url(repo));
            let head = self.send(repo, true, |c| c.request(Method::HEAD, &blob_url)).await?;
            if head.status().is_success() {
                self.known_blobs.remember((repo.clone(), digest.clone()));
                return Ok(digest);
            }
        }
        self.upload_blob(repo, &digest, bytes).await?;
        self.known_blobs.remember((repo.clone(), digest.clone()));
        Ok(digest)
    }

    async fn open_uploads(&self, repo: &Repository, new: usize, maybe_known: &[Digest]) -> usize {
        if !self.no_single_post.holds(repo.registry.as_str()) {
            return 0;
        }
        let unknown = maybe_known.iter().filter(|d| !self.known_blobs.holds(&(repo.clone(), (*d).clone()))).count();
        let count = (new + unknown).min(MAX_OPENED_PER_REPOSITORY);
        let opened = futures_util::future::join_all((0..count).map(|_| self.open_session(repo))).await;
        let opened: Vec<String> = opened.into_iter().flatten().collect();
        let count = opened.len();
        for location in opened {
            self.opened.put(repo, location);
        }
        count
    }

    async fn cancel_uploads(&self, repo: &Repository, count: usize) {
        let locations: Vec<String> = (0..count).map_while(|_| self.opened.take(repo)).collect();
        futures_util::future::join_all(locations.iter().map(|location| async move {
            if let Err(e) = self.send(repo, true, |c| c.delete(location)).await {
                tracing::debug!(error = %e, "cancelling an upload session failed");
            }
        }))
        .await;
    }
}

impl DistributionRegistry {
    /// A new upload session's location, or `None` (logged) when the registry opened none.
    async fn open_session(&self, repo: &Repository) -> Option<String> {
        let start_url = format!("{}/blobs/uploads/", self.base_url(repo));
        let started = match self.send(repo, true, |c| c.post(&start_url)).await {
            Ok(started) if started.status() == StatusCode::ACCEPTED => started,
            Ok(other) => {
                tracing::debug!(status = other.status().as_u16(), "no upload session opened ahead");
                return None;
            }
            Err(e) => {
                tracing::debug!(error = %e, "no upload session opened ahead");
                return None;
            }
        };
        upload_location(&started, &self.base_url(repo), repo).ok()
    }

    /// Uploads `bytes` in one request where the registry takes a single-POST upload (`POST
    /// …/blobs/uploads/?digest=` with the blob), else in two: a POST opening the session and one PUT with the
    /// whole blob (never chunks). A registry answering the single POST with a session is remembered as such.
    async fn upload_blob(&self, repo: &Repository, digest: &Digest, bytes: &[u8]) -> Result<(), OciError> {
        if let Some(location) = self.opened.take(repo) {
            match self.finish_upload(repo, digest, bytes, &location).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(error = %e, "an upload session opened ahead failed; opening another"),
            }
        }
        let start_url = format!("{}/blobs/uploads/", self.base_url(repo));
        let single = !self.no_single_post.holds(repo.registry.as_str());
        let started = match single {
            true => {
                let url = format!("{start_url}?digest={digest}");
                let post = |c: &reqwest::Client| {
                    c.post(&url).header(header::CONTENT_TYPE, "application/octet-stream").body(bytes.to_vec())
                };
                self.send(repo, true, post).await?
            }
            false => self.send(repo, true, |c| c.post(&start_url)).await?,
        };
        if single && started.status() == StatusCode::CREATED {
            return Ok(());
        }
        if started.status() != StatusCode::ACCEPTED {
            return Err(self.refused(repo, "start blob upload".into(), started).await);
        }
        if single {
            self.no_single_post.remember(repo.registry.clone());
        }
        let location = upload_location(&started, &self.base_url(repo), repo)?;
        self.finish_upload(repo, digest, bytes, &location).await
    }

    /// Puts the whole blob `bytes` into the upload session at `location`, which ends it.
    async fn finish_upload(
        &self,
        repo: &Repository,
        digest: &Digest,
        bytes: &[u8],
        location: &str,
    ) -> Result<(), OciError> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let finish_url = format!("{location}{separator}digest={digest}");
        let finished = self
            .send(repo, true, |c| {
                c.put(&finish_url).header(header::CONTENT_TYPE, "application/octet-stream").body(bytes.to_vec())
            })
            .await?;
        if !finished.status().is_success() {
            return Err(self.refused(repo, format!("upload blob {digest}"), finished).await);
        }
        Ok(())
    }
}

/// Runs `request` again, after a growing pause, while it fails the way a concurrent write of the same tag
/// or blob makes distribution 2.8 fail: it rewrites link files in place, so a reader can find one empty
/// (HTTP 500, or a blob it holds reported unknown when a manifest is checked).
async fn retry_racing_writes<T, F>(mut request: impl FnMut() -> F) -> Result<T, OciError>
where
    F: Future<Output = Result<T, OciError>>,
{
    let mut pause = Duration::from_millis(20);
    for _ in 1..RACING_WRITE_ATTEMPTS {
        match request().await {
            Err(OciError::Refused { status, codes, .. })
                if status >= 500 || codes.iter().any(|c| c == "MANIFEST_BLOB_UNKNOWN") =>
            {
                tracing::debug!(status, "registry failed as under a concurrent write; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            done => return done,
        }
    }
    request().await
}

fn normalize_media_type(content_type: &str) -> String {
    let bare = content_type.split(';').next().unwrap_or_default().trim();
    match bare {
        "" => OCI_MANIFEST.to_owned(),
        "application/vnd.docker.distribution.manifest.list.v2+json" => OCI_INDEX.to_owned(),
        other => other.to_owned(),
    }
}

/// The upload URL a registry answered with, which must stay on its origin.
fn upload_location(response: &Response, base: &str, repo: &Repository) -> Result<String, OciError> {
    let location =
        response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| OciError::Refused {
            registry: repo.registry.clone(),
            operation: "start blob upload (no Location header)".into(),
            status: response.status().as_u16(),
            codes: Vec::new(),
        })?;
    same_origin_url(base, location).ok_or_else(|| {
        not_allowed(repo, Refusal { rule: "an upload Location must stay on the registry's origin".into() })
    })
}

/// `target` (absolute, or relative to `base`) as an absolute URL, when it is on `base`'s origin.
fn same_origin_url(base: &str, target: &str) -> Option<String> {
    let base = Url::parse(base).ok()?;
    let url = base.join(target).ok()?;
    let same = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    same.then(|| url.to_string())
}

/// The `rel="next"` target of a paginated answer's `Link` header, which must stay on the registry's origin.
fn next_page(headers: &header::HeaderMap, base: &str, repo: &Repository) -> Result<Option<String>, OciError> {
    let links = headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok());
    let next = links.flat_map(|v| v.split(',')).find(|link| link.contains("rel=\"next\""));
    let Some(target) = next.and_then(|link| link.split_once('<')?.1.split_once('>').map(|(target, _)| target)) else {
        return Ok(None);
    };
    let refusal = || Refusal { rule: "a Link rel=\"next\" must stay on the registry's origin".into() };
    same_origin_url(base, target).map(Some).ok_or_else(|| not_allowed(repo, refusal()))
}

/// The body of `response` within `limit` bytes: [`OciError::TooLarge`] as soon as the announced length or
/// the bytes received pass it, so nothing past the cap is ever held.
async fn read_capped(
    repo: &Repository,
    response: Response,
    limit: usize,
    what: impl Fn() -> String,
) -> Result<Vec<u8>, OciError> {
    crate::http_body::read_capped(response, limit).await.map_err(|error| match error {
        BodyError::TooLarge(limit) => OciError::TooLarge { registry: repo.registry.clone(), what: what(), limit },
        BodyError::Transport(e) => transport_error(repo, &e),
    })
}

/// The distribution error codes of an error answer (`{"errors": [{"code": …}]}`) that are the
/// specification's, in order: never a message or detail.
fn distribution_error_codes(body: &[u8]) -> Vec<String> {
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let errors = answer.get("errors").and_then(|e| e.as_array()).map(Vec::as_slice).unwrap_or_default();
    let codes = errors.iter().filter_map(|e| e.get("code")?.as_str());
    codes.filter(|code| DISTRIBUTION_CODES.contains(code)).map(str::to_owned).collect()
}

struct BearerChallenge {
    realm: String,
    service: String,
}

/// The realm and service of a `Bearer` challenge. Quoted values may hold commas (distribution's
/// `scope="repository:app:pull,push"`), so the parameters are read one quoted value at a time.
fn parse_bearer_challenge(header_value: &str) -> Option<BearerChallenge> {
    let mut rest = header_value.strip_prefix("Bearer ")?.trim();
    let mut realm = None;
    let mut service = String::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"')?,
            None => after.split_once(',').unwrap_or((after, "")),
        };
        match key.trim() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = value.to_owned(),
            _ => {}
        }
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    Some(BearerChallenge { realm: realm?, service })
}

fn not_allowed(repo: &Repository, refusal: Refusal) -> OciError {
    tracing::info!(registry = %repo.registry, rule = %refusal.rule, "registry not contacted: egress rules");
    OciError::NotAllowed { registry: repo.registry.clone(), rule: refusal.rule }
}

/// A request that got no answer: refused by the egress rules (a redirect, or a name that resolved to
/// internal addresses only), a TLS failure, or unreachable. The low-level reason goes to the log only.
fn transport_error(repo: &Repository, error: &reqwest::Error) -> OciError {
    if let Some(refusal) = find_in_chain::<Refusal>(error) {
        return not_allowed(repo, refusal.clone());
    }
    let reason = if error.is_timeout() { "timed out".to_owned() } else { root_cause(error) };
    tracing::warn!(registry = %repo.registry, %reason, "registry could not be reached");
    if find_in_chain::<rustls::Error>(error).is_some() {
        OciError::TlsFailed { registry: repo.registry.clone(), reason }
    } else {
        OciError::Unreachable { registry: repo.registry.clone(), reason }
    }
}

/// The first `T` among `error`'s causes. io::Error hides its payload from `source()`, and hyper nests io
/// errors, so look inside each one.
pub(super) fn find_in_chain<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    if let Some(found) = error.downcast_ref::<T>() {
        return Some(found);
    }
    let inside_io = error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|inner| {
        let inner: &(dyn std::error::Error + 'static) = inner;
        find_in_chain::<T>(inner)
    });
    inside_io.or_else(|| error.source().and_then(find_in_chain::<T>))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_distribution_bearer_challenge() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.example/token");
        assert_eq!(c.service, "registry.example");
        assert!(parse_bearer_challenge("Basic realm=\"x\"").is_none());
        // A push scope lists two actions: its comma is inside the quotes.
        let push = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull,push""#,
        )
        .unwrap();
        assert_eq!((push.realm.as_str(), push.service.as_str()), ("https://auth.example/token", "registry.example"));
        let unquoted =
            parse_bearer_challenge("Bearer scope=\"repository:a:pull,push\",realm=https://auth.example/t").unwrap();
        assert_eq!(unquoted.realm, "https://auth.example/t");
    }

    fn registry_with(insecure: &[&str]) -> DistributionRegistry {
        let _ = rustls::crypto::ring::default_provider().install_default();
        DistributionRegistry::with_insecure(insecure.iter().map(|s| s.to_string()))
    }

    #[test]
    fn docker_hub_is_contacted_at_its_endpoint_and_the_plain_http_list_is_keyed_by_canonical_name() {
        let registry = registry_with(&["localhost:5000"]);
        let repo = |registry: &str, name: &str| Repository { registry: registry.into(), name: name.into() };
        assert_eq!(
            registry.base_url(&repo("docker.io", "library/nginx")),
            "https://registry-1.docker.io/v2/library/nginx"
        );
        assert_eq!(registry.base_url(&repo("localhost:5000", "team/app")), "http://localhost:5000/v2/team/app");
    }

    #[test]
    fn follows_a_next_link_on_the_registry_origin_and_nothing_else() {
        let base = "https://registry.example/v2/demo/app";
        let repo = Repository { registry: "registry.example".into(), name: "demo/app".into() };
        let next = |links: &[&str]| {
            let mut headers = header::HeaderMap::new();
            for link in links {
                headers.append(header::LINK, link.parse().unwrap());
            }
            next_page(&headers, base, &repo)
        };
        assert_eq!(next(&[]).unwrap(), None);
        assert_eq!(next(&[r#"<https://elsewhere.example/a>; rel="prev""#]).unwrap(), None);
        let relative = r#"</v2/demo/app/referrers/sha256:ab?n=2&last=x>; rel="next""#;
        let expected = "https://registry.example/v2/demo/app/referrers/sha256:ab?n=2&last=x";
        assert_eq!(next(&[relative]).unwrap().as_deref(), Some(expected));
        let absolute = r#"<https://registry.example/v2/demo/app/referrers/sha256:ab?n=2&last=x>; rel="next""#;
        assert_eq!(next(&[absolute]).unwrap().as_deref(), Some(expected));
        for elsewhere in [
            r#"<https://elsewhere.example/v2/x>; rel="next""#,
            r#"<http://registry.example/v2/x>; rel="next""#,
            r#"<https://registry.example:8443/v2/x>; rel="next""#,
            r#"<//elsewhere.example/v2/x>; rel="next""#,
        ] {
            let error = next(&[elsewhere]).unwrap_err();
            assert!(matches!(error, OciError::NotAllowed { .. }), "{elsewhere}: {error}");
        }
    }

    #[test]
    fn only_known_distribution_error_codes_are_taken_from_an_error_answer() {
        let codes = |body: &str| distribution_error_codes(body.as_bytes());
        assert_eq!(codes(r#"{"errors":[{"code":"NAME_INVALID","message":"secret"}]}"#), ["NAME_INVALID"]);
        let two =
            r#"{"errors":[{"code":"DIGEST_INVALID"},{"code":"10.0.0.7 said no"},{"code":"MANIFEST_BLOB_UNKNOWN"}]}"#;
        assert_eq!(codes(two), ["DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"]);
        assert!(codes(r#"{"errors":[{"code":"10.0.0.7 said no"}]}"#).is_empty());
        assert!(codes("<html>internal stack trace</html>").is_empty());
        assert!(codes(r#"{"errors":"NAME_INVALID"}"#).is_empty());
    }

    /// A plain-HTTP server answering every request 200 with `headers` and then `body` chunks, the same
    /// one forever when `endless`, until the client goes away. Returns its `host:port`.
    async fn hostile_server(headers: &'static str, endless: bool) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = format!("HTTP/1.1 200 OK\r\n{headers}\r\n");
                    socket.write_all(head.as_bytes()).await?;
                    let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
                    if endless {
                        loop {
                            socket.write_all(chunk.as_bytes()).await?;
                        }
                    }
                    std::io::Result::Ok(())
                });
            }
        });
        host
    }

    async fn blob_from(host: &str, max_bytes: usize) -> Result<Vec<u8>, OciError> {
        let registry = registry_with(&[host]);
        let repo = Repository { registry: host.to_owned(), name: "demo/app".into() };
        registry.get_blob(&repo, &Digest::of(b"anything"), max_bytes).await
    }

    #[tokio::test]
    async fn a_blob_announced_larger_than_the_cap_is_refused_before_its_body() {
        let host = hostile_server("Content-Length: 1073741824\r\n", false).await;
        let error = blob_from(&host, 1024).await.unwrap_err();
        assert!(matches!(error, OciError::TooLarge { limit: 1024, .. }), "{error}");
        assert_eq!(
            error.to_string(),
            format!("registry {host} served blob {} larger than the limit of 1024 bytes", Digest::of(b"anything"))
        );
    }

    #[tokio::test]
    async fn an_endless_blob_is_cut_off_at_the_cap() {
        let host = hostile_server("Transfer-Encoding: chunked\r\n", true).await;
        let error = blob_from(&host, 64 * 1024).await.unwrap_err();
        assert!(matches!(error, OciError::TooLarge { limit: 65536, .. }), "{error}");
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = RegistryCredentials { username: "ci".into(), password: zeroize::Zeroizing::new("hunter2".into()) };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
